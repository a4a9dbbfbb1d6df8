"""Ingredient experiments: their configs and plans (the shared reference, seeds, the paired design,
allocations around the measured optimum), and every experiment end to end through its multirun with
tiny budgets (the comparison's own rules are tested in test_compare.py)."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from harness.compose import compose_raw
from harness.config import ConfigError
from harness.overrides import check_overrides
from harness.plan import check_config, plan_runs
from harness.studies.compare.judge import EFFECTS, INCONCLUSIVE, NONE
from tests.conftest import CONFIG_DIR, compose_config, run_module

EXPERIMENTS = ("architecture", "conditioning", "data_quality", "data_quantity", "proportion")
LADDER = ("architecture", "conditioning", "data_quality", "data_quantity")


def sweeper_params(experiment: str) -> dict:
    cfg = compose_raw(f"experiment={experiment}")
    return {**cfg.hydra.sweeper.params, "compare": cfg.hydra.callbacks.compare}


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
def test_variants_share_budgets_and_train_every_budget_with_4_seeds(experiment: str) -> None:
    plans = variant_plans(experiment)
    callback = sweeper_params(experiment)["compare"]
    assert len(plans) >= 2
    files = {p.stem for p in (CONFIG_DIR / "experiment" / experiment).glob("*.yaml")}
    assert set(plans) == files  # the multirun sweeps every variant file
    assert callback.dir == f"runs/exp-{experiment}" and callback.reference in plans
    budgets = {}
    for v, (cfg, specs) in plans.items():
        if experiment in LADDER and v == callback.reference:  # the shared reference, trained once
            assert cfg.sweep.dir == callback.reference_dir == "runs/exp-reference"
        else:
            assert cfg.sweep.dir == f"runs/exp-{experiment}/{v}" and cfg.sweep.name == f"{experiment}-{v}"
        seeds = {}
        for s in specs:
            seeds.setdefault((s.shape.width, s.tokens), set()).add(s.train.seed)
        assert all(x == {0, 1, 2, 3} for x in seeds.values())  # every run with 4 seeds
        budgets[v] = sorted({round(s.flops, -8) for s in specs})
        assert len(budgets[v]) >= 5  # enough budgets for a line and its lack of fit
    ref = budgets[callback.reference]
    assert ref[-1] / ref[0] > 20
    for b in budgets.values():  # every variant reaches all but at most one of the reference's budgets
        shared = [c for c in ref if b[0] / 1.1 <= c <= b[-1] * 1.1]  # (the comparison's reach)
        assert len(shared) >= len(ref) - 1 and len(shared) >= 5


def test_ladder_experiments_share_one_reference_run_for_run() -> None:
    ids = []
    for e in LADDER:
        ref = sweeper_params(e)["compare"].reference
        ids.append([s.run_id for s in variant_plans(e)[ref][1]])
    assert all(x == ids[0] for x in ids)


def test_unknown_experiment_or_variant_fails_in_one_line() -> None:
    allowed = "allowed: abilities, architecture, cond"
    with pytest.raises(ConfigError, match=f"^experiment: unknown option 'archi'; {allowed}"):
        check_overrides(["experiment=archi"], CONFIG_DIR)
    with pytest.raises(
        ConfigError, match="^experiment/architecture: unknown option 'gru'; allowed: llama, lstm"
    ):
        check_overrides(["experiment=architecture", "experiment/architecture=gru"], CONFIG_DIR)


def test_variants_change_only_their_ingredient() -> None:
    arch = variant_plans("architecture")
    llama, lstm = arch["llama"][1], arch["lstm"][1]
    assert [s.shape.family for s in lstm] == ["lstm"] * len(lstm)
    lrs = [s.peak_lr for s in lstm]  # its own rule: 0.1 at width 32, 1/width above
    assert max(lrs) == 0.1 and min(lrs) == pytest.approx(0.04)
    for a, b in zip(llama, lstm, strict=True):
        assert a.tokens == b.tokens and b.params.total == pytest.approx(a.params.total, rel=0.015)
    sgd = variant_plans("conditioning")["sgd"][1]
    assert sgd[0].train.optimizer == "sgd" and max(s.peak_lr for s in sgd) == 0.3
    quality = variant_plans("data_quality")
    assert quality["noisy"][0].data.noise_fraction == 0.25 and quality["clean"][0].data.noise_fraction == 0
    cfg, specs = variant_plans("data_quantity")["repeated"]
    epochs = sorted(s.tokens / cfg.data.max_unique_tokens for s in specs)
    assert {1.0, 4.0, 16.0} <= set(epochs)


def test_proportion_compares_allocations_around_the_measured_optimum() -> None:
    plans = {
        v: [s for s in specs if s.train.seed == 0] for v, (_, specs) in variant_plans("proportion").items()
    }
    sizes = {v: ({s.shape.width for s in specs}, {s.tokens for s in specs}) for v, specs in plans.items()}
    assert len(sizes["model_only"][0]) == 5 and len(sizes["model_only"][1]) == 1
    assert len(sizes["data_only"][0]) == 1 and len(sizes["data_only"][1]) == 5
    ratio = [s.tokens / s.params.total for s in plans["balanced"]]
    assert min(ratio) >= 20 and max(ratio) <= 80  # within 2x of the measured 44 tokens per parameter
    for v in ("model_only", "data_only"):  # both pass through the optimum at the middle budget ...
        r = sorted(s.tokens / s.params.total for s in plans[v])
        assert r[0] < 20 and 20 <= r[2] <= 80 and r[-1] > 80  # ... and leave it on either side


def test_abilities_experiment_has_two_layers_everywhere_a_copy_skill_and_two_seeds_per_budget() -> None:
    cfg = compose_config("experiment=abilities")
    check_config(cfg)
    specs = plan_runs(cfg, vocab_size=cfg.data.vocab_size, data_fingerprint="x", precision="fp32")
    assert {s.shape.depth for s in specs} == {2} and cfg.data.synthetic.copy_frac > 0
    seeds: dict[float, set[int]] = {}
    for s in specs:
        seeds.setdefault(s.budget, set()).add(s.train.seed)
    assert len(seeds) >= 5 and all(v == {0, 1} for v in seeds.values())


def test_paired_design_trains_each_width_on_its_own_budget() -> None:
    cfg = compose_config(
        "sweep=smoke", "sweep.design=paired", "sweep.widths=[48,16]", "sweep.tokens=[4096,65536]"
    )
    check_config(cfg)
    specs = plan_runs(cfg, vocab_size=32, data_fingerprint="x", precision="fp32")
    assert [(s.shape.width, s.tokens, s.budget) for s in specs] == [(16, 65536, 65536.0), (48, 4096, 4096.0)]


# --------------------------------------------------------------------------------------------------
# end to end


TINY = [
    "data.val_tokens=1024", "train.evals=1", "fit.bootstrap=50", "sweep.seeds=[1]",
    "logger=off",
]  # fmt: skip
TINY_LADDER = ["sweep.widths=[8,16,24,32,40]", "sweep.tokens=[2048,3072,4096,6144,8192]"]
TINY_PROPORTION = [
    "sweep.widths=[8,16]", "sweep.tokens=[2048,4096,8192]", "sweep.flops=[2.6e7,5.2e7,1.04e8,2.08e8]",
    "sweep.min_tokens_per_param=0", "sweep.max_tokens_per_param=0",
]  # fmt: skip


@pytest.mark.slow
def test_every_experiment_runs_end_to_end_and_compares(tmp_path: Path) -> None:
    """All five multiruns on tiny budgets in one directory: each trains its variants (the ladder's
    reference once), fits each variant (degenerate fits included) and prints its comparison."""
    exp_root = tmp_path / "runs"
    for e in EXPERIMENTS:
        tiny = TINY_PROPORTION if e == "proportion" else TINY_LADDER
        proc = run_module("harness.sweep", "-m", f"experiment={e}", *TINY, *tiny, cwd=tmp_path, timeout=900)
        assert proc.returncode == 0, f"{e}: {proc.stderr[-3000:]}"
        exp = exp_root / f"exp-{e}"
        md = (exp / "comparison.md").read_text()
        assert md in proc.stdout  # printed once the variants are done
        data = json.loads((exp / "comparison.json").read_text())
        assert data["verdict"] in (*EFFECTS, NONE, INCONCLUSIVE)
        assert json.loads((exp / "experiment.json").read_text())["rules"] == data["rules"]
        compared = {v["variant"] for v in data["variants"]} | set(data["failed"])
        assert compared | {data["reference"]} == set(sweeper_params(e)[f"experiment/{e}"].split(","))
        for v in data["variants"]:
            assert v["seeds"] == [0, 1] and len(v["budgets"]["C"]) >= 3
        assert (exp / "comparison.png").stat().st_size > 0
        if e in LADDER[1:]:  # the shared reference was trained by the first ladder experiment
            assert re.search(r"to train   nothing \((\d+) of \1 finished earlier\)", proc.stdout), proc.stdout
    with (exp_root / "exp-reference" / "results.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 10 and {r["status"] for r in rows} == {"done"}
