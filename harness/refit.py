"""Refit a finished sweep, or any results CSV, without torch:

    python -m harness.refit input=runs/cpu fit.flops=6n           # -> runs/cpu/refits/1/
    python -m harness.refit input=results.csv out=fit/ fit.bootstrap=200

A sweep directory (read through harness.store) holds results.csv, optionally sweep.json (its
`bayes_loss` is the known irreducible loss of a synthetic source) and runs/<name>-<run_id>/
metrics.jsonl (training curves). A CSV needs the columns params_total, tokens and val_loss
(optional: flops, flops_6n, params_nonembedding, run_id, status, budget, seed, val_loss_se, epochs).
A sweep's declared design (sweep.json) is passed to the fit, which guesses the design only for a
foreign CSV, and so are its fit settings (bootstrap, conventions, thresholds), except those given on
the command line: a refit of a sweep with `fit.bootstrap=100` resamples 100 times unless told otherwise.

A refit never replaces a fit: output goes to the first free `<input>/refits/<n>/` (the sweep directory,
or the CSV's directory), or to `out`, which must not already hold a fit.json unless `overwrite=true`.
Bad input (a misspelled key, a bare argument, an output that cannot be written) prints one line on
stderr, exits with status 2 and writes nothing.
"""

from __future__ import annotations

import csv
import os
import sys
from collections.abc import Collection
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import hydra
from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from harness import store
from harness.config import Config, ConfigError, FitConfig
from harness.fit import FitError
from harness.overrides import check_overrides
from harness.validate import validate


@dataclass
class FitCLIConfig:
    """`python -m harness.refit` settings; `fit` is the sweep's own fit group."""

    # Hydra writes nothing: no outputs/ run dir, no .hydra/ copy of the config, no log files.
    defaults: list[Any] = field(
        default_factory=lambda: [
            "_self_",
            {"override hydra/job_logging": "none"},
            {"override hydra/hydra_logging": "none"},
        ]
    )
    hydra: Any = field(
        default_factory=lambda: {
            "run": {"dir": "."},
            "output_subdir": None,
            "help": {"app_name": "python -m harness.refit", "header": __doc__.strip()},
        }
    )
    input: str = ""  # a sweep directory or a results CSV
    out: str = ""  # output directory (default: a new <input>/refits/<n>/)
    overwrite: bool = False  # let `out` replace the fit it already holds
    fit: FitConfig = field(default_factory=FitConfig)


class InputError(ValueError):
    """Input the CLI cannot read; the message is one line."""


REQUIRED = ("params_total", "tokens", "val_loss")


def read_input(
    path: Path, cfg: FitConfig
) -> tuple[list[dict], dict[str, list[dict]] | None, float | None, Path, dict]:
    """Rows, curves, Bayes loss, the directory refits go under (the sweep's, or the CSV's) and meta of
    a sweep directory or a CSV."""
    if not path.exists():
        raise InputError(f"input: no such file or directory: {path}")
    curves = None
    bayes = None
    meta: dict[str, Any] = {"input": str(path)}
    if path.is_dir():
        table = path / store.RESULTS_CSV
        if not table.is_file():
            raise InputError(f"input: {path} has no {store.RESULTS_CSV} (not a sweep directory)")
        sweep = path / store.SWEEP_JSON
        if sweep.is_file():
            info = store.read_json(sweep)
            if info is None:
                raise InputError(f"input: {sweep} is not valid JSON")
            bayes = info.get("bayes_loss")
            if bayes is not None and not isinstance(bayes, int | float):
                raise InputError(f"input: {sweep}: bayes_loss {bayes!r} is not a number")
            meta.update({k: info[k] for k in ("name", "fingerprint") if k in info})
            design = info.get("config", {}).get("sweep", {}).get("design")
            if design is not None:
                meta["design"] = design  # the sweep's declared design: the fit does not guess it
        base = path
    else:
        table, base = path, path.parent
    try:
        with open(table, newline="") as f:
            reader = csv.DictReader(f)
            columns = reader.fieldnames or []
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"input: cannot read {table} as CSV ({exc})") from None
    needed = list(REQUIRED) + (["params_nonembedding"] if cfg.params == "nonembedding" else [])
    missing = [c for c in needed if c not in columns]
    if missing:
        have = ", ".join(columns) if columns else "none"
        raise InputError(f"input: {table} is missing column(s) {', '.join(missing)} (has: {have})")
    if not rows:
        raise InputError(f"input: {table} has a header but no rows")
    if path.is_dir() and "name" in columns:
        curves = {rid: evals for rid, evals in store.read_curves(path, rows).items() if evals}
    return rows, curves, bayes, base, meta


def inherit_fit(path: Path, given: FitConfig, named: Collection[str]) -> FitConfig:
    """The fit settings of a refit: the sweep's own (its sweep.json) except the fields `named` on the
    command line, which keep `given`'s values; `given` alone for a CSV or a directory without sweep.json."""
    info = store.read_json(path / store.SWEEP_JSON) if path.is_dir() else None
    swept = ((info or {}).get("config") or {}).get("fit") or {}
    known = {f.name for f in fields(FitConfig)} - set(named)
    return replace(given, **{k: v for k, v in swept.items() if k in known})


def check_out(out: Path, overwrite: bool) -> None:
    """Refuse, before any fitting, an output directory that is (or lies under) a file, holds a fit
    already (unless overwrite) or cannot be written."""
    existing = out if out.exists() else next(p for p in out.absolute().parents if p.exists())
    if not existing.is_dir():
        raise InputError(f"out: {existing} is a file, not a directory")
    if (out / store.FIT_JSON).exists() and not overwrite:
        raise InputError(
            f"out: {out} already holds a fit ({store.FIT_JSON}); pass overwrite=true to replace it"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"out: cannot write to {existing} (permission denied or a read-only filesystem)")


def run(cfg: FitCLIConfig) -> int:
    from harness.report import analyse, build_observations, summary_text

    try:
        if not cfg.input:
            raise InputError("input: give input=PATH (a sweep directory or a results CSV)")
        validate(Config(fit=cfg.fit))
        path = Path(cfg.input)
        rows, curves, bayes, base, meta = read_input(path, cfg.fit)
        if cfg.out:
            check_out(Path(cfg.out), cfg.overwrite)
        try:
            build_observations(rows, cfg.fit)  # row/column errors name the file before any fitting
        except FitError as exc:
            raise InputError(f"input: {path}: {exc}") from None
        out = Path(cfg.out) if cfg.out else store.new_refit_dir(base)
        report = analyse(
            rows,
            cfg.fit,
            out,
            curves=curves,
            bayes_loss=bayes,
            meta=meta,
            design=meta.get("design"),
        )
    except (InputError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except FitError as exc:
        print(f"error: {cfg.input}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the output could not be written after all (store.WriteError names the file)
        what = exc if isinstance(exc, store.WriteError) else f"cannot write {exc.filename}: {exc.strerror}"
        print(f"error: out: {what}", file=sys.stderr)
        return 2
    print(summary_text(report))
    print(f"wrote {out / store.FIT_JSON}, {out / store.REPORT_MD} and {out / store.PLOTS}/")
    return 0


ConfigStore.instance().store(name="fit_cli", node=FitCLIConfig)


@hydra.main(version_base="1.3", config_path=None, config_name="fit_cli")
def _hydra_main(dcfg) -> None:
    from hydra.core.hydra_config import HydraConfig

    keys = (o.split("=", 1)[0].lstrip("+~") for o in HydraConfig.get().overrides.task)
    named = [key.removeprefix("fit.") for key in keys if key.startswith("fit.")]
    fit = OmegaConf.to_object(dcfg.fit)
    if dcfg.input:
        fit = inherit_fit(Path(dcfg.input), fit, named)
    code = run(FitCLIConfig(input=dcfg.input, out=dcfg.out, overwrite=dcfg.overwrite, fit=fit))
    if code:
        sys.exit(code)


def main() -> None:
    """Check the command line (one line per mistake, before Hydra's several), then refit."""
    try:
        check_overrides(sys.argv[1:], None, schema=FitCLIConfig, path_key="input")
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    _hydra_main()


if __name__ == "__main__":
    main()
