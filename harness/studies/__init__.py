"""Studies: what reads finished sweep directories and asks a question of them, never the reverse.

    compare     ingredient experiments: each variant paired with its reference, judged by rules fixed
                before the runs (docs/experiments.md)
    abilities   smooth loss, abrupt abilities: task widths along the compute frontier (docs/abilities.md)

They share one statistics toolkit (harness.stats) with the fitter; the core (config -> plan -> train ->
store -> fit -> report, and the sweep entry point) imports none of them (`make lint` checks it).
"""
