"""What the claims report trains: its parts (the default sweep, the real-text sweep, every ingredient
experiment, the abilities sweep), each on two realizations, as the configs `python -m harness.sweep`
would compose for them, at the blob's scale (docs/blob.md: fixed before any blob ran at it).

Realization 1 is each part as its preset says; realization 2 adds `data.seed=7`. Realization n lives
under `runs/blob/r<n>/` (every sweep directory, an experiment's comparison directory and its shared
reference's alike), so the two never share a run and neither touches a preset's own directory. At gpu
scale (`sweep=gpu` on the blob's command line) the default sweep is the gpu preset and the text sweep
gpu_text, as they are; the experiments and the abilities sweep are CPU-sized and keep the blob's scale.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from omegaconf import OmegaConf

from harness.compose import compose_config, compose_raw
from harness.config import Config
from harness.plan import smooth_batch

SECOND_SEED = 7  # data.seed of realization 2 (docs/blob.md)
RUNS = Path("runs/blob")  # realization n's directories: runs/blob/r<n>/<the preset's directory>
LADDER = ("architecture", "conditioning", "data_quality", "data_quantity", "objective")
EXPERIMENTS = (*LADDER, "proportion")
SWEEP_DECADES = 1.5  # the blob's sweeps: the preset's budgets over its lowest 1.5 decades (amendment 1)
SEEDS = [1]  # the experiments' replicate seeds at the blob's scale: 2 seeds per run (train.seed 0 and 1)


@dataclass(frozen=True)
class Part:
    """One thing the report reads: a sweep (its fit.json), an experiment (its comparison.json) or the
    abilities sweep (its study), on one realization."""

    name: str  # "synthetic" | "text" | an experiment | "abilities"
    kind: str  # sweep | experiment | abilities
    realization: int  # 1 | 2
    configs: tuple[Config, ...]  # the sweeps it trains: one, or an experiment's variants
    compare: dict | None = None  # an experiment's comparison: dir, reference, reference_dir

    @property
    def label(self) -> str:
        return f"{self.name} ({'as preset' if self.realization == 1 else f'data.seed={SECOND_SEED}'})"

    @property
    def evidence(self) -> Path:
        """The file the claims read."""
        if self.kind == "experiment":
            return Path(self.compare["dir"]) / "comparison.json"
        if self.kind == "abilities":
            return Path(self.configs[0].sweep.dir) / "abilities.json"
        return Path(self.configs[0].sweep.dir) / "fit.json"


def at_blob_scale(cfg: Config, name: str, *, gpu: bool) -> Config:
    """A part's config at the blob's scale (docs/blob.md): a cpu sweep on the preset's budgets over its
    lowest 1.5 decades (amendment 1), its batch rule rescaled to the new top budget; a ladder experiment
    without its top rung and with 2 seeds; the proportion arms with 2 seeds; the abilities sweep without
    its top budget."""
    s, t = cfg.sweep, cfg.train
    if name in ("synthetic", "text"):
        if gpu:
            return cfg
        flops = [b for b in s.flops if b <= s.flops[0] * 10**SWEEP_DECADES * 1.001]
        batch = smooth_batch(max(flops), max(s.flops), t) if t.batch_exponent > 0 else t.batch_size
        return replace(cfg, sweep=replace(s, flops=flops), train=replace(t, batch_size=batch))
    if name in LADDER:
        return replace(cfg, sweep=replace(s, widths=s.widths[:-1], tokens=s.tokens[:-1], seeds=SEEDS))
    if name == "proportion":
        return replace(cfg, sweep=replace(s, seeds=SEEDS))
    return replace(cfg, sweep=replace(s, flops=s.flops[:-1]))  # abilities


def realized(cfg: Config, realization: int) -> Config:
    """A part's config on a realization: its directory under runs/blob/r<n>/, data.seed=7 on the second."""
    data = cfg.data if realization == 1 else replace(cfg.data, seed=SECOND_SEED)
    return replace(cfg, data=data, sweep=replace(cfg.sweep, dir=moved(cfg.sweep.dir, realization)))


def moved(path: str, realization: int) -> str:
    """runs/x/y -> runs/blob/r<n>/x/y; any other path p -> runs/blob/r<n>/p."""
    parts = Path(path).parts
    return str(RUNS / f"r{realization}" / Path(*(parts[1:] if parts[:1] == ("runs",) else parts)))


def plan_parts(overrides: tuple[str, ...] = ()) -> list[Part]:
    """Every part on both realizations at the blob's scale, with the user's overrides (e.g. logger=off)
    applied to all."""
    gpu = "sweep=gpu" in overrides
    user = tuple(o for o in overrides if not o.startswith("sweep="))
    sweeps = {"synthetic": ("sweep=gpu",) if gpu else (), "text": (f"sweep={'gpu' if gpu else 'cpu'}_text",)}
    parts = []
    for realization in (1, 2):

        def edit(cfg: Config, name: str, n: int = realization) -> Config:
            return realized(at_blob_scale(cfg, name, gpu=gpu), n)

        for name, preset in sweeps.items():
            parts.append(Part(name, "sweep", realization, (edit(compose_config(*preset, *user), name),)))
        for experiment in EXPERIMENTS:
            raw = compose_raw(f"experiment={experiment}", *user)
            variants = str(raw.hydra.sweeper.params[f"experiment/{experiment}"]).split(",")
            callback = OmegaConf.to_container(raw.hydra.callbacks.compare, resolve=True)
            compare = {k: v for k, v in callback.items() if k != "_target_"}
            compare["dir"] = moved(compare["dir"], realization)
            if compare.get("reference_dir"):
                compare["reference_dir"] = moved(compare["reference_dir"], realization)
            configs = tuple(
                edit(
                    compose_config(f"experiment={experiment}", f"experiment/{experiment}={v}", *user),
                    experiment,
                )
                for v in variants
            )
            parts.append(Part(experiment, "experiment", realization, configs, compare))
        abilities = edit(compose_config("experiment=abilities", *user), "abilities")
        parts.append(Part("abilities", "abilities", realization, (abilities,)))
    return parts


def distinct_sweeps(parts: list[Part]) -> list[Config]:
    """Each sweep directory once, in the parts' order (the ladder experiments share their reference)."""
    seen, out = set(), []
    for part in parts:
        for cfg in part.configs:
            if cfg.sweep.dir not in seen:
                seen.add(cfg.sweep.dir)
                out.append(cfg)
    return out
