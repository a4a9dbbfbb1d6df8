"""Abilities: exact-answer questions (synthetic skills, text induction), their scores from known logits,
the per-run score file, jump detection on made-up numbers, and the report section of a real sweep."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import harness.refit as fit_cli
from harness import abilities as ab
from harness.config import FitConfig, SyntheticConfig
from harness.data import Questions, make_source
from harness.data.synthetic import SkillMixture
from harness.data.text import induction_questions
from harness.device import Device
from harness.plan import plan_runs
from harness.sweep import run_sweep
from harness.tracking.wandb_run import NullLogger
from harness.train import evaluate, train_run
from tests.conftest import compose_config

CPU = Device("cpu", "fp32", False, None)


class _Bigram(torch.nn.Module):
    """A 'model' whose logits at each position are a fixed row of `table` chosen by the input token."""

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.table = table

    def forward(self, input_ids: torch.Tensor) -> SimpleNamespace:
        return SimpleNamespace(logits=self.table[input_ids])


def test_evaluate_scores_questions_from_known_logits() -> None:
    table = torch.tensor([[2.0, 0.0, 0.0], [0.0, 3.0, 1.0], [0.0, 0.0, 0.0]])
    lp = table.log_softmax(-1)
    x = torch.tensor([[0, 1, 2], [1, 0, 1]])
    y = torch.tensor([[1, 2, 0], [1, 0, 2]])
    # questions at flat positions 0, 1, 3, 5 (rows 0 and 1), answers 0, 1, 1, 2; abilities a, b, a, b
    q = Questions(
        pos=np.array([0, 1, 3, 5]),
        answer=np.array([0, 1, 1, 2]),
        group=np.array([0, 1, 0, 1]),
        item=np.array([0, 1, 1, 1]),
        names=("a", "b", "c"),
        description="test",
    )
    for chunk in (1, 2, 64):  # questions split across chunks land in order
        ev = evaluate(_Bigram(table), (x, y), CPU, q, chunk=chunk)
        assert ev.loss == pytest.approx(float(-lp[x, y].mean()), rel=1e-6)
        expected_logp = [lp[0, 0], lp[1, 1], lp[1, 1], lp[1, 2]]
        np.testing.assert_allclose(ev.answer_logp, [float(v) for v in expected_logp], rtol=1e-6)
        np.testing.assert_array_equal(ev.answer_correct, [True, True, True, False])

    s = ab.group_scores(q, ev.answer_logp, ev.answer_correct)
    np.testing.assert_array_equal(s.n, [2, 2, 0])
    np.testing.assert_array_equal(s.items, [2, 1, 0])
    np.testing.assert_allclose(s.acc[:2], [1.0, 0.5])
    assert s.logp[0] == pytest.approx(float(lp[0, 0] + lp[1, 1]) / 2)
    assert math.isnan(s.acc[2])  # no questions: no score
    metrics = ab.eval_metrics(s, q.names)
    assert metrics["val/answer_acc"] == pytest.approx(0.75)
    assert metrics["val/a_acc"] == 1.0 and metrics["val/b_acc"] == 0.5 and "val/c_acc" not in metrics
    assert "val/abilities_learned" not in metrics  # no ability is asked about MIN_ITEMS items

    assert evaluate(_Bigram(table), (x, y), CPU).answer_logp.size == 0  # no questions: loss only


def test_skill_questions_need_the_skill() -> None:
    mixture = SkillMixture.create(SyntheticConfig(n_skills=16), vocab_size=8, seed=3)
    seq, skills = mixture.sample(64, 33, np.random.default_rng(0))
    q = mixture.questions(seq, skills)
    assert len(q.pos) > 100 and q.frequency is mixture.skill_p and len(q.names) == 16
    row, t = np.divmod(q.pos, 32)
    assert (np.diff(q.pos) > 0).all() and (t > 0).all()  # the first token cannot identify a skill
    np.testing.assert_array_equal(q.group, skills[row])
    top = mixture.succ[q.group, seq[row, t], mixture.prob[q.group, seq[row, t]].argmax(-1)]
    np.testing.assert_array_equal(q.answer, top)  # the skill's most likely next token
    np.testing.assert_array_equal(q.item, seq[row, t])  # asked about the current chain state
    dense = np.zeros((16, 8, 8))
    np.put_along_axis(dense, mixture.succ, mixture.prob, axis=-1)
    bigram_top = np.einsum("k,kab->ab", mixture.skill_p, dense).argmax(-1)
    assert (q.answer != bigram_top[seq[row, t]]).all()  # bigram statistics answer none


def test_induction_questions_ask_for_unambiguous_repeats() -> None:
    # windows of tokens; the target of position t is the next token
    a = np.array([5, 1, 2, 3, 9, 1, 2, 3, 9, 1, 2, 3, 4, 7])
    b = np.array([1, 2, 3, 4, 1, 2, 3, 5, 1, 2, 3, 4, 6, 6])
    q = induction_questions(np.stack([a[:-1], b[:-1]]), np.stack([a[1:], b[1:]]), n=3)
    # row 0: the 3-grams ending at t=7..10 repeat those ending at t=3..6 and continue the same way:
    #        asked; (1, 2, 3) at t=11 was followed by 9 before, now by 4: not asked
    # row 1: (1, 2, 3) at t=6 continues with 5, not 4 as before; at t=10 its earlier continuations
    #        disagree (4, 5): nothing asked
    np.testing.assert_array_equal(q.pos, [7, 8, 9, 10])
    np.testing.assert_array_equal(q.answer, [9, 1, 2, 3])
    assert q.names == ("induction",) and (q.group == 0).all() and q.frequency is None
    np.testing.assert_array_equal(q.item, q.answer)


def test_score_log_keeps_evals_up_to_the_resume_step(tmp_path: Path) -> None:
    q = Questions(
        np.array([0]), np.array([0]), np.array([1]), np.array([0]), ("a", "b"), "test", np.array([0.9, 0.1])
    )
    nan = np.nan
    scores = ab.Scores(
        acc=np.array([nan, 0.5]), logp=np.array([nan, -1.0]), n=np.array([0, 30]), items=np.array([0, 9])
    )
    log = ab.ScoreLog(tmp_path / ab.FILE, q, keep_until=0)
    for step in (10, 20, 30):
        log.add({"step": step, "flops": step * 1e6}, scores)
    record = json.loads((tmp_path / ab.FILE).read_text())
    assert record["names"] == ["b"] and record["frequency"] == [0.1] and record["questions"] == [30]
    assert record["items"] == [9]
    assert [e["step"] for e in record["evals"]] == [10, 20, 30] and record["evals"][0]["acc"] == [0.5]
    resumed = ab.ScoreLog(tmp_path / ab.FILE, q, keep_until=20)
    resumed.add({"step": 30, "flops": 3e7}, scores)
    assert [e["step"] for e in json.loads((tmp_path / ab.FILE).read_text())["evals"]] == [10, 20, 30]
    assert ab.ScoreLog(tmp_path / ab.FILE, q, keep_until=0).evals == []  # a fresh start drops them


@pytest.mark.parametrize(
    ("acc", "at", "jump"),
    [
        ([0.0, 0.1, 0.9, 1.0], 1, True),
        ([0.1, 0.5, 0.95, 1.0], 1, False),  # rises most from 0.5 to 0.95: not from below 0.2
        ([0.05, 0.15, 0.85, 0.8], 1, True),
        ([0.0, 0.0, 0.1, 0.7], 2, False),  # never learned
    ],
)
def test_largest_rise_finds_jumps(acc, at, jump) -> None:
    assert ab.largest_rise(np.array(acc)) == (at, jump)


@pytest.mark.parametrize(
    ("logp", "share", "smooth"),
    [
        ([-2.0, -1.5, -1.0, -0.5], 1 / 3, True),  # even rise in log-prob
        ([-2.0, -1.9, -0.6, -0.5], 0.866, False),  # the log-prob jumps where the accuracy does
        ([-2.0, -1.0, -1.2, -0.5], -0.133, False),  # falls by 0.2 nats from one size to the next
        ([-1.0, -1.2, -1.3, -1.5], None, False),  # no rise at all
    ],
)
def test_logp_rise_share_and_smoothness(logp, share, smooth) -> None:
    got_share, got_smooth = ab.logp_rise(np.array(logp), at=1)
    assert got_smooth is smooth
    assert got_share == (None if share is None else pytest.approx(share, abs=1e-3))


def _record(acc_by_eval: list[list[float]], logp_by_eval: list[list[float]]) -> dict:
    return {
        "description": "made up",
        "names": ["frequent", "rare", "tiny"],
        "frequency": [0.5, 0.1, 0.01],
        "questions": [40, 25, 50],
        "items": [12, 8, 2],
        "evals": [
            {"step": i + 1, "flops": 1e9 * (i + 1), "acc": a, "logp": lp}
            for i, (a, lp) in enumerate(zip(acc_by_eval, logp_by_eval, strict=True))
        ],
    }


def test_analyse_abilities_lists_jumps_by_frequency_and_learned_vs_compute() -> None:
    # three sizes at one budget; final evals: 'frequent' jumps between sizes 1 and 2 with an even
    # log-prob rise, 'rare' jumps between sizes 0 and 1 with a log-prob that jumps too, 'tiny' asks
    # about too few distinct items to count
    finals = {
        "s0": ([0.05, 0.1, 0.0], [-2.0, -2.0, -3.0]),
        "s1": ([0.1, 0.9, 1.0], [-1.5, -0.5, -3.0]),
        "s2": ([0.9, 0.95, 1.0], [-1.0, -0.45, -3.0]),
    }
    rows = [
        {"run_id": rid, "status": "done", "params_total": str(n), "tokens": "1000", "budget": "1000"}
        for rid, n in (("s0", 100), ("s1", 1000), ("s2", 10000))
    ]
    rows.append({"run_id": "gone", "status": "diverged", "params_total": "5", "tokens": "1000"})
    scores = {rid: _record([[0.0, 0.0, 0.0], acc], [[-3.0] * 3, lp]) for rid, (acc, lp) in finals.items()}
    rep = ab.analyse_abilities(rows, scores, n_col="params_total", c_col="flops")
    assert rep is not None and rep.scorable == 2 and rep.questions == 115
    assert [(s.name, s.at, s.smooth) for s in rep.jumps] == [("frequent", 1, True), ("rare", 0, False)]
    frequent = rep.jumps[0]
    assert frequent.sizes == (100.0, 1000.0, 10000.0) and frequent.logp_share == pytest.approx(0.5)
    assert rep.jumps[1].logp_share == pytest.approx(1.5 / 1.55)
    # learned (accuracy >= 0.8) among the 2 scorable abilities, at each eval, in order of compute
    assert [r.run_id for r in rep.runs] == ["s0", "s1", "s2"]
    assert [r.learned.tolist() for r in rep.runs] == [[0.0, 0.0], [0.0, 0.5], [0.0, 1.0]]
    np.testing.assert_allclose(rep.runs[0].C, [1e9, 2e9])
    data = rep.to_dict()
    assert data["smooth_jumps"] == 1 and [j["name"] for j in data["jumps"]] == ["frequent", "rare"]
    md = ab.markdown(rep, ["abilities_jumps"])
    assert "**2 jumps (2 distinct abilities) between adjacent sizes; in 1 of them" in md
    assert "| frequent | 0.5 | 40 | 1e+03 | 100, 1e+03, 1e+04 | 0.05, 0.10, 0.90 |" in md
    assert ab.analyse_abilities(rows, {}, n_col="params_total", c_col="flops") is None


def test_text_training_logs_the_induction_probe(tmp_path: Path) -> None:
    text = tmp_path / "code.txt"
    line = "def add(a, b):\n    return a + b\n"
    text.write_text("\n\n".join(f"{line}# {i}\n{line}" for i in range(200)))
    cfg = compose_config(
        "sweep=smoke",
        "data=text",
        f"data.files=[{text}]",
        "data.tokenizer=bytes",
        "data.vocab_size=256",
        "data.val_fraction=0.2",
        "data.val_tokens=1024",
        f"data.cache_dir={tmp_path / 'cache'}",
        "sweep.widths=[16]",
        "sweep.tokens=[4096]",
        "train.evals=2",
    )
    source = make_source(cfg.data)
    (spec,) = plan_runs(
        cfg, vocab_size=source.vocab_size, data_fingerprint=source.fingerprint, precision="fp32"
    )
    train_run(spec, source, tmp_path / "run", NullLogger(), CPU)
    rows = [json.loads(r) for r in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(-math.log(256) * 2 < r["val/induction_logp"] < 0 for r in rows)
    assert all(0 <= r["val/induction_acc"] <= 1 for r in rows)
    record = json.loads((tmp_path / "run" / ab.FILE).read_text())
    assert record["names"] == ["induction"] and record["questions"][0] == len(source.val_questions.pos) > 50
    assert record["evals"][-1]["acc"] == [rows[-1]["val/induction_acc"]]


@pytest.mark.slow
def test_synthetic_sweep_writes_ability_scores_report_and_plots(tmp_path: Path) -> None:
    cfg = compose_config("sweep=smoke", "logger=off", f"sweep.dir={tmp_path}", "sweep.tokens=[16384,32768]")
    cfg.sweep.progress = False
    sweep_dir = run_sweep(cfg)
    runs = sorted((sweep_dir / "runs").iterdir())
    assert len(runs) == 6
    for run in runs:
        record = json.loads((run / ab.FILE).read_text())
        assert len(record["evals"]) == cfg.train.evals and record["description"].startswith("each skill")
        last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
        assert last["val/abilities_learned"] == ab.learned_fraction(
            np.array(record["evals"][-1]["acc"]), np.array(record["items"])
        )
    fit = json.loads((sweep_dir / "fit.json").read_text())
    assert len(fit["abilities"]["learned"]) == 6 and fit["abilities"]["scorable"] > 10
    md = (sweep_dir / "report.md").read_text()
    assert "## Abilities: smooth loss, abrupt skills" in md and "jumps (" in md
    for plot in ab.PLOTS:
        assert (sweep_dir / "plots" / f"{plot}.png").stat().st_size > 10_000
        assert f"(plots/{plot}.png)" in md

    # a refit of the sweep directory keeps the section
    out = str(tmp_path / "refit")
    refit = fit_cli.FitCLIConfig(input=str(sweep_dir), out=out, fit=FitConfig(bootstrap=20))
    assert fit_cli.run(refit) == 0
    assert (tmp_path / "refit" / "report.md").read_text().count("## Abilities") == 1
