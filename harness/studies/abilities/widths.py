"""Smooth loss, abrupt abilities: how sharply each multi-token task is learned along the compute frontier.

Each run's eval rows (metrics.jsonl, `scores["tasks"]`, from harness.evaluate.TaskScoring) hold its
answers to the source's multi-token tasks: per prompt, which answer tokens were the model's top-1 given
the true prefix, and their log-probabilities. For an answer of m tokens (m in M_VALUES) and one ability:

    exact match   share of prompts whose first m answer tokens are all top-1 (greedy decoding writes them)
    log-prob      u = mean over prompts and the m tokens of (log p - log 1/V) / (log p_Bayes - log 1/V):
                  the per-token log-prob, linear, from 0 (a uniform guess) to 1 (the Bayes-optimal
                  predictor); the continuous metric underneath
    predicted     the exact match the log-probs predict: per prompt the product over its m tokens of
                  f(log p), f(l) = P(top-1 | log p = l) a logistic fitted to every answer token of every
                  frontier run, averaged over prompts. A product of m smooth factors sharpens as m grows
                  (Schaeffer et al. 2023: p^m): that sharpness is the metric's, not the model's

Runs are ordered along the compute frontier (each budget's and seed's lowest-loss run, at its end),
not along size at one budget. A logistic y = 1 / (1 + exp(-(x - x0) / s)) in x = log10 C is fitted
to each metric by least squares; its 10-90% width is 2 ln 9 s decades, with a bootstrap interval over
prompts (within the ability) and seeds. An ability is *abrupt* at m only by the `Rules`, fixed
before the runs: its exact match's width is below max_width (the interval's
upper end), its midpoint lies inside the frontier's compute range, and it is narrower than the
predicted curve's in at least 1 - level / T of the paired resamples (T: every ability x m tested,
Bonferroni). Every width is published, abrupt or not; the log-prob itself *snaps* when its own width
passes the first two rules (a skill learned as one unit, e.g. copying, can do that).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from harness.data.source import unpack_bits
from harness.stats import percentile_interval


@dataclass(frozen=True)
class Rules:
    """What calls an ability abrupt, fixed before the runs: along the compute frontier its exact match
    rises from 10% to 90% within max_width decades (upper end of the interval), sharper than its own
    log-prob predicts (bootstrap over prompts and seeds, Bonferroni over every ability and answer
    length: level / tests), with the midpoint inside the compute range."""

    max_width: float = 0.5  # decades of compute
    level: float = 0.05  # family-wise error of 'sharper than the log-prob predicts'
    bootstrap: int = 200  # resamples of prompts and seeds for the widths' intervals
    ci: float = 0.95
    seed: int = 0


RULES = Rules()
M_VALUES = (1, 2, 4, 8)  # answer lengths scored
METRICS = ("exact", "logp", "predicted")
WIDTH_PER_S = 2 * math.log(9)  # 10-90% width of a logistic in units of its scale s
_X0_STEP, _S_GRID = 0.02, np.geomspace(0.01, 3.0, 80)  # decades


def frontier_runs(rows: list[dict], *, c_col: str) -> list[dict]:
    """Each budget's and seed's lowest-loss finished run, by increasing compute."""
    best: dict[tuple[str, str], dict] = {}
    for r in rows:
        if str(r.get("status", "done")) != "done" or r.get("val_loss") in (None, ""):
            continue
        key = (str(r.get("budget") or r["tokens"]), str(r.get("seed") or 0))
        if key not in best or float(r["val_loss"]) < float(best[key]["val_loss"]):
            best[key] = r
    return sorted(best.values(), key=lambda r: float(r[c_col]))


def top1_given_logp(correct: np.ndarray, logp: np.ndarray, iterations: int = 25) -> tuple[float, float]:
    """(a, b) of f(l) = 1 / (1 + exp(-(a + b l))), the chance that a token of log-prob l is the top-1,
    by maximum likelihood (Newton's method) over all the given tokens."""
    y, X = correct.ravel().astype(float), np.column_stack([np.ones(logp.size), logp.ravel()])
    w = np.zeros(2)
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-np.clip(X @ w, -30, 30)))
        H = X.T @ (X * (p * (1 - p) + 1e-9)[:, None])
        w = w + np.linalg.solve(H + 1e-6 * np.eye(2), X.T @ (y - p))
    return float(w[0]), float(w[1])


def task_metrics(
    correct: np.ndarray, logp: np.ndarray, bayes: np.ndarray, m: int, *, floor: float, f: tuple[float, float]
) -> np.ndarray:
    """[3, P] per prompt over its first m answer tokens: exact match, u and the predicted exact match
    (module docstring); `floor` is log 1/V, f the (a, b) of top1_given_logp."""
    exact = correct[:, :m].all(axis=1).astype(float)
    u = ((logp[:, :m] - floor) / (bayes[:, :m] - floor)).mean(axis=1)
    top1 = 1 / (1 + np.exp(-np.clip(f[0] + f[1] * logp[:, :m], -30, 30)))
    return np.stack([exact, u, top1.prod(axis=1)])


def fit_logistic(x: np.ndarray, Y: np.ndarray, weight: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """Least-squares (x0, s) of 1 / (1 + exp(-(x - x0) / s)) for each row of Y (B, n) at points x (n,),
    each point weighted by `weight` (B, n; default 1), on a grid: x0 from 2 decades below to 2 above
    the points, s on _S_GRID."""
    W = np.ones_like(Y) if weight is None else weight
    x0 = np.arange(x.min() - 2, x.max() + 2 + _X0_STEP, _X0_STEP)
    X0, S = (g.ravel() for g in np.meshgrid(x0, _S_GRID))
    with np.errstate(over="ignore"):
        pred = 1 / (1 + np.exp(-(x[None, :] - X0[:, None]) / S[:, None]))  # (G, n)
    sse = W @ (pred**2).T - 2 * (W * Y) @ pred.T  # + sum W Y^2, the same at every grid point
    best = np.argmin(sse, axis=1)
    return X0[best], S[best]


@dataclass(frozen=True)
class Width:
    """A metric's logistic along the frontier: 10-90% width (decades) and midpoint, with intervals."""

    width: float
    width_ci: tuple[float, float]
    mid: float  # log10 C at half height
    mid_ci: tuple[float, float]


@dataclass(frozen=True)
class AbilityWidths:
    """One ability at one answer length: its three metrics' widths and the verdict."""

    name: str
    frequency: float | None
    m: int
    widths: dict[str, Width]
    sharper_share: float  # paired resamples in which the exact match is narrower than predicted
    abrupt: bool
    snaps: bool  # the log-prob itself passes the width and range rules
    final: dict[str, float] = field(default_factory=dict)  # each metric at the largest compute


@dataclass(frozen=True)
class AbilityReport:
    description: str
    runs: int  # frontier runs used
    seeds: int
    prompts: int  # per ability
    C: np.ndarray  # (n,) frontier runs' compute
    curves: dict[tuple[str, int], np.ndarray]  # (ability, m) -> (3, n) metrics per run
    rows: tuple[AbilityWidths, ...]
    rules: Rules
    tests: int

    @property
    def abrupt(self) -> list[AbilityWidths]:
        return [r for r in self.rows if r.abrupt]

    def to_dict(self) -> dict:
        return {
            "description": self.description, "runs": self.runs, "seeds": self.seeds,
            "prompts": self.prompts, "rules": vars(self.rules), "tests": self.tests,
            "C": self.C.tolist(),
            "widths": [
                {"ability": r.name, "frequency": r.frequency, "m": r.m, "abrupt": r.abrupt, "snaps": r.snaps,
                 "sharper_share": r.sharper_share, "final": r.final,
                 **{k: vars(w) for k, w in r.widths.items()}}
                for r in self.rows
            ],
        }  # fmt: skip


def metric_widths(
    x: np.ndarray, per_prompt: np.ndarray, pick: np.ndarray, weight: np.ndarray, ci: float
) -> tuple[dict[str, Width], dict[str, np.ndarray]]:
    """Each metric's logistic along x (per_prompt: runs x METRICS x prompts) and its bootstrap widths:
    resample b takes prompts pick[b] and weighs each run as often as its seed was drawn (weight[b])."""
    widths, boot = {}, {}
    for k, metric in enumerate(METRICS):
        y = per_prompt[:, k, :]
        x0, s = fit_logistic(x, y.mean(axis=1)[None, :])
        bx0, bs = fit_logistic(x, y[:, pick].mean(axis=2).T, weight)
        boot[metric] = WIDTH_PER_S * bs
        widths[metric] = Width(
            float(WIDTH_PER_S * s[0]), percentile_interval(boot[metric], ci),
            float(x0[0]), percentile_interval(bx0, ci),
        )  # fmt: skip
    return widths, boot


def _within(w: Width, x: np.ndarray, rules: Rules) -> bool:
    """The width rule and the range rule."""
    return w.width_ci[1] < rules.max_width and x.min() <= w.mid_ci[0] and w.mid_ci[1] <= x.max()


def analyse_abilities(
    rows: list[dict], meta: dict, last: dict[str, dict], *, c_col: str, rules: Rules
) -> AbilityReport | None:
    """Widths and verdicts of every task ability and answer length along the frontier. `meta`: the
    tasks' description (harness.evaluate.describe); `last`: each run's task scores at its last eval, by
    run id. None without task scores on at least 3 frontier runs."""
    runs = [r for r in frontier_runs(rows, c_col=c_col) if r["run_id"] in last]
    if len(runs) < 3:
        return None
    group, M, floor = np.asarray(meta["group"]), meta["answer_len"], -math.log(meta["vocab_size"])
    bayes = np.asarray(meta["bayes_logp"], dtype=float)
    seeds = np.array([int(float(r.get("seed") or 0)) for r in runs])
    x = np.log10([float(r[c_col]) for r in runs])
    per_run = []  # (P, M) correct and logp of each run's last eval
    for r in runs:
        scores = last[r["run_id"]]
        per_run.append((unpack_bits(scores["correct"], M), np.asarray(scores["logp"], dtype=float)))
    f = top1_given_logp(np.stack([c for c, _ in per_run]), np.stack([lp for _, lp in per_run]))
    rng = np.random.default_rng(rules.seed)
    seed_ids = np.unique(seeds)
    ms = [m for m in M_VALUES if m <= M]
    tests = len(meta["names"]) * len(ms)
    out, curves = [], {}
    for g, name in enumerate(meta["names"]):
        idx = np.flatnonzero(group == g)
        B = rules.bootstrap
        pick = rng.integers(0, idx.size, size=(B, idx.size))  # prompts, within the ability
        seed_draw = rng.choice(seed_ids, size=(B, seed_ids.size))  # seeds
        weight = np.array([[np.sum(d == s) for s in seeds] for d in seed_draw], dtype=float)  # (B, n)
        for m in ms:
            per_prompt = np.stack(  # (runs, metrics, prompts)
                [task_metrics(c[idx], lp[idx], bayes[idx], m, floor=floor, f=f) for c, lp in per_run]
            )
            curves[name, m] = per_prompt.mean(axis=2).T
            widths, boot_w = metric_widths(x, per_prompt, pick, weight, rules.ci)
            sharper = float(np.mean(boot_w["exact"] < boot_w["predicted"]))
            freq = meta.get("frequency")
            out.append(
                AbilityWidths(
                    name=name,
                    frequency=None if freq is None else float(freq[g]),
                    m=m,
                    widths=widths,
                    sharper_share=sharper,
                    abrupt=_within(widths["exact"], x, rules) and sharper >= 1 - rules.level / tests,
                    snaps=_within(widths["logp"], x, rules),
                    final={k: float(curves[name, m][j, -1]) for j, k in enumerate(METRICS)},
                )
            )
    return AbilityReport(
        description=meta.get("description", ""), runs=len(runs), seeds=seed_ids.size,
        prompts=int(np.bincount(group).min()), C=10**x, curves=curves, rows=tuple(out), rules=rules,
        tests=tests,
    )  # fmt: skip
