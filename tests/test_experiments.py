"""Ingredient experiments: their configs and plans, the paired design, the comparison and its verdicts
(on result tables drawn from known laws, no training), and one experiment end to end through a multirun."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from harness.compare import (
    NONE,
    OFFSET,
    SLOPE,
    Row,
    common_compute,
    compare_dir,
    ingredient_verdict,
    main,
    pair_verdict,
)
from harness.config import ConfigError, register_configs
from harness.fit import FitError
from harness.overrides import check_overrides
from harness.plan import check_config, plan_runs
from tests.conftest import CONFIG_DIR, compose_config, run_module

EXPERIMENTS = ("architecture", "conditioning", "data_quality", "data_quantity", "proportion")


def sweeper_params(experiment: str) -> dict[str, str]:
    register_configs()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"experiment={experiment}"], return_hydra_config=True)
    return dict(cfg.hydra.sweeper.params)


def variant_plans(experiment: str) -> dict[str, tuple]:
    """Each variant's validated config and planned runs, as its multirun job would see them."""
    variants = sweeper_params(experiment)[f"experiment/{experiment}"].split(",")
    out = {}
    for v in variants:
        cfg = compose_config(f"experiment={experiment}", f"experiment/{experiment}={v}")
        check_config(cfg)
        out[v] = (cfg, plan_runs(cfg, vocab_size=cfg.data.vocab_size, data_fingerprint="x", precision="fp32"))
    return out


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_variants_are_sweeps_of_their_own_over_one_compute_range(experiment: str) -> None:
    plans = variant_plans(experiment)
    assert len(plans) >= 2
    files = {p.stem for p in (CONFIG_DIR / "experiment" / experiment).glob("*.yaml")}
    assert set(plans) == files  # the multirun sweeps every variant file
    ranges = []
    for v, (cfg, specs) in plans.items():
        assert cfg.sweep.dir == f"runs/exp-{experiment}/{v}" and cfg.sweep.name == f"{experiment}-{v}"
        assert len(specs) >= 7  # enough frontier points for a 3-parameter fit with intervals
        flops = [s.flops for s in specs]
        ranges.append((min(flops), max(flops)))
    lo, hi = max(r[0] for r in ranges), min(r[1] for r in ranges)
    assert hi / lo > 20  # every variant covers a shared compute range of more than 20x
    for r in ranges:  # ... and none reaches far beyond it
        assert lo / r[0] < 1.6 and r[1] / hi < 1.6


def test_unknown_experiment_or_variant_fails_in_one_line() -> None:
    with pytest.raises(ConfigError, match="^experiment: unknown option 'archi'; allowed: architecture, cond"):
        check_overrides(["experiment=archi"], CONFIG_DIR)
    with pytest.raises(
        ConfigError, match="^experiment/architecture: unknown option 'gru'; allowed: llama, lstm"
    ):
        check_overrides(["experiment=architecture", "experiment/architecture=gru"], CONFIG_DIR)


def test_variants_change_only_their_ingredient() -> None:
    arch = variant_plans("architecture")
    llama, lstm = arch["llama"][1], arch["lstm"][1]
    assert [s.shape.family for s in lstm] == ["lstm"] * len(lstm)
    for a, b in zip(llama, lstm, strict=True):
        assert a.tokens == b.tokens and b.params.total == pytest.approx(a.params.total, rel=0.015)
    sgd = variant_plans("conditioning")["sgd"][1]
    assert sgd[0].train.optimizer == "sgd" and max(s.peak_lr for s in sgd) == 0.3
    quality = variant_plans("data_quality")
    assert quality["noisy"][0].data.noise_fraction == 0.25 and quality["clean"][0].data.noise_fraction == 0
    cfg, specs = variant_plans("data_quantity")["repeated"]
    epochs = sorted(s.tokens / cfg.data.max_unique_tokens for s in specs)
    assert {1.0, 4.0, 16.0} <= set(epochs)


def test_proportion_variants_grow_model_data_or_both() -> None:
    plans = {v: specs for v, (_, specs) in variant_plans("proportion").items()}
    sizes = {v: ({s.shape.width for s in specs}, {s.tokens for s in specs}) for v, specs in plans.items()}
    assert len(sizes["model_only"][0]) > 1 and len(sizes["model_only"][1]) == 1
    assert len(sizes["data_only"][0]) == 1 and len(sizes["data_only"][1]) > 1
    ratio = [s.tokens / s.params.total for s in plans["balanced"]]
    assert max(ratio) / min(ratio) < 1.05  # a fixed tokens-per-parameter ratio: N and D grow together


def test_paired_design_trains_each_width_on_its_own_budget() -> None:
    cfg = compose_config(
        "sweep=smoke", "sweep.design=paired", "sweep.widths=[48,16]", "sweep.tokens=[4096,65536]"
    )
    check_config(cfg)
    specs = plan_runs(cfg, vocab_size=32, data_fingerprint="x", precision="fp32")
    assert [(s.shape.width, s.tokens, s.budget) for s in specs] == [(16, 65536, 65536.0), (48, 4096, 4096.0)]


# --------------------------------------------------------------------------------------------------
# verdicts on intervals


def row(alpha_ci, loss_ci, name="v") -> Row:
    return Row(name, sum(alpha_ci) / 2, alpha_ci, 1.0, (0.9, 1.1), sum(loss_ci) / 2, loss_ci, 0.99, 9)


@pytest.mark.parametrize(
    ("other", "expected"),
    [
        (row((0.31, 0.40), (2.0, 2.1)), SLOPE),  # slopes apart, losses overlap: still the slope
        (row((0.31, 0.40), (2.5, 2.6)), SLOPE),
        (row((0.25, 0.35), (2.3, 2.4)), OFFSET),  # slopes overlap, losses apart
        (row((0.25, 0.35), (2.05, 2.3)), NONE),
        (row((float("nan"),) * 2, (float("nan"),) * 2), NONE),  # no intervals: nothing to claim
    ],
)
def test_pair_verdict(other: Row, expected: str) -> None:
    assert pair_verdict(row((0.2, 0.3), (2.0, 2.1)), other) == expected


def test_ingredient_verdict_is_the_strongest_effect() -> None:
    assert ingredient_verdict([NONE, OFFSET]) == OFFSET
    assert ingredient_verdict([OFFSET, SLOPE, NONE]) == SLOPE
    assert ingredient_verdict([NONE, NONE]) == NONE


def test_common_compute_is_the_middle_of_the_shared_range() -> None:
    assert common_compute([(1e9, 1e12), (1e10, 1e13)]) == pytest.approx(1e11)
    assert common_compute([(1e9, 1e10), (1e11, 1e12)]) == pytest.approx(math.sqrt(1e9 * 1e12))  # none shared


# --------------------------------------------------------------------------------------------------
# compare_dir on result tables drawn from known frontiers


def write_variant(exp_dir: Path, name: str, E: float, alpha: float, *, seed: int, n: int = 9) -> None:
    """results.csv of runs on L = E + (1e8 / C)^alpha, with 0.3% multiplicative noise."""
    rng = np.random.default_rng(seed)
    C = np.geomspace(1e9, 5e11, n)
    L = (E + (1e8 / C) ** alpha) * np.exp(rng.normal(0, 0.003, n))
    path = exp_dir / name / "results.csv"
    path.parent.mkdir(parents=True)
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, ["run_id", "status", "params_total", "tokens", "budget", "flops", "val_loss"])
        w.writeheader()
        for i, (c, loss) in enumerate(zip(C, L, strict=True)):
            w.writerow(dict(run_id=f"{name}{i}", status="done", params_total=c / 6e5, tokens=1e5, budget=c,
                            flops=c, val_loss=loss))  # fmt: skip


def test_compare_dir_finds_slope_offset_and_no_effect(tmp_path: Path) -> None:
    write_variant(tmp_path, "base", 1.5, 0.3, seed=0)
    write_variant(tmp_path, "steeper", 1.5, 0.45, seed=1)
    write_variant(tmp_path, "shifted", 1.8, 0.3, seed=2)
    write_variant(tmp_path, "same", 1.5, 0.3, seed=3)
    c = compare_dir(tmp_path, reference="base")
    by = {r.variant: r for r in c.rows}
    assert [r.variant for r in c.rows] == ["base", "same", "shifted", "steeper"]  # reference first
    assert (by["steeper"].verdict, by["shifted"].verdict, by["same"].verdict) == (SLOPE, OFFSET, NONE)
    assert c.verdict == SLOPE
    assert by["base"].alpha_ci[0] < 0.3 < by["base"].alpha_ci[1]  # the interval holds the true exponent
    assert by["shifted"].loss - by["base"].loss == pytest.approx(0.3, abs=0.02)
    assert c.C_common == pytest.approx(math.sqrt(1e9 * 5e11))
    md = (tmp_path / "comparison.md").read_text()
    assert md.startswith(f"# Experiment {tmp_path.name}: changes the slope")
    assert "| shifted | 0.3" in md and "| changes the offset |" in md
    assert (tmp_path / "frontiers.png").stat().st_size > 0 and (tmp_path / "comparison.json").exists()


def test_compare_lists_unfittable_variants_and_needs_its_reference(tmp_path: Path) -> None:
    write_variant(tmp_path, "a", 1.5, 0.3, seed=0)
    write_variant(tmp_path, "b", 1.5, 0.3, seed=1)
    write_variant(tmp_path, "tiny", 1.5, 0.3, seed=2, n=3)
    c = compare_dir(tmp_path)  # reference: the first by name
    assert c.reference == "a" and [r.variant for r in c.rows] == ["a", "b"]
    assert "needs at least 4" in c.failed["tiny"]
    assert "| tiny | fit failed:" in (tmp_path / "comparison.md").read_text()
    with pytest.raises(FitError, match="reference variant 'tiny' has no frontier fit"):
        compare_dir(tmp_path, reference="tiny")


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    write_variant(tmp_path, "a", 1.5, 0.3, seed=0)
    write_variant(tmp_path, "b", 1.8, 0.3, seed=1)
    assert main([str(tmp_path)]) == 0
    assert "| b | " in capsys.readouterr().out
    assert main([str(tmp_path / "nothing")]) == 1
    assert "no variant directories" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------
# end to end


@pytest.mark.slow
def test_experiment_multirun_trains_every_variant_then_compares(tmp_path: Path) -> None:
    tiny = ["sweep.widths=[8,16,24,32,40]", "sweep.tokens=[2048,4096,8192,16384,32768]",
            "data.val_tokens=2048", "train.evals=2", "fit.bootstrap=100", "logger=off"]  # fmt: skip
    proc = run_module("harness.sweep", "-m", "experiment=data_quality", *tiny, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    exp = tmp_path / "runs" / "exp-data_quality"
    for variant in ("clean", "noisy"):
        with (exp / variant / "results.csv").open() as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == 5 and {r["status"] for r in rows} == {"done"}
    md = (exp / "comparison.md").read_text()
    assert md in proc.stdout  # printed once the variants are done
    assert any(md.startswith(f"# Experiment exp-data_quality: {v}") for v in (SLOPE, OFFSET, NONE))
    assert "| clean |" in md and "| noisy |" in md and (exp / "frontiers.png").exists()
