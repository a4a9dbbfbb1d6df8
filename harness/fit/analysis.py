"""A sweep's observations in, every analysis the data allows out: `fit_sweep` and its `FitReport`.

Order of work: group the runs into budgets; fit the compute frontier (approach 1) and the pure power
law beside it, check that the best loss improves with every budget; Kaplan's L(N) and L(D); the
IsoFLOP profiles (approach 2) when the runs come in compute budgets; the parametric law (approach
3); the hold-out prediction; then one bootstrap over runs gives an interval for every fitted number,
and the verdict is read off the numbers and FitConfig's thresholds. An analysis the data cannot
carry is skipped with the reason; only input no analysis can use raises FitError.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from harness.config import FitConfig
from harness.fit.bootstrap import BootstrapInfo, intervals, resample_counts
from harness.fit.frontier import (
    Budgets,
    LawFit,
    Monotonicity,
    check_monotone,
    envelope_weights,
    fit_frontier,
    fit_kaplan,
    fit_power_law,
    group_budgets,
    refit_offset_power_law,
    refit_power_law,
)
from harness.fit.holdout import Holdout, fit_holdout
from harness.fit.isoflop import IsoflopFit, fit_isoflop, refit_isoflop
from harness.fit.laws import FitError, LossSurface
from harness.fit.parametric import ParametricFit, fit_parametric, refit_parametric


@dataclass(frozen=True)
class Observations:
    """The runs of a sweep as arrays, in the units and conventions the laws use.

    run_id, N (params), D (tokens), C (FLOPs), L (val loss, nats/token): one entry per run.
    budget: the sweep's budget label per run (compute or token budget), or None.
    curve_*: the eval points of all runs' training curves (curve_run indexes the runs), or None.
    params / flops: which convention N and C follow; notes: how they were derived.
    """

    run_id: np.ndarray
    N: np.ndarray
    D: np.ndarray
    C: np.ndarray
    L: np.ndarray
    budget: np.ndarray | None = None
    curve_run: np.ndarray | None = None
    curve_D: np.ndarray | None = None
    curve_C: np.ndarray | None = None
    curve_L: np.ndarray | None = None
    params: str = "total"
    flops: str = "full"
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        put = object.__setattr__
        put(self, "run_id", np.asarray(self.run_id).astype(str))
        n = self.run_id.size
        for key in ("N", "D", "C", "L"):
            v = np.asarray(getattr(self, key), dtype=float)
            put(self, key, v)
            if v.shape != (n,):
                raise FitError(f"observations: {key} has shape {v.shape}, expected ({n},) like run_id")
            bad = np.flatnonzero(~np.isfinite(v) | (v <= 0))
            if bad.size:
                i = int(bad[0])
                more = f"; {bad.size - 1} more runs like it" if bad.size > 1 else ""
                raise FitError(
                    f"observations: {key} = {float(v[i])} for run {self.run_id[i]} "
                    f"(must be finite and > 0{more})"
                )
        if self.budget is not None:
            put(self, "budget", np.asarray(self.budget).astype(str))
            if self.budget.shape != (n,):
                raise FitError(f"observations: budget has shape {self.budget.shape}, expected ({n},)")
        if self.curve_run is not None:
            put(self, "curve_run", np.asarray(self.curve_run, dtype=int))
            m = self.curve_run.size
            if m and (self.curve_run.min() < 0 or self.curve_run.max() >= n):
                raise FitError(f"observations: curve_run must index the {n} runs")
            for key in ("curve_D", "curve_C", "curve_L"):
                v = np.asarray(getattr(self, key), dtype=float)
                put(self, key, v)
                if v.shape != (m,) or not np.all(np.isfinite(v) & (v > 0)):
                    raise FitError(f"observations: {key} must be {m} finite positive values like curve_run")

    @property
    def has_curves(self) -> bool:
        return self.curve_run is not None and self.curve_run.size > 0


@dataclass(frozen=True)
class Verdict:
    """Does loss scale smoothly with compute? Each check is a sentence with its numbers."""

    smooth: bool
    sentence: str  # 'loss scales smoothly with compute: yes/no, because ...'
    reasons: tuple[str, ...]  # every check's sentence
    checks: dict[str, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class GroundTruth:
    """The known irreducible loss of a synthetic source beside the fitted E."""

    bayes_loss: float
    E: float | None  # frontier E
    E_ci: tuple[float, float] | None
    contains: bool | None  # the frontier E's interval contains bayes_loss
    parametric_E: float | None = None
    parametric_E_ci: tuple[float, float] | None = None
    parametric_contains: bool | None = None


@dataclass(frozen=True)
class FitReport:
    """Everything `fit_sweep` found; a section is None when skipped (the reason is in `skipped`)."""

    obs: Observations
    budgets: Budgets
    frontier: LawFit | None
    monotonicity: Monotonicity
    power_law: LawFit | None
    frontier_curves: LawFit | None
    kaplan_N: LawFit | None
    kaplan_D: LawFit | None
    isoflop: IsoflopFit | None
    parametric: ParametricFit | None
    holdout: Holdout | None
    verdict: Verdict
    ground_truth: GroundTruth | None
    bootstrap: BootstrapInfo
    thresholds: dict[str, float]
    skipped: dict[str, str] = field(default_factory=dict)
    samples: dict[str, np.ndarray] = field(default_factory=dict)  # kept bootstrap samples (rows) per fit
    excluded: tuple[tuple[str, str], ...] = ()  # (run_id, why) of runs left out before the fit

    @property
    def n_runs(self) -> int:
        return int(self.obs.run_id.size)

    def to_dict(self) -> dict[str, Any]:
        """The JSON structure of fit.json (non-finite numbers become null)."""
        return jsonable(_report_dict(self))


# --------------------------------------------------------------------------------------------------
# fit_sweep


def fit_sweep(obs: Observations, cfg: FitConfig, *, bayes_loss: float | None = None) -> FitReport:
    """Run every analysis the data allows (see the module docstring); raise FitError on unusable input.

    N and C follow the conventions `obs` records (the caller picked its columns by cfg.params and
    cfg.flops); cfg supplies the bootstrap, hold-out share and verdict thresholds. Unusable: fewer
    than 4 runs, one compute value, or one model size.
    """
    n = obs.run_id.size
    if n < 4:
        raise FitError(
            f"{n} runs; the frontier L(C) = E + (C0/C)^alpha has 3 parameters and needs at least 4 runs"
        )
    if np.unique(obs.C).size == 1:
        raise FitError(
            f"all {n} runs have the same compute C = {obs.C[0]:.4g}; a scaling fit needs several budgets"
        )
    if np.unique(obs.N).size == 1:
        raise FitError(
            f"all {n} runs have the same size N = {obs.N[0]:.4g}; a scaling fit needs several sizes"
        )
    rng_main, rng_hold = np.random.default_rng(cfg.seed).spawn(2)
    N, D, C, L = obs.N, obs.D, obs.C, obs.L
    budgets = group_budgets(C, obs.budget)
    groups = budgets.ids if budgets.isoflop else None
    skipped: dict[str, str] = {}

    def attempt(section: str, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except FitError as exc:
            skipped[section] = str(exc)
            return None

    frontier = attempt("frontier", fit_frontier, C, L, groups=groups)
    mono = check_monotone(L, budgets, tolerance=cfg.max_rel_residual)
    power = None
    if frontier is not None:
        power = attempt(
            "power_law",
            fit_power_law,
            frontier.x,
            frontier.L,
            name="power law",
            xname="C",
            index=frontier.index,
        )
    else:
        skipped["power_law"] = "no compute frontier (see frontier)"
    curves = None
    if obs.has_curves:
        curves = attempt("frontier_curves", fit_frontier, obs.curve_C, obs.curve_L)
    else:
        skipped["frontier_curves"] = "no training curves given"
    kaplan_N = attempt("kaplan_L_N", fit_kaplan, N, D, L, vary="N")
    kaplan_D = attempt("kaplan_L_D", fit_kaplan, N, D, L, vary="D")
    iso = None
    if budgets.isoflop:
        iso = attempt("isoflop", fit_isoflop, N, D, C, L, groups=budgets.ids, labels=budgets.labels)
    else:
        skipped["isoflop"] = f"the runs do not come in compute budgets ({budgets.rule})"
    # The compute-optimal allocation needs C = k N D: exactly 6 under Kaplan's count, else the
    # sweep's own typical ratio (the full count adds attention and embedding FLOPs to 6ND).
    k = 6.0 if obs.flops == "6n" else float(np.median(C / (N * D)))
    par = attempt("parametric", fit_parametric, N, D, L, k=k)
    hold = attempt(
        "holdout",
        fit_holdout,
        N,
        D,
        C,
        L,
        budgets,
        frac=cfg.holdout_frac,
        k=k,
        resamples=cfg.bootstrap,
        ci=cfg.ci,
        rng=rng_hold,
    )

    failed: dict[str, int] = {}
    samples: dict[str, np.ndarray] = {}
    cis: dict[str, dict[str, tuple[float, float]]] = {}
    counts = resample_counts(n, cfg.bootstrap, rng_main)
    if counts.shape[0]:

        def keep(name: str, s: np.ndarray, ok: np.ndarray, names: tuple[str, ...]) -> None:
            failed[name] = int((~ok).sum())
            samples[name] = s[ok]
            cis[name] = intervals(s[ok], names, cfg.ci)

        if frontier is not None:
            W = envelope_weights(C, L, counts, groups=groups)
            keep("frontier", *refit_offset_power_law(C, L, W, frontier), ("E", "C0", "alpha"))
            if power is not None:
                keep("power_law", *refit_power_law(C, L, W), ("C0", "alpha"))
        if curves is not None:
            W = envelope_weights(obs.curve_C, obs.curve_L, counts[:, obs.curve_run])
            keep(
                "frontier_curves",
                *refit_offset_power_law(obs.curve_C, obs.curve_L, W, curves),
                ("E", "C0", "alpha"),
            )
        for name, fit, x0 in (("kaplan_L_N", kaplan_N, "N0"), ("kaplan_L_D", kaplan_D, "D0")):
            if fit is not None:
                keep(
                    name, *refit_offset_power_law(fit.x, fit.L, counts[:, fit.index], fit), ("E", x0, "alpha")
                )
        if iso is not None:
            keep("isoflop", *refit_isoflop(N, D, L, iso, counts), ("a", "b", "tokens_per_param"))
        if par is not None:
            s, ok = refit_parametric(N, D, L, par, counts)
            keep(
                "parametric",
                _with_allocation(s, par.k, C.max()),
                ok,
                ("E", "A", "B", "alpha", "beta", "a", "b", "G", "N_opt", "D_opt", "tokens_per_param"),
            )
    if hold is not None:
        failed.update({f"holdout_{k_}": v for k_, v in hold.failed.items()})

    def with_ci(fit, name):
        return None if fit is None else replace(fit, ci=cis.get(name, {}))

    frontier, power, curves = (
        with_ci(frontier, "frontier"),
        with_ci(power, "power_law"),
        with_ci(curves, "frontier_curves"),
    )
    kaplan_N, kaplan_D = with_ci(kaplan_N, "kaplan_L_N"), with_ci(kaplan_D, "kaplan_L_D")
    iso, par = with_ci(iso, "isoflop"), with_ci(par, "parametric")

    thresholds = {
        "min_r2": cfg.min_r2,
        "max_rel_residual": cfg.max_rel_residual,
        "max_holdout_error": cfg.max_holdout_error,
    }
    verdict = judge(frontier, mono, hold, thresholds, skipped=skipped)
    truth = None if bayes_loss is None else _ground_truth(float(bayes_loss), frontier, par)
    return FitReport(
        obs=obs,
        budgets=budgets,
        frontier=frontier,
        monotonicity=mono,
        power_law=power,
        frontier_curves=curves,
        kaplan_N=kaplan_N,
        kaplan_D=kaplan_D,
        isoflop=iso,
        parametric=par,
        holdout=hold,
        verdict=verdict,
        ground_truth=truth,
        bootstrap=BootstrapInfo(int(counts.shape[0]), cfg.ci, cfg.seed, failed),
        thresholds=thresholds,
        skipped=skipped,
        samples=samples,
    )


def _with_allocation(s: np.ndarray, k: float, C: float) -> np.ndarray:
    """Append a, b, G, N_opt(C), D_opt(C), D_opt/N_opt to (E, A, B, alpha, beta) samples."""
    E, A, B, alpha, beta = s.T
    with np.errstate(all="ignore"):
        a, b = beta / (alpha + beta), alpha / (alpha + beta)
        G = (alpha * A / (beta * B)) ** (1 / (alpha + beta))
        N_opt, D_opt = G * (C / k) ** a, (C / k) ** b / G
    return np.column_stack([s, a, b, G, N_opt, D_opt, D_opt / N_opt])


def _ground_truth(bayes: float, frontier: LawFit | None, par: ParametricFit | None) -> GroundTruth:
    def inside(ci):
        return None if ci is None or not all(map(math.isfinite, ci)) else bool(ci[0] <= bayes <= ci[1])

    E_ci = frontier.ci.get("E") if frontier is not None else None
    pE_ci = par.ci.get("E") if par is not None else None
    return GroundTruth(
        bayes_loss=bayes,
        E=None if frontier is None else frontier.law.E,
        E_ci=E_ci,
        contains=inside(E_ci),
        parametric_E=None if par is None else par.surface.E,
        parametric_E_ci=pE_ci,
        parametric_contains=inside(pE_ci),
    )


def judge(
    frontier: LawFit | None,
    mono: Monotonicity,
    holdout: Holdout | None,
    thresholds: dict[str, float],
    *,
    skipped: dict[str, str] | None = None,
) -> Verdict:
    """Smooth = frontier R^2, largest residual, monotone budgets and hold-out error all within thresholds."""
    skipped = skipped or {}
    checks: list[tuple[str, bool, str]] = []
    if frontier is None:
        checks.append(
            ("frontier", False, f"no compute frontier could be fitted ({skipped.get('frontier', '?')})")
        )
    else:
        r2, res = frontier.r2, frontier.max_rel_residual
        checks.append(
            (
                "r2",
                r2 >= thresholds["min_r2"],
                f"the frontier fit L(C) = E + (C0/C)^alpha explains R^2 = {r2:.4f} of the variance of "
                f"log loss on its {frontier.x.size} points (need >= {thresholds['min_r2']:g})",
            )
        )
        checks.append(
            (
                "residual",
                res <= thresholds["max_rel_residual"],
                f"its largest relative residual is {res:.2%} (allowed {thresholds['max_rel_residual']:.2%})",
            )
        )
    k = mono.L_best.size
    if k < 2:
        checks.append(("monotone", True, "there is a single budget, so the best loss cannot fail to improve"))
    elif mono.monotone:
        checks.append(
            (
                "monotone",
                True,
                f"the best loss improves with every larger budget across {k} budgets (largest change "
                f"{mono.worst_rise:+.2%}, allowed rise {mono.tolerance:.2%})",
            )
        )
    else:
        checks.append(
            (
                "monotone",
                False,
                f"the best loss at budget {mono.worst_label} is {mono.worst_rise:.2%} above the best "
                f"loss of a cheaper budget (allowed {mono.tolerance:.2%})",
            )
        )
    if holdout is None:
        checks.append(
            (
                "holdout",
                False,
                f"no hold-out prediction was possible ({skipped.get('holdout', 'not attempted')})",
            )
        )
    else:
        ok = holdout.max_rel_error <= thresholds["max_holdout_error"]
        checks.append(
            (
                "holdout",
                ok,
                f"fitted without the {holdout.rule}, the frontier law {holdout.law} "
                f"predicts their {holdout.targets.size} "
                f"frontier point(s) within {holdout.max_rel_error:.2%} (mean {holdout.rel_error:.2%}; "
                f"allowed {thresholds['max_holdout_error']:.2%})",
            )
        )
    smooth = all(ok for _, ok, _ in checks)
    because = [s for _, ok, s in checks if ok == smooth]
    sentence = f"loss scales smoothly with compute: {'yes' if smooth else 'no'}, because " + "; ".join(
        because
    )
    return Verdict(smooth, sentence, tuple(s for _, _, s in checks), {name: ok for name, ok, _ in checks})


# --------------------------------------------------------------------------------------------------
# to_dict


def _ci(ci: dict[str, tuple[float, float]]) -> dict[str, list[float]]:
    return {k: [v[0], v[1]] for k, v in ci.items()}


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
        "ci": _ci(fit.ci),
    }


def _report_dict(r: FitReport) -> dict[str, Any]:
    obs, mono = r.obs, r.monotonicity
    out: dict[str, Any] = {
        "n_runs": r.n_runs,
        "conventions": {"params": obs.params, "flops": obs.flops, "notes": list(obs.notes)},
        "excluded": [{"run_id": rid, "why": why} for rid, why in r.excluded],
        "budgets": {
            "rule": r.budgets.rule,
            "isoflop": r.budgets.isoflop,
            "labels": list(r.budgets.labels),
            "C": r.budgets.C.tolist(),
            "best_L": mono.L_best.tolist(),
        },
    }
    front = _law_dict(r.frontier, "C0", "C")
    if front is not None:
        front.update(run_ids=obs.run_id[r.frontier.index].tolist())
    out["frontier"] = front
    out["monotone"] = {
        "monotone": mono.monotone,
        "worst_rise": mono.worst_rise,
        "at": mono.worst_label,
        "tolerance": mono.tolerance,
    }
    if front is not None:
        front.update(monotone=mono.monotone)
    pl = _law_dict(r.power_law, "C0", "C")
    if pl is not None:
        pl.pop("E")
    out["power_law"] = pl
    out["frontier_curves"] = _law_dict(r.frontier_curves, "C0", "C")
    kn, kd = _law_dict(r.kaplan_N, "N0", "N"), _law_dict(r.kaplan_D, "D0", "D")
    if kn is not None:
        kn["D"] = float(obs.D[r.kaplan_N.index].max())
    if kd is not None:
        kd["N"] = float(obs.N[r.kaplan_D.index].max())
    out["kaplan"] = {"L_N": kn, "L_D": kd}
    iso = r.isoflop
    out["isoflop"] = (
        None
        if iso is None
        else {
            "a": iso.a,
            "b": iso.b,
            "a_intercept": iso.a_intercept,
            "b_intercept": iso.b_intercept,
            "tokens_per_param": iso.tokens_per_param,
            "budgets": [
                {
                    "label": p.label,
                    "C": p.C,
                    "n_runs": int(p.index.size),
                    "n_sizes": p.n_sizes,
                    "N_opt": p.N_opt,
                    "D_opt": p.D_opt,
                    "L_opt": p.L_opt,
                    "tokens_per_param": p.D_opt / p.N_opt if p.N_opt > 0 else None,
                    "used": p.used,
                    "note": p.note,
                    "parabola": list(p.coeffs),
                    "log_N_center": p.center,
                }
                for p in iso.budgets
            ],
            "ci": _ci(iso.ci),
        }
    )
    par = r.parametric
    if par is None:
        out["parametric"] = None
    else:
        s: LossSurface = par.surface
        out["parametric"] = {
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
            "compute_optimal": {**par.compute_optimal(float(obs.C.max())), "k": par.k},
            "ci": _ci(par.ci),
        }
    h = r.holdout
    out["holdout"] = (
        None
        if h is None
        else {
            "n": int(h.held.size),
            "rule": h.rule,
            "run_ids": obs.run_id[h.held].tolist(),
            "rel_error": h.rel_error,
            "max_rel_error": h.max_rel_error,
            "targets": [
                {"run_id": obs.run_id[i], "C": float(obs.C[i]), "L_obs": float(obs.L[i]), "L_pred": float(p)}
                for i, p in zip(h.targets, h.L_pred, strict=True)
            ],
            "frontier": {
                "law": h.law,
                "E": h.frontier.law.E,
                "C0": h.frontier.law.x0,
                "alpha": h.frontier.law.alpha,
            },
            "parametric": None
            if h.parametric is None
            else {"rel_error": h.parametric_rel_error, "max_rel_error": h.parametric_max_rel_error},
            "notes": list(h.notes),
            "ci": _ci(h.ci),
        }
    )
    v = r.verdict
    out["verdict"] = {
        "smooth": v.smooth,
        "sentence": v.sentence,
        "reasons": list(v.reasons),
        "checks": v.checks,
        "thresholds": r.thresholds,
    }
    g = r.ground_truth
    out["ground_truth"] = (
        None
        if g is None
        else {
            "bayes_loss": g.bayes_loss,
            "E": g.E,
            "E_ci": None if g.E_ci is None else list(g.E_ci),
            "contains": g.contains,
            "parametric_E": g.parametric_E,
            "parametric_E_ci": None if g.parametric_E_ci is None else list(g.parametric_E_ci),
            "parametric_contains": g.parametric_contains,
        }
    )
    b = r.bootstrap
    out["bootstrap"] = {"resamples": b.resamples, "ci": b.ci, "seed": b.seed, "failed": b.failed}
    out["skipped"] = dict(r.skipped)
    return out


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
