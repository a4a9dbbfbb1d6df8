"""Abilities: exact-answer questions (synthetic skills, the copy skill, text induction) and multi-token
tasks, their evaluators' scores from known logits, the scores kept with the eval rows, the logistic
widths along the frontier and the pre-set rules on made-up runs, and the study of a real sweep."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from harness import evaluate, store
from harness.config import SyntheticConfig
from harness.data import Questions, make_source
from harness.data.source import pack_bits, unpack_bits
from harness.data.synthetic import TASK_SKILL_POSTERIOR, SkillMixture
from harness.data.text import induction_questions
from harness.device import Device
from harness.plan import plan_runs
from harness.studies.abilities import ABILITIES_JSON, ABILITIES_MD, study_abilities
from harness.studies.abilities import report as ab_report
from harness.studies.abilities import widths as ab
from harness.sweep import run_sweep
from harness.tracking.wandb_run import NullLogger
from harness.train import train_run
from tests.conftest import compose_config

CPU = Device("cpu", "fp32", False, None)


class _Bigram(torch.nn.Module):
    """A 'model' whose logits at each position are a fixed row of `table` chosen by the input token."""

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.table = table

    def forward(self, input_ids: torch.Tensor) -> SimpleNamespace:
        return SimpleNamespace(logits=self.table[input_ids])


NO_QUESTIONS = Questions(*(np.empty(0, dtype=np.int64),) * 4, names=(), description="none")


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
        ev = evaluate.answer(_Bigram(table), (x, y), CPU, q, chunk=chunk)
        np.testing.assert_allclose(ev.seq_loss, (-lp[x, y].mean(1)).numpy(), rtol=1e-6)
        expected_logp = [lp[0, 0], lp[1, 1], lp[1, 1], lp[1, 2]]
        np.testing.assert_allclose(ev.logp, [float(v) for v in expected_logp], rtol=1e-6)
        np.testing.assert_array_equal(ev.correct, [True, True, True, False])

    s = evaluate.group_scores(q, ev.logp, ev.correct)
    np.testing.assert_array_equal(s.n, [2, 2, 0])
    np.testing.assert_array_equal(s.items, [2, 1, 0])
    np.testing.assert_allclose(s.acc[:2], [1.0, 0.5])
    assert s.logp[0] == pytest.approx(float(lp[0, 0] + lp[1, 1]) / 2)
    assert math.isnan(s.acc[2])  # no questions: no score
    metrics = evaluate.ability_metrics(s, q.names)
    assert metrics["val/answer_acc"] == pytest.approx(0.75)
    assert metrics["val/a_acc"] == 1.0 and metrics["val/b_acc"] == 0.5 and "val/c_acc" not in metrics
    assert "val/abilities_learned" not in metrics  # no ability is asked about MIN_ITEMS items

    assert evaluate.answer(_Bigram(table), (x, y), CPU, NO_QUESTIONS).logp.size == 0  # loss only


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


def test_scores_kept_with_eval_rows_follow_the_one_resume_rule(tmp_path: Path) -> None:
    for step in (10, 20, 30):
        scores = {"tasks": {"correct": [step], "logp": [[-1.0]]}}
        store.append_metrics(tmp_path, {"step": step, "val/loss": 1.0 / step, "scores": scores})
    store.truncate_metrics(tmp_path, 20)  # a resume from the checkpoint after step 20
    rows = store.read_metrics(tmp_path)
    assert [r["step"] for r in rows] == [10, 20] and rows[-1]["scores"]["tasks"]["correct"] == [20]
    assert store.scalars(rows[-1]) == {"step": 20, "val/loss": 0.05}  # what a tracker logs


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


def test_task_scoring_keeps_each_prompts_answers(tmp_path: Path) -> None:
    mixture = SkillMixture.create(SyntheticConfig(n_skills=8), vocab_size=8, seed=0)
    tasks = mixture.tasks((0, 1), prompts=3, prompt_len=10, answer_len=4, rng=np.random.default_rng(0))
    table = torch.randn(8, 8, generator=torch.Generator().manual_seed(0))
    measured = evaluate.TaskScoring(tasks, CPU)(_Bigram(table))
    lp = table.log_softmax(-1).numpy()
    x, y = tasks.x[:, -4:], tasks.y[:, -4:]  # the answer tokens and what precedes each
    saved = measured.scores["tasks"]
    np.testing.assert_array_equal(unpack_bits(saved["correct"], 4), lp[x].argmax(-1) == y)
    np.testing.assert_allclose(saved["logp"], np.take_along_axis(lp[x], y[..., None], -1)[..., 0], atol=1e-4)
    exact = (lp[x].argmax(-1) == y).all(axis=1).mean()
    assert measured.metrics["val/task_exact4"] == pytest.approx(exact)
    assert unpack_bits(pack_bits(np.eye(4, dtype=bool)), 4).tolist() == np.eye(4, dtype=bool).tolist()
    meta = evaluate.describe(SimpleNamespace(val_tasks=tasks))["tasks"]
    assert meta["names"] == ["skill 0", "skill 1"] and meta["vocab_size"] == 8 and meta["answer_len"] == 4


def test_fit_logistic_recovers_midpoint_and_width() -> None:
    x = np.linspace(9, 12, 13)
    y = 1 / (1 + np.exp(-(x - 10.5) / 0.2))
    x0, s = ab.fit_logistic(x, y[None, :])
    assert x0[0] == pytest.approx(10.5, abs=0.02) and s[0] == pytest.approx(0.2, rel=0.1)
    width = ab.WIDTH_PER_S * 0.2  # 10-90%: 2 ln 9 s
    assert width == pytest.approx(0.879, abs=1e-3)


def _task_scores(C: np.ndarray, seeds: int, rng: np.random.Generator) -> tuple[list[dict], dict, dict]:
    """Made-up runs along a frontier with three 8-token task abilities of 32 prompts each:
    'snap' (its log-prob and exact match jump together at 1e10), 'step' (its exact match jumps at 1e10,
    its log-prob rises over two decades), 'smooth' (both rise over two decades, right where likely).
    Returns the rows, the tasks' description and each run's last task scores."""
    P, M = 32, 8
    group = np.repeat([0, 1, 2], P)
    bayes = np.full((3 * P, M), math.log(0.9))
    meta = {"names": ["snap", "step", "smooth"], "frequency": [0.5, 0.3, 0.2], "group": group.tolist()}
    meta.update(answer_len=M, vocab_size=32, bayes_logp=bayes.tolist(), description="made up")
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
            scores[rid] = {"correct": pack_bits(correct), "logp": np.log(p).tolist()}
    return rows, meta, scores


def test_abilities_along_the_frontier_by_the_preset_rules() -> None:
    C = np.geomspace(1e9, 1e11, 9)
    rows, meta, scores = _task_scores(C, 2, np.random.default_rng(0))
    rows.append(
        {**rows[0], "run_id": "worse", "val_loss": "2.0"}
    )  # not on the frontier: its budget has a better run
    rules = ab.Rules(bootstrap=100)
    rep = ab.analyse_abilities(rows, meta, scores, c_col="flops", rules=rules)
    assert rep.runs == 18 and rep.seeds == 2 and rep.prompts == 32 and rep.tests == 12
    by = {(r.name, r.m): r for r in rep.rows}
    assert {m for _, m in by} == {1, 2, 4, 8}
    snap, step, smooth = by["snap", 8], by["step", 1], by["smooth", 8]
    assert snap.snaps and snap.widths["exact"].width_ci[1] < 0.5  # its log-prob itself snaps
    assert step.abrupt and not step.snaps  # exact match far sharper than its smooth log-prob predicts
    assert not smooth.abrupt and not smooth.snaps and smooth.widths["logp"].width > 1
    assert smooth.widths["predicted"].width < by["smooth", 1].widths["predicted"].width  # p^m sharpens with m
    assert all(w.width_ci[0] <= w.width_ci[1] for a in rep.rows for w in a.widths.values())
    md = ab_report.markdown(rep, ["abilities_tasks"])
    assert "| step | 0.3 | 1 |" in md and "Bonferroni over 12 tests" in md
    data = rep.to_dict()
    assert len(data["widths"]) == 12 and data["rules"]["max_width"] == 0.5
    assert ab.analyse_abilities(rows[:2], meta, scores, c_col="flops", rules=rules) is None  # < 3 runs
    freq = {a.name: a.frequency for a in rep.rows}
    titles = ab_report.panel_titles(rep)  # the figure names each skill with its frequency and its rank
    top = max(freq, key=freq.get)
    assert titles[top] == f"{top}: frequency {freq[top]:.2g}, rank 1 of {len(freq)}"


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
    assert len(source.val_questions.pos) > 50 and "scores" not in rows[-1]  # text poses no tasks


@pytest.mark.slow
def test_the_abilities_study_reads_a_finished_sweep(tmp_path: Path) -> None:
    cfg = compose_config(
        "sweep=smoke", "logger=off", f"sweep.dir={tmp_path}", "data.synthetic.copy_frac=0.05",
        "sweep.seeds=[1]", "sweep.replicate=all",
    )  # fmt: skip
    cfg.sweep.progress = False
    sweep_dir = run_sweep(cfg)
    tasks = json.loads((sweep_dir / "sweep.json").read_text())["evaluators"]["tasks"]
    assert tasks["names"][-1] == "copy" and tasks["answer_len"] == 8
    runs = sorted((sweep_dir / "runs").iterdir())
    assert len(runs) == 18
    for run in runs:
        evals = [json.loads(r) for r in (run / "metrics.jsonl").read_text().splitlines()]
        assert len(evals) == cfg.train.evals and all("tasks" in e["scores"] for e in evals)
        bits = evals[-1]["scores"]["tasks"]["correct"]
        assert evals[-1]["val/task_exact8"] == pytest.approx(np.mean(unpack_bits(bits, 8).all(axis=1)))
    assert "abilities" not in json.loads((sweep_dir / "fit.json").read_text())  # the core fit knows none
    rep = study_abilities(sweep_dir, ab.Rules(bootstrap=50))
    data = json.loads((sweep_dir / ABILITIES_JSON).read_text())
    assert rep.runs == data["runs"] == 6 and len(data["widths"]) == 9 * 4 and data["rules"]["bootstrap"] == 50
    md = (sweep_dir / ABILITIES_MD).read_text()
    assert "## Abilities: smooth loss, abrupt skills?" in md and "| copy | 0.05 | 8 |" in md
    assert (sweep_dir / "plots" / "abilities_tasks.png").stat().st_size > 10_000
    assert "(plots/abilities_tasks.png)" in md
