"""Abilities: exact-answer questions (synthetic skills, the copy skill, text induction) and multi-token
tasks, their scores from known logits, the per-run score file, the logistic widths along the frontier
and the pre-set rules on made-up runs, and the report section of a real sweep."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import harness.refit as fit_cli
from harness import scoring
from harness.config import AbilitiesConfig, FitConfig, SyntheticConfig
from harness.data import Questions, make_source
from harness.data.synthetic import TASK_SKILL_POSTERIOR, SkillMixture
from harness.data.text import induction_questions
from harness.device import Device
from harness.plan import plan_runs
from harness.report import abilities as ab
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

    s = scoring.group_scores(q, ev.answer_logp, ev.answer_correct)
    np.testing.assert_array_equal(s.n, [2, 2, 0])
    np.testing.assert_array_equal(s.items, [2, 1, 0])
    np.testing.assert_allclose(s.acc[:2], [1.0, 0.5])
    assert s.logp[0] == pytest.approx(float(lp[0, 0] + lp[1, 1]) / 2)
    assert math.isnan(s.acc[2])  # no questions: no score
    metrics = scoring.eval_metrics(s, q.names)
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
    scores = scoring.Scores(
        acc=np.array([nan, 0.5]), logp=np.array([nan, -1.0]), n=np.array([0, 30]), items=np.array([0, 9])
    )
    log = scoring.ScoreLog(tmp_path / scoring.FILE, q, keep_until=0)
    for step in (10, 20, 30):
        log.add({"step": step, "flops": step * 1e6}, scores)
    record = json.loads((tmp_path / scoring.FILE).read_text())
    assert record["names"] == ["b"] and record["frequency"] == [0.1] and record["questions"] == [30]
    assert record["items"] == [9]
    assert [e["step"] for e in record["evals"]] == [10, 20, 30] and record["evals"][0]["acc"] == [0.5]
    resumed = scoring.ScoreLog(tmp_path / scoring.FILE, q, keep_until=20)
    resumed.add({"step": 30, "flops": 3e7}, scores)
    assert [e["step"] for e in json.loads((tmp_path / scoring.FILE).read_text())["evals"]] == [10, 20, 30]
    assert scoring.ScoreLog(tmp_path / scoring.FILE, q, keep_until=0).evals == []  # a fresh start drops them


def test_copy_skill_repeats_its_block_and_keeps_the_bayes_loss_exact() -> None:
    plain = SkillMixture.create(SyntheticConfig(n_skills=16), vocab_size=8, seed=3)
    mixture = SkillMixture.create(
        SyntheticConfig(n_skills=16, copy_frac=0.3, copy_period=4), vocab_size=8, seed=3
    )
    assert mixture.skill_p.sum() == pytest.approx(0.7)
    np.testing.assert_array_equal(mixture.succ, plain.succ)  # the chains are the mixture's without copying
    seq, skills = mixture.sample(400, 21, np.random.default_rng(0))
    copy = skills == 16
    assert 80 < copy.sum() < 160 and mixture.names[-1] == "copy"
    np.testing.assert_array_equal(seq[copy, 4:], seq[copy, :-4])  # a block of 4 tokens, repeated
    lp = mixture.token_logprobs(seq)
    assert (
        np.median(lp[copy, 10:]) > -1e-6 and lp[copy, 10:].mean() > -0.05
    )  # after two periods: all but certain
    # the predictive distribution sums to 1: the Bayes loss is a proper expectation over the mixture
    for t in (2, 6, 20):  # inside the first block, in the second, at the end
        probe = np.repeat(seq[copy][:1, : t + 1], 8, axis=0)
        probe[:, -1] = np.arange(8)
        np.testing.assert_allclose(np.exp(mixture.token_logprobs(probe)[:, -1]).sum(), 1.0, rtol=1e-9)
    q = mixture.questions(seq, skills)
    row, t = np.divmod(q.pos, 20)
    asked = q.group == 16
    assert asked.sum() > 100 and (t[asked] >= 3).all()  # x_4 is the first copied token
    np.testing.assert_array_equal(q.answer[asked], seq[row[asked], t[asked] + 1 - 4])  # one period back


def test_tasks_ask_each_skills_most_likely_path_after_a_prompt_that_identifies_it() -> None:
    mixture = SkillMixture.create(
        SyntheticConfig(n_skills=16, copy_frac=0.1, copy_period=4), vocab_size=8, seed=3
    )
    tasks = mixture.tasks((0, 3, 40), prompts=5, prompt_len=12, answer_len=4, rng=np.random.default_rng(1))
    assert tasks.names == ("skill 0", "skill 3", "copy") and tasks.x.shape == (15, 15)  # rank 40 > 16 skills
    np.testing.assert_array_equal(tasks.group, np.repeat([0, 1, 2], 5))
    full = np.concatenate([tasks.x, tasks.y[:, -1:]], axis=1)
    assert (
        mixture.posterior(full[:, :12])[np.arange(15), [0] * 5 + [3] * 5 + [16] * 5] >= TASK_SKILL_POSTERIOR
    ).all()
    for t in range(12, 16):  # the chain's top successor at every answer step; copying continues the block
        np.testing.assert_array_equal(full[:5, t], mixture.top[0, full[:5, t - 1]])
        np.testing.assert_array_equal(full[10:, t], full[10:, t - 4])
    assert tasks.bayes_logp.shape == (15, 4) and (tasks.bayes_logp <= 0).all()
    q = tasks.questions
    np.testing.assert_array_equal(q.answer, tasks.y[:, -4:].ravel())
    np.testing.assert_array_equal(tasks.y.ravel()[q.pos], q.answer)


def test_task_scores_round_trip_through_the_score_log(tmp_path: Path) -> None:
    mixture = SkillMixture.create(SyntheticConfig(n_skills=8), vocab_size=8, seed=0)
    tasks = mixture.tasks((0, 1), prompts=3, prompt_len=10, answer_len=4, rng=np.random.default_rng(0))
    correct = np.random.default_rng(0).random((6, 4)) < 0.5
    logp = -np.arange(24.0).reshape(6, 4) / 7
    ts = scoring.score_tasks(tasks, logp.ravel(), correct.ravel())
    q = Questions(np.array([0]), np.array([0]), np.array([0]), np.array([0]), ("a",), "t")
    nothing = scoring.Scores(np.array([1.0]), np.array([-1.0]), np.array([1]), np.array([1]))
    log = scoring.ScoreLog(tmp_path / scoring.FILE, q, keep_until=0, tasks=tasks)
    log.add({"step": 1, "flops": 1e6}, nothing, ts)
    record = json.loads((tmp_path / scoring.FILE).read_text())
    assert record["tasks"]["names"] == ["skill 0", "skill 1"] and record["tasks"]["vocab_size"] == 8
    saved = record["evals"][0]["tasks"]
    np.testing.assert_array_equal(scoring.unpack_bits(saved["correct"], 4), correct)
    np.testing.assert_allclose(saved["logp"], logp, atol=1e-4)
    assert scoring.task_metrics(tasks, ts)["val/task_exact4"] == pytest.approx(correct.all(axis=1).mean())


def test_fit_logistic_recovers_midpoint_and_width() -> None:
    x = np.linspace(9, 12, 13)
    y = 1 / (1 + np.exp(-(x - 10.5) / 0.2))
    x0, s = ab.fit_logistic(x, y[None, :])
    assert x0[0] == pytest.approx(10.5, abs=0.02) and s[0] == pytest.approx(0.2, rel=0.1)
    width = ab.WIDTH_PER_S * 0.2  # 10-90%: 2 ln 9 s
    assert width == pytest.approx(0.879, abs=1e-3)


def _task_scores(C: np.ndarray, seeds: int, rng: np.random.Generator) -> tuple[list[dict], dict]:
    """Made-up runs along a frontier with three 8-token task abilities of 32 prompts each:
    'snap' (its log-prob and exact match jump together at 1e10), 'step' (its exact match jumps at 1e10,
    its log-prob rises over two decades), 'smooth' (both rise over two decades, right where likely)."""
    P, M = 32, 8
    group = np.repeat([0, 1, 2], P)
    bayes = np.full((3 * P, M), math.log(0.9))
    rows, scores = [], {}
    for s in range(seeds):
        for i, c in enumerate(C):
            x = math.log10(c)
            ramp = np.clip((x - 9) / 2, 0, 1)  # 0 at 1e9, 1 at 1e11
            p = np.empty((3 * P, M))
            p[:P] = 0.9 if x > 10 else 0.03
            p[P:] = 0.03 + 0.87 * ramp
            p[2 * P :] = np.clip(0.03 + 0.87 * ramp + rng.normal(0, 0.15, (P, M)), 0.01, 0.99)
            correct = rng.random((3 * P, M)) < p
            correct[: 2 * P] = x > 10
            rid = f"r{s}-{i}"
            row = {"run_id": rid, "status": "done", "budget": str(c), "seed": str(s), "flops": str(c)}
            rows.append({**row, "val_loss": "1.0", "tokens": "1"})
            meta = {
                "names": ["snap", "step", "smooth"],
                "frequency": [0.5, 0.3, 0.2],
                "group": group.tolist(),
            }
            meta.update(answer_len=M, vocab_size=32, bayes_logp=bayes.tolist(), description="made up")
            tasks = {"correct": scoring.pack_bits(correct), "logp": np.log(p).tolist()}
            scores[rid] = {"tasks": meta, "evals": [{"step": 1, "flops": c, "tasks": tasks}]}
    return rows, scores


def test_abilities_along_the_frontier_by_the_preset_rules() -> None:
    C = np.geomspace(1e9, 1e11, 9)
    rows, scores = _task_scores(C, 2, np.random.default_rng(0))
    rows.append(
        {**rows[0], "run_id": "worse", "val_loss": "2.0"}
    )  # not on the frontier: its budget has a better run
    rules = AbilitiesConfig(bootstrap=100)
    rep = ab.analyse_abilities(rows, scores, c_col="flops", rules=rules)
    assert rep.runs == 18 and rep.seeds == 2 and rep.prompts == 32 and rep.tests == 12
    by = {(r.name, r.m): r for r in rep.rows}
    assert {m for _, m in by} == {1, 2, 4, 8}
    snap, step, smooth = by["snap", 8], by["step", 1], by["smooth", 8]
    assert snap.snaps and snap.widths["exact"].width_ci[1] < 0.5  # its log-prob itself snaps
    assert step.abrupt and not step.snaps  # exact match far sharper than its smooth log-prob predicts
    assert not smooth.abrupt and not smooth.snaps and smooth.widths["logp"].width > 1
    assert smooth.widths["predicted"].width < by["smooth", 1].widths["predicted"].width  # p^m sharpens with m
    assert all(w.width_ci[0] <= w.width_ci[1] for a in rep.rows for w in a.widths.values())
    md = ab.markdown(rep, ["abilities_tasks"])
    assert "| step | 0.3 | 1 |" in md and "Bonferroni over 12 tests" in md
    data = rep.to_dict()
    assert len(data["widths"]) == 12 and data["rules"]["max_width"] == 0.5
    assert ab.analyse_abilities(rows[:2], scores, c_col="flops", rules=rules) is None  # < 3 frontier runs


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
    record = json.loads((tmp_path / "run" / scoring.FILE).read_text())
    assert record["names"] == ["induction"] and record["questions"][0] == len(source.val_questions.pos) > 50
    assert record["evals"][-1]["acc"] == [rows[-1]["val/induction_acc"]]


@pytest.mark.slow
def test_synthetic_sweep_writes_ability_scores_report_and_plot(tmp_path: Path) -> None:
    cfg = compose_config(
        "sweep=smoke", "logger=off", f"sweep.dir={tmp_path}", "data.synthetic.copy_frac=0.05",
        "sweep.seeds=[1]", "sweep.replicate=all", "abilities.bootstrap=50",
    )  # fmt: skip
    cfg.sweep.progress = False
    sweep_dir = run_sweep(cfg)
    runs = sorted((sweep_dir / "runs").iterdir())
    assert len(runs) == 18
    for run in runs:
        record = json.loads((run / scoring.FILE).read_text())
        assert len(record["evals"]) == cfg.train.evals and record["tasks"]["names"][-1] == "copy"
        last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
        assert last["val/abilities_learned"] == scoring.learned_fraction(
            np.array(record["evals"][-1]["acc"]), np.array(record["items"])
        )
        bits = record["evals"][-1]["tasks"]["correct"]
        assert last["val/task_exact8"] == pytest.approx(np.mean(scoring.unpack_bits(bits, 8).all(axis=1)))
    fit = json.loads((sweep_dir / "fit.json").read_text())
    assert fit["abilities"]["runs"] == 6 and len(fit["abilities"]["widths"]) == 9 * 4
    md = (sweep_dir / "report.md").read_text()
    assert "## Abilities: smooth loss, abrupt skills?" in md and "| copy | 0.05 | 8 |" in md
    for plot in ab.PLOTS:
        assert (sweep_dir / "plots" / f"{plot}.png").stat().st_size > 10_000
        assert f"(plots/{plot}.png)" in md

    # a refit of the sweep directory keeps the section
    out = str(tmp_path / "refit")
    refit = fit_cli.FitCLIConfig(input=str(sweep_dir), out=out, fit=FitConfig(bootstrap=20))
    assert fit_cli.run(refit) == 0
    assert (tmp_path / "refit" / "report.md").read_text().count("## Abilities") == 1
