"""What the claims report trains: its parts (the default sweep, the real-text sweep, every ingredient
experiment, the abilities sweep), each on two realizations, as the configs `python -m harness.sweep`
would compose for them.

Realization 1 is each part as its preset says; realization 2 adds `data.seed=7` and lives under
`runs/r2/` (every sweep directory, an experiment's comparison directory and its shared reference's
alike), so the two never share a run. At gpu scale (`sweep=gpu` on the blob's command line) the default
sweep is the gpu preset and the text sweep gpu_text; the experiments and the abilities sweep are
CPU-sized and stay as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from omegaconf import OmegaConf

from harness.compose import compose_config, compose_raw
from harness.config import Config

SECOND_SEED = 7  # data.seed of realization 2 (docs/blob.md)
SECOND_DIR = "r2"  # realization 2's directories: runs/r2/<the preset's directory>
EXPERIMENTS = ("architecture", "conditioning", "data_quality", "data_quantity", "objective", "proportion")


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


def _second(cfg: Config) -> Config:
    """Realization 2 of a sweep config: another data seed, its directory under runs/r2/."""
    return replace(
        cfg, data=replace(cfg.data, seed=SECOND_SEED), sweep=replace(cfg.sweep, dir=_moved(cfg.sweep.dir))
    )


def _moved(path: str) -> str:
    """runs/x/y -> runs/r2/x/y; any other path p -> r2/p."""
    parts = Path(path).parts
    if parts[:1] == ("runs",):
        return str(Path("runs", SECOND_DIR, *parts[1:]))
    return str(Path(SECOND_DIR, *parts))


def plan_parts(overrides: tuple[str, ...] = ()) -> list[Part]:
    """Every part on both realizations, with the user's overrides (e.g. logger=off) applied to all."""
    gpu = "sweep=gpu" in overrides
    user = tuple(o for o in overrides if not o.startswith("sweep="))
    sweeps = {"synthetic": ("sweep=gpu",) if gpu else (), "text": (f"sweep={'gpu' if gpu else 'cpu'}_text",)}
    parts = []
    for realization in (1, 2):
        edit = (lambda c: c) if realization == 1 else _second
        for name, preset in sweeps.items():
            parts.append(Part(name, "sweep", realization, (edit(compose_config(*preset, *user)),)))
        for experiment in EXPERIMENTS:
            raw = compose_raw(f"experiment={experiment}", *user)
            variants = str(raw.hydra.sweeper.params[f"experiment/{experiment}"]).split(",")
            callback = OmegaConf.to_container(raw.hydra.callbacks.compare, resolve=True)
            compare = {k: v for k, v in callback.items() if k != "_target_"}
            if realization == 2:
                compare = {**compare, "dir": _moved(compare["dir"])}
                if compare.get("reference_dir"):
                    compare["reference_dir"] = _moved(compare["reference_dir"])
            configs = tuple(
                edit(compose_config(f"experiment={experiment}", f"experiment/{experiment}={v}", *user))
                for v in variants
            )
            parts.append(Part(experiment, "experiment", realization, configs, compare))
        abilities = edit(compose_config("experiment=abilities", *user))
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
