"""Smooth loss, abrupt abilities: per-ability scores on exact-answer questions, and their analysis.

A source's `val_questions` (harness.data.Questions) ask, at chosen positions of the validation set,
for one exact next token, grouped into abilities (the synthetic source's skills; a real-text probe).
At each eval the trainer scores them from the logits it already has (`group_scores`): an ability's
*accuracy* is the share of its questions whose answer is the model's top-1 token (all or nothing per
question), its *log-prob* the mean natural-log probability the model gives the answer (the continuous
quantity underneath). Only abilities asked about at least MIN_ITEMS distinct items are scored: a
rare skill seen in one validation sequence may repeat two chain states thirty times, and a model
whose top-1 happens to match those two would look as if it had learned the skill. `ScoreLog` keeps
the scores per eval in `<run>/abilities.json`.

Across a sweep (`analyse_abilities`, written into report.md by harness.report): at each budget the
runs are ordered by size; an ability *jumps* where its accuracy goes from < UNLEARNED at one size to
> LEARNED at the next larger one, and its log-prob *rises smoothly* when it never falls by more than
SMOOTH_TOL nats from size to size and the jump step carries less than SMOOTH_SHARE of its rise from
the smallest to the largest size. Jumps are listed by the ability's frequency in the training data.
Schaeffer et al. (2023) argue that such jumps come from the all-or-nothing metric while the
probability of the right answer rises gradually; these numbers show whether that holds here. The
fraction of abilities learned (accuracy >= LEARNED) is followed against compute over every eval.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from harness import store

if TYPE_CHECKING:
    from harness.data.source import Questions

FILE = store.ABILITIES
LEARNED = 0.8  # accuracy at which an ability counts as learned
UNLEARNED = 0.2  # a jump starts below this accuracy and ends above LEARNED at the next size
MIN_ITEMS = 8  # abilities asked about fewer distinct items in the validation set are not scored
SMOOTH_TOL = 0.05  # nats: a log-prob may dip this much from one size to the next and still rise smoothly
SMOOTH_SHARE = 0.75  # the jump step may carry at most this share of a smooth log-prob's rise
MAX_NAMED = 8  # a source with at most this many abilities gets per-ability curves in metrics and W&B
PLOTS = ("abilities_jumps", "abilities_by_frequency", "abilities_learned")
_SHOWN = 4  # abilities drawn in the jumps plot
_MAX_ROWS = 30  # jumps listed in report.md


# --------------------------------------------------------------------------------------------------
# scores of one eval


@dataclass(frozen=True)
class Scores:
    """One eval's result per ability (index = ability; nan where an ability has no questions)."""

    acc: np.ndarray  # share of its questions whose answer is the model's top-1 token
    logp: np.ndarray  # mean log-probability of the answer, nats
    n: np.ndarray  # questions
    items: np.ndarray  # distinct items its questions ask about


def group_scores(questions: Questions, answer_logp: np.ndarray, correct: np.ndarray) -> Scores:
    """Per-ability accuracy and mean answer log-prob from the per-question results."""
    g, size = questions.group, len(questions.names)
    n = np.bincount(g, minlength=size)
    pairs = np.unique(np.stack([g, questions.item]), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.bincount(g, weights=correct.astype(np.float64), minlength=size) / n
        logp = np.bincount(g, weights=answer_logp.astype(np.float64), minlength=size) / n
    return Scores(acc=acc, logp=logp, n=n, items=np.bincount(pairs[0], minlength=size))


def learned_fraction(acc: np.ndarray, items: np.ndarray) -> float | None:
    """Share of the scorable abilities (>= MIN_ITEMS distinct items) with accuracy >= LEARNED."""
    scorable = np.asarray(items) >= MIN_ITEMS
    return float(np.mean(np.asarray(acc)[scorable] >= LEARNED)) if scorable.any() else None


def eval_metrics(scores: Scores, names: tuple[str, ...]) -> dict[str, float]:
    """Scalars for an eval row (metrics.jsonl, W&B): accuracy and log-prob over all questions, the
    share of abilities learned, and each ability's own values when there are at most MAX_NAMED."""
    asked = scores.n > 0
    if not asked.any():
        return {}
    w = scores.n[asked] / scores.n.sum()
    out = {
        "val/answer_acc": float(w @ scores.acc[asked]),
        "val/answer_logp": float(w @ scores.logp[asked]),
    }
    learned = learned_fraction(scores.acc, scores.items)
    if learned is not None:
        out["val/abilities_learned"] = learned
    if len(names) <= MAX_NAMED:
        for g in np.flatnonzero(asked):
            out[f"val/{names[g]}_acc"] = float(scores.acc[g])
            out[f"val/{names[g]}_logp"] = float(scores.logp[g])
    return out


class ScoreLog:
    """A run's ability scores at each eval, rewritten atomically to `path` after every eval.

    Only abilities with questions are stored. A resumed run keeps the evals up to its checkpoint
    (`keep_until`, a step); a fresh one (0) drops what an earlier attempt left.
    """

    def __init__(self, path: Path, questions: Questions, keep_until: int) -> None:
        self.path = path
        self.questions = questions
        old = store.read_json(path) or {}
        self.evals = [e for e in old.get("evals", []) if e.get("step", math.inf) <= keep_until]

    def add(self, at: dict, scores: Scores) -> None:
        """Append one eval (`at`: step, tokens, flops, ...) and rewrite the file."""
        asked = np.flatnonzero(scores.n)
        self.evals.append({**at, "acc": scores.acc[asked].tolist(), "logp": scores.logp[asked].tolist()})
        freq = self.questions.frequency
        record = {
            "description": self.questions.description,
            "names": [self.questions.names[g] for g in asked],
            "frequency": None if freq is None else freq[asked].tolist(),
            "questions": scores.n[asked].tolist(),
            "items": scores.items[asked].tolist(),
            "evals": self.evals,
        }
        store.write_atomic(self.path, json.dumps(record) + "\n")


def read_scores(sweep_dir: Path, rows: list[dict]) -> dict[str, dict]:
    """The abilities.json of each results row's run that has one, keyed by run id."""
    out = {}
    for row in rows:
        record = store.read_json(store.run_dir(sweep_dir, store.row_dirname(row)) / FILE)
        if record and record.get("evals"):
            out[row["run_id"]] = record
    return out


# --------------------------------------------------------------------------------------------------
# analysis across sizes


def largest_rise(acc: np.ndarray) -> tuple[int, bool]:
    """Over sizes in ascending order: the step `at` (sizes[at] -> sizes[at + 1]) where accuracy rises
    most, and whether that step is a jump (from < UNLEARNED to > LEARNED)."""
    at = int(np.argmax(np.diff(acc)))
    return at, bool(acc[at] < UNLEARNED and acc[at + 1] > LEARNED)


def logp_rise(logp: np.ndarray, at: int) -> tuple[float | None, bool]:
    """The share of the log-prob's rise from the smallest to the largest size that happens at step
    `at`, and whether the log-prob rises smoothly: it never falls by more than SMOOTH_TOL from size
    to size and step `at` carries less than SMOOTH_SHARE of the rise (None, False: no rise)."""
    total = logp[-1] - logp[0]
    if not total > 0:
        return None, False
    share = float((logp[at + 1] - logp[at]) / total)
    return share, bool(np.all(np.diff(logp) >= -SMOOTH_TOL) and share < SMOOTH_SHARE)


@dataclass(frozen=True)
class Series:
    """One ability's end-of-run accuracy and log-prob across the sizes trained on one budget."""

    name: str
    frequency: float | None
    questions: int
    budget: str
    sizes: tuple[float, ...]  # N of each run, ascending
    acc: tuple[float, ...]
    logp: tuple[float, ...]
    at: int  # the step of the largest accuracy rise: sizes[at] -> sizes[at + 1]
    jump: bool
    logp_share: float | None  # share of the log-prob's total rise that happens at step `at`
    smooth: bool


@dataclass(frozen=True)
class RunAbilities:
    """One run's share of abilities learned at each eval (its last eval is the end of the run)."""

    run_id: str
    N: float
    tokens: float
    C: np.ndarray  # compute at each eval
    learned: np.ndarray
    logp: float  # mean answer log-prob over the scorable abilities at the end


@dataclass(frozen=True)
class AbilityReport:
    description: str
    questions: int
    abilities: int  # abilities with questions
    scorable: int  # ... about at least MIN_ITEMS distinct items
    series: tuple[Series, ...]  # every (scorable ability, budget with >= 2 sizes)
    runs: tuple[RunAbilities, ...]

    @property
    def jumps(self) -> list[Series]:
        """The jumps, the most frequent ability first."""
        return sorted((s for s in self.series if s.jump), key=lambda s: (-(s.frequency or 0), s.name))

    def shown(self) -> list[Series]:
        """What the jumps plot draws: jumps of the most frequent abilities, else the steepest rises."""
        rest = sorted((s for s in self.series if not s.jump), key=lambda s: -(s.acc[s.at + 1] - s.acc[s.at]))
        out: list[Series] = []
        for s in [*self.jumps, *rest]:
            if len(out) < _SHOWN and s.name not in {o.name for o in out}:
                out.append(s)
        return out

    def to_dict(self) -> dict:
        jumps = self.jumps
        return {
            "description": self.description,
            "questions": self.questions,
            "abilities": self.abilities,
            "scorable": self.scorable,
            "thresholds": {"learned": LEARNED, "unlearned": UNLEARNED, "min_items": MIN_ITEMS},
            "jumps": [vars(s) for s in jumps],
            "smooth_jumps": sum(s.smooth for s in jumps),
            "learned": [
                {"run_id": r.run_id, "N": r.N, "tokens": r.tokens, "C": r.C[-1], "learned": r.learned[-1]}
                for r in self.runs
            ],
        }


def analyse_abilities(
    rows: list[dict], scores: dict[str, dict], *, n_col: str, c_col: str
) -> AbilityReport | None:
    """Jumps and learned fractions of the finished runs with scores (None when there are none).

    `rows` are result rows (numbers may be strings), `scores` each run's abilities.json; N is read
    from column `n_col` and compute C from `c_col` of the rows and of each eval.
    """
    # abilities.json files written before the per-skill item counts existed cannot be scored: skipped
    scored = {k: v for k, v in scores.items() if "items" in v}
    done = [r for r in rows if str(r.get("status", "done")) == "done" and r.get("run_id") in scored]
    if not done:
        return None
    first = scored[done[0]["run_id"]]
    names, questions, items = first["names"], np.asarray(first["questions"]), np.asarray(first["items"])
    freq = first.get("frequency")
    scorable = np.flatnonzero(items >= MIN_ITEMS)

    runs, final = [], {}
    for row in done:
        rec = scores[row["run_id"]]
        if rec["names"] != names:  # another validation set: not comparable
            continue
        acc = np.array([e["acc"] for e in rec["evals"]])
        logp = np.array([e["logp"] for e in rec["evals"]])
        final[row["run_id"]] = acc[-1], logp[-1]
        runs.append(
            RunAbilities(
                run_id=row["run_id"],
                N=float(row[n_col]),
                tokens=float(row["tokens"]),
                C=np.array([float(e[c_col]) for e in rec["evals"]]),
                learned=np.array([learned_fraction(a, items) or 0.0 for a in acc]),
                logp=float(logp[-1][scorable].mean()) if scorable.size else math.nan,
            )
        )

    series = []
    budgets: dict[str, list[dict]] = {}
    for row in done:
        if row["run_id"] in final:
            budgets.setdefault(str(row.get("budget") or row["tokens"]), []).append(row)
    for budget, group in sorted(budgets.items(), key=lambda kv: float(kv[0])):
        group = sorted(group, key=lambda r: float(r[n_col]))
        if len(group) < 2:
            continue
        sizes = tuple(float(r[n_col]) for r in group)
        acc = np.array([final[r["run_id"]][0] for r in group])
        logp = np.array([final[r["run_id"]][1] for r in group])
        for g in scorable:
            at, jump = largest_rise(acc[:, g])
            share, smooth = logp_rise(logp[:, g], at)
            series.append(
                Series(
                    name=names[g],
                    frequency=None if freq is None else float(freq[g]),
                    questions=int(questions[g]),
                    budget=budget,
                    sizes=sizes,
                    acc=tuple(acc[:, g].tolist()),
                    logp=tuple(logp[:, g].tolist()),
                    at=at,
                    jump=jump,
                    logp_share=share,
                    smooth=smooth,
                )
            )
    return AbilityReport(
        description=first.get("description", ""),
        questions=int(questions.sum()),
        abilities=len(names),
        scorable=int(scorable.size),
        series=tuple(series),
        runs=tuple(sorted(runs, key=lambda r: r.C[-1])),
    )


# --------------------------------------------------------------------------------------------------
# report section and plots


def _f(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.{digits}g}"


def markdown(rep: AbilityReport, plots: list[str]) -> str:
    """The report.md section: definitions, the jumps by frequency, the share learned per run."""
    jumps = rep.jumps
    lines = [
        "## Abilities: smooth loss, abrupt skills",
        "",
        f"Questions: {rep.description}. {rep.questions} questions on the validation set in "
        f"{rep.abilities} abilities; the {rep.scorable} asked about >= {MIN_ITEMS} distinct items are "
        "scored. "
        "Accuracy: share of an ability's questions whose answer is the model's top-1 token; log-prob: "
        "mean natural-log probability the model gives the answer (nats), both at the end of each run. "
        f"Learned: accuracy >= {LEARNED}. A jump: accuracy < {UNLEARNED} at one size and > {LEARNED} at "
        "the next larger size trained on the same budget; its log-prob rises smoothly when it never "
        f"falls by more than {SMOOTH_TOL} nats from size to size and the jump step carries less than "
        f"{SMOOTH_SHARE:.0%} of its rise from the smallest to the largest size.",
        "",
        f"**{len(jumps)} jumps ({len({s.name for s in jumps})} distinct abilities) between adjacent sizes; "
        f"in {sum(s.smooth for s in jumps)} of them the log-prob rises smoothly.**",
        "",
    ]
    if jumps:
        lines += [
            "| ability | frequency | questions | budget | N | accuracy | log-prob (nats) "
            "| jump at N | share of log-prob rise at the jump | smooth |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for s in jumps[:_MAX_ROWS]:
            share = "n/a" if s.logp_share is None else f"{s.logp_share:.0%}"
            lines.append(
                f"| {s.name} | {_f(s.frequency)} | {s.questions} | {_f(float(s.budget))} "
                f"| {', '.join(_f(n) for n in s.sizes)} | {', '.join(f'{a:.2f}' for a in s.acc)} "
                f"| {', '.join(f'{p:.2f}' for p in s.logp)} | {_f(s.sizes[s.at])} -> {_f(s.sizes[s.at + 1])} "
                f"| {share} | {'yes' if s.smooth else 'no'} |"
            )
        if len(jumps) > _MAX_ROWS:
            lines.append(f"\n({len(jumps) - _MAX_ROWS} more in fit.json)")
        lines.append("")
    lines += [
        "Share of the scorable abilities learned at the end of each run:",
        "",
        "| run | N | tokens | C (FLOPs) | learned | mean log-prob (nats) |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r.run_id} | {_f(r.N)} | {_f(r.tokens)} | {_f(r.C[-1])} | {r.learned[-1]:.0%} | {_f(r.logp)} |"
        for r in rep.runs
    ]
    lines += [""] + [f"![{p}](plots/{p}.png)" for p in plots] + [""]
    return "\n".join(lines)


def write_plots(rep: AbilityReport, plot_dir: Path, *, n_label: str, c_label: str) -> list[str]:
    """abilities_jumps.png (accuracy and log-prob against size for a few abilities),
    abilities_by_frequency.png (both for every scorable ability at the largest budget, the most
    frequent first) and abilities_learned.png (share learned against compute, every eval of every run)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter

    plot_dir.mkdir(parents=True, exist_ok=True)
    written = []
    shown = rep.shown()
    if shown:
        fig = Figure(figsize=(10, 4.5))
        fig.subplots_adjust(left=0.08, right=0.97, bottom=0.12, top=0.9, wspace=0.28)
        ax_acc, ax_lp = fig.subplots(1, 2)
        for k, s in enumerate(shown):
            label = f"{s.name} (budget {float(s.budget):.3g}{', jump' if s.jump else ''})"
            ax_acc.plot(s.sizes, s.acc, "o-", color=f"C{k}", label=label)
            ax_lp.plot(s.sizes, s.logp, "o-", color=f"C{k}", label=label)
            for ax, ys in ((ax_acc, s.acc), (ax_lp, s.logp)):
                ax.plot(s.sizes[s.at : s.at + 2], ys[s.at : s.at + 2], color=f"C{k}", lw=3, alpha=0.4)
        for y in (UNLEARNED, LEARNED):
            ax_acc.axhline(y, color="0.6", ls=":", lw=0.8)
        ax_acc.set(xscale="log", xlabel=n_label, ylabel="accuracy (answer is top-1)", ylim=(-0.03, 1.03))
        ax_lp.set(xscale="log", xlabel=n_label, ylabel="mean log p(answer), nats")
        for ax in (ax_acc, ax_lp):
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax_acc.legend(fontsize=7)
        fig.suptitle(
            "accuracy jumps between adjacent sizes; the log-probability underneath"
            if rep.jumps
            else "no jump; the steepest accuracy rises and their log-probability"
        )
        fig.savefig(plot_dir / "abilities_jumps.png", dpi=110)
        written.append("abilities_jumps")

    if rep.series:  # built budget by budget, ascending: the last budget is the largest
        budget = rep.series[-1].budget
        rows = sorted((s for s in rep.series if s.budget == budget), key=lambda s: -(s.frequency or 0))
        fig = Figure(figsize=(10, max(4.0, 1.2 + 0.15 * len(rows))))
        fig.subplots_adjust(left=0.1, right=0.92, bottom=0.08, top=0.93, wspace=0.45)
        for ax, key, label, limits in zip(
            fig.subplots(1, 2),
            ("acc", "logp"),
            ("accuracy (answer is top-1)", "mean log p(answer), nats"),
            ((0.0, 1.0), (None, None)),
            strict=True,
        ):
            values = np.array([getattr(s, key) for s in rows])
            image = ax.imshow(values, aspect="auto", cmap="viridis", vmin=limits[0], vmax=limits[1])
            ax.set_xticks(range(len(rows[0].sizes)), [f"{n:.3g}" for n in rows[0].sizes])
            ax.set_yticks(range(len(rows)), [s.name for s in rows], fontsize=6)
            ax.set(xlabel=n_label)
            fig.colorbar(image, ax=ax, label=label)
        fig.suptitle(f"abilities by training frequency (most frequent first), budget {float(budget):.3g}")
        fig.savefig(plot_dir / "abilities_by_frequency.png", dpi=110)
        written.append("abilities_by_frequency")

    fig = Figure(figsize=(7.5, 5.5))
    fig.subplots_adjust(left=0.11, right=0.97, bottom=0.1, top=0.93)
    ax = fig.subplots()
    for r in rep.runs:
        ax.plot(r.C, r.learned, color="0.8", lw=0.8, zorder=0)
    sc = ax.scatter(
        [r.C[-1] for r in rep.runs],
        [r.learned[-1] for r in rep.runs],
        c=np.log10([r.N for r in rep.runs]),
        cmap="viridis",
        s=20,
        zorder=2,
    )
    fig.colorbar(sc, ax=ax, label=f"log10 {n_label}")
    ax.set(
        xscale="log",
        xlabel=c_label,
        ylabel=f"share of the {rep.scorable} scorable abilities learned (accuracy >= {LEARNED})",
        ylim=(-0.03, 1.03),
        title="abilities learned vs compute (grey: each run's evals)",
    )
    fig.savefig(plot_dir / "abilities_learned.png", dpi=110)
    written.append("abilities_learned")
    return written
