"""Save a W&B workspace (a saved view of the project page) laid out for one sweep group.

    python scripts/wandb_dashboard.py --group cpu-1a2b3c4d [--project scaling-harness] [--entity me]

The group is the one the sweep's end summary names (`<sweep name>-<instance>`). The workspace opens on
loss against compute: validation loss against FLOPs on log-log axes with one colour per model size
(the runs grouped by width, the lowest loss of each width at each compute), the final loss of every
run against its FLOPs, the fitted law and the verdict as text (from the fit run's summary), and the
fit's own loss-vs-compute plot. Below: loss against tokens per width, then every fit plot and the
results table. The runs table is filtered to the group and shows width, tokens, FLOPs and final loss.

The keys are those the harness logs: history `tokens`, `flops`, `train/loss`, `val/loss`; the train
runs' summary holds their result row (`width`, `tokens`, `flops`, `val_loss`, ...) and their config the
run spec (`shape.width`, ...); the fit run logs its plots as `plots/<name>`, the table `results` and
its headline numbers as `fit/...` (harness.tracking.fit_run.headline).

`build_workspace` and `fit_markdown` are pure and work offline; `main` saves the view and needs a W&B
login (WANDB_API_KEY or `wandb login`) and network.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence

import wandb_workspaces.reports.v2 as wr
import wandb_workspaces.workspaces as ws
from wandb_workspaces import expr

LAW_PLOT = "plots/loss_vs_compute"


def _num(summary: Mapping, key: str, fmt: str = ".3g") -> str:
    value = summary.get(key)
    return "n/a" if not isinstance(value, int | float) else format(value, fmt)


def _interval(summary: Mapping, key: str) -> str:
    lo, hi = summary.get(f"{key}_lo"), summary.get(f"{key}_hi")
    return f" [{lo:.3g}, {hi:.3g}]" if isinstance(lo, int | float) and isinstance(hi, int | float) else ""


def fit_markdown(summary: Mapping | None) -> str:
    """The fitted law and the verdict, as markdown, from the fit run's summary (`fit/...` keys)."""
    if not summary or "fit/verdict" not in summary:
        return "**No fit yet.** The sweep's fit run logs the law and the verdict when the sweep ends."
    said = {
        "yes": "yes: loss scales smoothly with compute",
        "no": "no: loss does not scale smoothly",
    }.get(summary["fit/verdict"], f"{summary['fit/verdict']}: a check could not run")
    lines = [
        f"### Verdict: {said}",
        "",
        "Frontier law **L(C) = E + (C0 / C)^alpha** (C in FLOPs, L in nats/token):",
        "",
        f"- alpha = {_num(summary, 'fit/alpha')}{_interval(summary, 'fit/alpha')}",
        f"- E = {_num(summary, 'fit/E')}{_interval(summary, 'fit/E')} nats/token",
        f"- C0 = {_num(summary, 'fit/C0')} FLOPs; R^2 = {_num(summary, 'fit/r2', '.4f')}",
    ]
    if "fit/per_decade_cut" in summary:
        lines.append(
            f"- each 10x of compute cuts the reducible loss by {_num(summary, 'fit/per_decade_cut', '.1%')}"
        )
    if "fit/holdout_error" in summary:
        error = _num(summary, "fit/holdout_error", ".1%")
        hold = f"- hold-out: the law fitted without the costliest runs is off by {error}"
        if "fit/holdout_error_parametric" in summary:
            hold += f" (parametric L(N, D): {_num(summary, 'fit/holdout_error_parametric', '.1%')})"
        lines.append(hold)
    lines += [
        "",
        f"{_num(summary, 'fit/n_runs', '.0f')} runs; everything else is in the `*-results` artifact.",
    ]
    return "\n".join(lines)


def build_workspace(
    entity: str,
    project: str,
    group: str,
    *,
    plot_keys: Sequence[str] = (),
    fit_summary: Mapping | None = None,
    width_key: str = "shape.width",
    max_runs: int = 100,
) -> ws.Workspace:
    """The workspace for sweep `group`; `plot_keys` are the fit run's image keys (`plots/<name>`) and
    `fit_summary` its summary (the law and verdict panel)."""
    by_width = wr.Config(width_key)
    compute = [
        wr.LinePlot(
            title="validation loss vs compute, one colour per model size (log-log)",
            x="flops",
            y=["val/loss"],
            log_x=True,
            log_y=True,
            title_x="compute C (FLOPs)",
            title_y="validation loss (nats/token)",
            groupby=by_width,
            groupby_aggfunc="min",
            groupby_rangefunc="none",
            legend_template=f"width ${{config:{width_key}}}",
            max_runs_to_show=max_runs,
            layout=wr.Layout(x=0, y=0, w=9, h=8),
        ),
        wr.MarkdownPanel(markdown=fit_markdown(fit_summary), layout=wr.Layout(x=9, y=0, w=6, h=8)),
        wr.ScatterPlot(
            title="final validation loss vs compute, every run (log-log)",
            x=wr.SummaryMetric("flops"),
            y=wr.SummaryMetric("val_loss"),
            log_x=True,
            log_y=True,
            layout=wr.Layout(x=0, y=8, w=9, h=8),
        ),
    ]
    if LAW_PLOT in plot_keys:
        compute.append(
            wr.MediaBrowser(
                title="the fitted law",
                media_keys=[LAW_PLOT],
                gallery_axis="step",
                layout=wr.Layout(x=9, y=8, w=15, h=8),
            )  # fmt: skip
        )
    loss_vs_compute = ws.Section(name="Loss vs compute", is_open=True, panels=compute)
    loss_vs_tokens = ws.Section(
        name="Loss vs tokens",
        is_open=False,
        panels=[
            wr.LinePlot(
                title=f"{key} vs tokens, one colour per model size (min over budgets)",
                x="tokens",
                y=[key],
                log_x=True,
                log_y=True,
                groupby=by_width,
                groupby_aggfunc="min",
                groupby_rangefunc="minmax",
                legend_template=f"width ${{config:{width_key}}}",
                max_runs_to_show=max_runs,
            )
            for key in ("val/loss", "train/loss")
        ],
    )
    fit_panels: list = [wr.WeavePanelSummaryTable(table_name="results")]
    if plot_keys:
        fit_panels.insert(
            0, wr.MediaBrowser(title="fit plots", media_keys=list(plot_keys), gallery_axis="step")
        )
    fit = ws.Section(name="Scaling-law fit", is_open=True, panels=fit_panels)
    return ws.Workspace(
        entity=entity,
        project=project,
        name=f"scaling sweep {group}",
        sections=[loss_vs_compute, loss_vs_tokens, fit],
        settings=ws.WorkspaceSettings(x_axis="flops", max_runs=max_runs),
        runset_settings=ws.RunsetSettings(
            filters=[expr.Metric("Group") == group],
            order=[expr.Ordering(expr.Summary("flops"), ascending=True)],
            pinned_columns=[
                "run:displayName",
                "summary:status",
                "summary:width",
                "summary:tokens",
                "summary:flops",
                "summary:val_loss",
            ],
        ),
    )


def _fit_run(api, entity: str, project: str, group: str) -> tuple[list[str], dict | None]:
    """The image keys and the summary of the group's latest fit run (none yet: [], None)."""
    runs = list(
        api.runs(f"{entity}/{project}", filters={"group": group, "jobType": "fit"}, order="-created_at")
    )
    if not runs:
        return [], None
    summary = dict(runs[0].summary_metrics)
    return sorted(k for k in summary if k.startswith("plots/")), summary


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--group", required=True, help="the W&B group the sweep's end summary names")
    parser.add_argument("--project", default="scaling-harness")
    parser.add_argument("--entity", default="", help="W&B entity (default: your default entity)")
    parser.add_argument("--width-key", default="shape.width", help="config key holding the model width")
    args = parser.parse_args(argv)

    if os.environ.get("WANDB_MODE", "").lower() in ("offline", "disabled", "dryrun"):
        print("error: saving a workspace needs W&B online; WANDB_MODE is set to offline", file=sys.stderr)
        return 2
    try:
        import wandb

        api = wandb.Api()
        entity = args.entity or api.default_entity
        if not entity:
            raise RuntimeError("no entity: pass --entity")
        keys, summary = _fit_run(api, entity, args.project, args.group)
        workspace = build_workspace(
            entity, args.project, args.group, plot_keys=keys, fit_summary=summary, width_key=args.width_key
        )
        workspace.save()
    except Exception as e:  # noqa: BLE001 - one clear line instead of a GraphQL traceback
        print(
            f"error: could not save the workspace to W&B ({type(e).__name__}: {e}); "
            "it needs network access and a W&B login (WANDB_API_KEY or `wandb login`)",
            file=sys.stderr,
        )
        return 2
    print(workspace.url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
