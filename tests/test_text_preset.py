"""The text preset (configs/sweep/cpu_text.yaml, docs/text_sweep.md): its design rules on the plan, any
text through it, and the one-line refusal of a corpus too small for its top budgets."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from harness.config import ConfigError
from harness.console import passes
from harness.flops import flops_per_token
from harness.plan import check_config, plan_runs
from harness.sweep import run_sweep
from tests.conftest import compose_config, load_script, run_module

WORDS = ("def", "return", "self", "value", "import", "class", "for", "in", "if", "else", "None", "x", "=")


def _plan(*overrides: str, preset: str = "cpu_text"):
    cfg = compose_config(f"sweep={preset}", *overrides)
    check_config(cfg)
    return cfg, plan_runs(cfg, vocab_size=cfg.data.vocab_size, data_fingerprint="x", precision="fp32")


def _corpus(tmp_path: Path, chars: int) -> Path:
    """A .txt file of about `chars` characters: paragraphs of random 'code' words."""
    rng = np.random.default_rng(0)
    paragraphs, total = [], 0
    while total < chars:
        text = " ".join(rng.choice(WORDS, size=int(rng.integers(30, 90))))
        paragraphs.append(text)
        total += len(text) + 2
    path = tmp_path / "corpus.txt"
    path.write_text("\n\n".join(paragraphs) + "\n")
    return path


def test_the_preset_is_real_text_through_bytes_with_a_tied_embedding() -> None:
    cfg, _ = _plan()
    assert (cfg.data.source, cfg.data.tokenizer, cfg.data.vocab_size) == ("stdlib", "bytes", 256)
    assert cfg.model.tie_embeddings
    other, _ = _plan("data=text", "data.files=[README.md]")
    assert (other.data.source, other.data.tokenizer) == ("text", "bytes")  # the preset's tokenizer, any text


@pytest.mark.parametrize("preset", ["cpu_text", "gpu_text"])
def test_the_design_meets_its_rules(preset: str) -> None:
    """docs/text_sweep.md: >= 8 budgets over >= 2.5 decades, >= 5 sizes in the window at each, one shape
    rule, parameter steps <= 1.5x, the smallest size not mostly embedding or head, replicates below the
    hold-out, >= 200 steps per run, at most 4 passes over the data."""
    cfg, runs = _plan(preset=preset)
    budgets = sorted({r.budget for r in runs})
    assert len(budgets) >= 8 and math.log10(budgets[-1] / budgets[0]) >= 2.499  # 3.16e12 / 1e10
    for b in budgets:
        at = [r for r in runs if r.budget == b and r.train.seed == 0]
        assert len(at) >= 5
        assert all(5 <= r.tokens / r.params.total <= 500 for r in at)
    if preset == "cpu_text":
        assert {(r.shape.depth, r.shape.n_heads) for r in runs} == {(2, 1)}
    sizes = sorted({r.params.total for r in runs})
    assert max(b / a for a, b in zip(sizes, sizes[1:], strict=False)) <= 1.5
    small = min(runs, key=lambda r: r.params.total)
    assert small.params.embedding < small.params.total / 2
    assert 6 * small.shape.width * small.shape.vocab_size < flops_per_token(small.shape, "full") / 2
    replicated = {r.budget for r in runs if r.train.seed != 0}
    assert len(replicated) == 2 and max(replicated) < budgets[-2]
    assert min(r.steps for r in runs) >= 200 and cfg.sweep.max_epochs == 4


def test_passes_counts_the_longest_run_and_refuses_beyond_the_bound() -> None:
    _, runs = _plan()
    longest = max(r.tokens for r in runs)
    text, refusal = passes(runs, longest // 2, max_epochs=4)
    assert "the longest run" in text and "passes over them 2 times" in text and refusal == ""
    text, refusal = passes(runs, longest // 8, max_epochs=4)
    over = sum(r.tokens > 4 * (longest // 8) for r in runs)
    assert (
        refusal.startswith(f"sweep.max_epochs: {over} of {len(runs)} runs would pass") and "\n" not in refusal
    )
    assert passes(runs, None, max_epochs=4) == ("", "")  # synthetic data: no bound
    assert passes(runs, longest // 8, max_epochs=0)[1] == ""  # no bound asked for


def test_any_text_plans_the_same_design_and_says_how_often_it_repeats(tmp_path, capsys) -> None:
    """A corpus of ~4M characters through data=text: the stdlib plan's runs, sizes and batches, and the
    start screen's data line; nothing trained or written (a dry run)."""
    corpus = _corpus(tmp_path, 4_000_000)
    cfg = compose_config(
        "sweep=cpu_text", "data=text", f"data.files=[{corpus}]", "logger=off", "sweep.dry_run=true",
        f"sweep.dir={tmp_path / 'sweep'}",
    )  # fmt: skip
    run_sweep(cfg)
    out = capsys.readouterr().out
    _, stdlib_runs = _plan()
    _, text_runs = _plan("data=text", f"data.files=[{corpus}]")
    shape = [(r.shape, r.budget, r.batch_size, r.steps) for r in stdlib_runs]
    assert [(r.shape, r.budget, r.batch_size, r.steps) for r in text_runs] == shape
    assert f"runs       {len(text_runs)}:" in out and "on text data" in out
    assert "training tokens; the longest run" in out and "would be refused" not in out
    assert not (tmp_path / "sweep").exists()


def test_a_corpus_too_small_for_the_top_budgets_is_refused_before_training(tmp_path) -> None:
    corpus = _corpus(tmp_path, 300_000)
    args = ["sweep=cpu_text", "data=text", f"data.files=[{corpus}]", "logger=off", "sweep.dir=sweep"]
    dry = run_module("harness.sweep", *args, "sweep.dry_run=true", cwd=tmp_path / "dry")
    assert dry.returncode == 0 and "would be refused: sweep.max_epochs:" in dry.stdout
    done = run_module("harness.sweep", *args, cwd=tmp_path / "real")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("config error: sweep.max_epochs: ")
    assert "more than 4 times" in lines[0] and not (tmp_path / "real" / "sweep").exists()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        (["data=text", "data.files=[nope/*.txt]"], "data.files: 'nope/*.txt' matches no file"),
        (["sweep.max_epochs=-1"], "sweep.max_epochs: must be >= 0"),
    ],
)
def test_bad_text_settings_are_one_line_errors(tmp_path, overrides, field) -> None:
    cfg = compose_config("sweep=cpu_text", "logger=off", f"sweep.dir={tmp_path / 'sweep'}", *overrides)
    with pytest.raises(ConfigError) as err:
        run_sweep(cfg)
    assert str(err.value).startswith(field) and "\n" not in str(err.value)


def test_lr_table_reads_several_scans_and_pools_the_seed_noise(tmp_path) -> None:
    """scripts/lr_table.py over a directory of sweeps and a sweep's own directory (the batch scan with the
    LR scan, the noise sweep): every row read, and the seed noise pooled over the replicated configuration."""
    lr_table = load_script("lr_table")
    fields = ["width", "budget", "batch_size", "peak_lr", "seed", "status", "val_loss"]

    def write(path: Path, rows: list[tuple]) -> None:
        path.mkdir(parents=True)
        lines = [",".join(fields), *(",".join(map(str, r)) for r in rows)]
        (path / "results.csv").write_text("\n".join(lines) + "\n")

    write(tmp_path / "scan" / "lr0.01", [(10, 1e10, 3, 0.01, 0, "done", 2.4)])
    write(tmp_path / "scan" / "lr0.02", [(10, 1e10, 3, 0.02, 0, "done", 2.3)])
    write(tmp_path / "noise", [(20, 1e10, 3, 0.01, s, "done", v) for s, v in enumerate((2.5, 2.6, 2.55))])
    rows = lr_table.read_rows([tmp_path / "scan", tmp_path / "noise"])
    assert sorted(float(r["val_loss"]) for r in rows) == [2.3, 2.4, 2.5, 2.55, 2.6]
    expected = np.std(np.log([2.5, 2.6, 2.55]), ddof=1)
    assert lr_table.noise_line(rows) == f"noise: seed_noise={expected:.4%} configurations=1 dof=2"
