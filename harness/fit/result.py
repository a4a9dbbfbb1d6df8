"""What `fit_sweep` found (`FitReport`) and its JSON form, fit.json.

Every interval is written with its flags: `ci` (name -> [lo, hi]), `ci_reliable` (name -> bool: False
when more than 10% of the resamples failed or the interval excludes its own estimate) and
`failed_share`; renderers print an unreliable interval as such, never as a plain interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.fit.bootstrap import BootstrapInfo
from harness.fit.budgets import Budgets
from harness.fit.calibration import Calibration
from harness.fit.frontier import LawFit
from harness.fit.holdout import Holdout
from harness.fit.intervals import Intervals
from harness.fit.isoflop import IsoflopFit
from harness.fit.noise import Noise
from harness.fit.observations import Observations, Points
from harness.fit.parametric import ParametricFit
from harness.fit.rules import FitRules
from harness.fit.verdict import Verdict


@dataclass(frozen=True)
class GroundTruth:
    """The known irreducible loss of a synthetic source beside the fitted E."""

    bayes_loss: float
    E: float | None  # frontier E
    E_ci: tuple[float, float] | None
    contains: bool | None  # the frontier E's interval contains bayes_loss (None: no reliable interval)
    parametric_E: float | None = None
    parametric_E_ci: tuple[float, float] | None = None
    parametric_contains: bool | None = None


@dataclass(frozen=True)
class PerDecade:
    """What each 10x of compute buys on the frontier: a 'tier'.

    cut: the share of the reducible loss L - E that a decade removes, 1 - 10^-alpha.
    nats: the loss the last decade bought at the top frontier point C_top, L(C_top / 10) - L(C_top).
    """

    cut: float
    nats: float
    C_top: float
    ci: Intervals = field(default_factory=Intervals)


@dataclass(frozen=True)
class FitReport:
    """Everything `fit_sweep` found; a section is None when skipped (the reason is in `skipped`)."""

    obs: Observations
    points: Points
    budgets: Budgets
    noise: Noise
    frontier: LawFit | None
    frontier_source: tuple[str, ...]  # per frontier point: 'fitted minimum' | 'best run' | 'run'
    per_decade: PerDecade | None
    power_law: LawFit | None
    frontier_curves: LawFit | None
    kaplan_N: LawFit | None
    kaplan_D: LawFit | None
    isoflop: IsoflopFit | None
    parametric: ParametricFit | None
    holdout: Holdout | None
    verdict: Verdict
    calibration: Calibration | None
    ground_truth: GroundTruth | None
    bootstrap: BootstrapInfo
    rules: FitRules  # the fixed rules the fit and its verdict used (harness.fit.rules)
    skipped: dict[str, str] = field(default_factory=dict)
    samples: dict[str, np.ndarray] = field(default_factory=dict)  # kept bootstrap samples (rows) per fit
    excluded: tuple[tuple[str, str], ...] = ()  # (run_id, why) of runs left out before the fit

    @property
    def n_runs(self) -> int:
        return int(self.obs.run_id.size)

    def to_dict(self) -> dict[str, Any]:
        """The JSON structure of fit.json (non-finite numbers become null)."""
        return jsonable(report_dict(self))


def _law_dict(fit: LawFit | None, x0: str, x: str) -> dict[str, Any] | None:
    if fit is None:
        return None
    return {
        "E": fit.law.E,
        x0: fit.law.x0,
        "alpha": fit.law.alpha,
        "r2": fit.r2,
        "max_rel_residual": fit.max_rel_residual,
        "n_points": int(fit.x.size),
        "converged": fit.converged,
        "points": {x: fit.x.tolist(), "L": fit.L.tolist()},
        **fit.ci.to_dict(),
    }


def _design_dict(r: FitReport) -> dict[str, Any]:
    p, b = r.points, r.budgets
    return {
        "design": r.obs.design or ("isoflop" if b.isoflop else "grid"),
        "declared": b.declared,
        "rule": b.rule,
        "n_runs": r.n_runs,
        "n_points": p.size,
        "duplicates": [{"run_id": a, "duplicate_of": o} for a, o in p.duplicates],
        "replicated_points": int((p.k > 1).sum()),
        "replicate_runs": int(p.k[p.k > 1].sum()),
    }


def _frontier_dict(r: FitReport) -> dict[str, Any] | None:
    out = _law_dict(r.frontier, "C0", "C")
    if out is None:
        return None
    f = r.frontier
    out["points"]["source"] = list(r.frontier_source)
    if r.budgets.isoflop:
        out["budgets"] = [r.budgets.labels[i] for i in f.index]
    else:
        out["run_ids"] = [r.points.run_ids[i][0] for i in f.index]
    d = r.per_decade
    out["per_decade"] = {"cut": d.cut, "nats": d.nats, "C_top": d.C_top, **d.ci.to_dict()}
    return out


def _isoflop_dict(iso: IsoflopFit | None, p: Points) -> dict[str, Any] | None:
    if iso is None:
        return None
    return {
        "a": iso.a,
        "b": iso.b,
        "a_intercept": iso.a_intercept,
        "b_intercept": iso.b_intercept,
        "tokens_per_param": iso.tokens_per_param,
        "window": iso.window,
        "budgets": [
            {
                "label": q.label,
                "C": q.C,
                "n_runs": int(p.k[q.index].sum()),
                "n_sizes": q.n_sizes,
                "window_sizes": int(q.window.size),
                "N_opt": q.N_opt,
                "D_opt": q.D_opt,
                "L_opt": q.L_opt,
                "L_front": q.L_front,
                "tokens_per_param": q.D_opt / q.N_opt if q.N_opt > 0 else None,
                "status": q.status or "narrow",
                "used": q.used,
                "note": q.note,
                "parabola": list(q.coeffs),
                "log_N_center": q.center,
                **q.ci.to_dict(),
            }
            for q in iso.budgets
        ],
        **iso.ci.to_dict(),
    }


def _parametric_dict(par: ParametricFit | None, C_top: float) -> dict[str, Any] | None:
    if par is None:
        return None
    s = par.surface
    return {
        "E": s.E,
        "A": s.A,
        "B": s.B,
        "alpha": s.alpha,
        "beta": s.beta,
        "r2": par.r2,
        "max_rel_residual": par.max_rel_residual,
        "huber_delta": par.delta,
        "objective": par.objective,
        "converged": par.converged,
        "n_points": par.n_points,
        "compute_optimal": {**par.compute_optimal(C_top), "k": par.k},
        **par.ci.to_dict(),
    }


def _holdout_dict(h: Holdout | None) -> dict[str, Any] | None:
    if h is None:
        return None
    decision = h.decision
    return {
        "rule": h.rule,
        "n_runs": len(h.held_runs),
        "run_ids": list(h.held_runs),
        "decides": h.decides,
        "rel_error": None if decision is None else decision.rel_error,
        "max_rel_error": None if decision is None else decision.max_rel_error,
        "targets": [
            {"C": float(c), "L_obs": float(v), "source": s}
            for c, v, s in zip(h.target_C, h.target_L, h.target_source, strict=True)
        ],
        "laws": {
            name: {
                "formula": lp.formula,
                "E": lp.E,
                "C0": lp.C0,
                "alpha": lp.alpha,
                "L_pred": lp.L_pred.tolist(),
                "rel_error": lp.rel_error,
                "max_rel_error": lp.max_rel_error,
                "max_z": lp.max_z,
                **lp.ci.to_dict(),
            }
            for name, lp in h.laws.items()
        },
        "failed": dict(h.failed),
        "parametric": {
            "rel_error": h.parametric_rel_error,
            "max_rel_error": h.parametric_max_rel_error,
            "note": h.parametric_note,
        },
    }


def _failed_counts(r: FitReport) -> dict[str, int]:
    B = r.bootstrap.resamples
    sections = {
        "frontier": r.frontier,
        "power_law": r.power_law,
        "frontier_curves": r.frontier_curves,
        "kaplan_L_N": r.kaplan_N,
        "kaplan_L_D": r.kaplan_D,
        "isoflop": r.isoflop,
        "parametric": r.parametric,
    }
    out = {k: s.ci.failed_share for k, s in sections.items() if s is not None}
    if r.holdout is not None:
        out.update({f"holdout_{k}": lp.ci.failed_share for k, lp in r.holdout.laws.items()})
    return {k: int(round(v * B)) for k, v in out.items() if v is not None}


def report_dict(r: FitReport) -> dict[str, Any]:
    """fit.json as plain Python (before `jsonable`)."""
    obs, v = r.obs, r.verdict
    g = r.ground_truth
    return {
        "n_runs": r.n_runs,
        "conventions": {"params": obs.params, "flops": obs.flops, "notes": list(obs.notes)},
        "excluded": [{"run_id": rid, "why": why} for rid, why in r.excluded],
        "design": _design_dict(r),
        "noise": {
            "level": r.noise.level,
            "source": r.noise.source,
            "detail": r.noise.detail,
            "dof": r.noise.dof,
        },
        "budgets": {
            "rule": r.budgets.rule,
            "isoflop": r.budgets.isoflop,
            "labels": list(r.budgets.labels),
            "C": r.budgets.C.tolist(),
        },
        "frontier": _frontier_dict(r),
        "power_law": None
        if r.power_law is None
        else {k: x for k, x in _law_dict(r.power_law, "C0", "C").items() if k != "E"},
        "frontier_curves": _law_dict(r.frontier_curves, "C0", "C"),
        "kaplan": {"L_N": _law_dict(r.kaplan_N, "N0", "N"), "L_D": _law_dict(r.kaplan_D, "D0", "D")},
        "isoflop": _isoflop_dict(r.isoflop, r.points),
        "parametric": _parametric_dict(r.parametric, float(r.points.C.max())),
        "holdout": _holdout_dict(r.holdout),
        "verdict": {
            "smooth": v.smooth,
            "outcome": v.outcome,
            "sentence": v.sentence,
            "reasons": list(v.reasons),
            "checks": v.checks,
            "checked": v.checked,
            "likelihood_ratio": v.likelihood_ratio,
            "untested_why": v.untested_why,
            "numbers": v.numbers,
            "rules": vars(r.rules),
        },
        "calibration": None if r.calibration is None else r.calibration.to_dict(),
        "ground_truth": None if g is None else vars(g),
        "bootstrap": {
            "resamples": r.bootstrap.resamples,
            "ci": r.bootstrap.ci,
            "seed": r.bootstrap.seed,
            "scheme": r.bootstrap.scheme,
            "failed": _failed_counts(r),
        },
        "skipped": dict(r.skipped),
    }


def jsonable(obj: Any) -> Any:
    """Plain Python types for JSON: numpy arrays and scalars unwrapped, nan and inf as None."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, bool | np.bool_):
        return bool(obj)
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.str_):
        return str(obj)
    return obj
