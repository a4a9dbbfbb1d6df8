"""Ingredient experiments: their configs and plans (the shared reference, seeds, the paired design,
allocations around the measured optimum, every arm tuned by one procedure), and every experiment end to
end through its multirun with tiny budgets (the comparison's own rules are tested in test_compare.py)."""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from harness.compose import compose_raw
from harness.config import ConfigError
from harness.overrides import check_overrides
from harness.plan import check_config, plan_runs
from harness.studies.compare.judge import EFFECTS, INCONCLUSIVE, NONE
from tests.conftest import CONFIG_DIR, compose_config, load_script, run_module

EXPERIMENTS = ("architecture", "conditioning", "data_quality", "data_quantity", "objective", "proportion")
LADDER = ("architecture", "conditioning", "data_quality", "data_quantity", "objective")
ARMS = ("reference", "lstm", "sgd", "last_token")  # configs/experiment/arm/: each tuned by the lr_scan


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
    for a, b in zip(llama, lstm, strict=True):
        assert a.tokens == b.tokens and b.params.total == pytest.approx(a.params.total, rel=0.015)
    sgd = variant_plans("conditioning")["sgd"][1]
    assert {(s.train.optimizer, s.train.weight_decay) for s in sgd} == {("sgd", 0.0)}
    objective = variant_plans("objective")
    assert {s.train.objective for s in objective["last_token"][1]} == {"last_token"}
    assert {s.train.objective for s in objective["next_token"][1]} == {"next_token"}
    quality = variant_plans("data_quality")
    assert quality["noisy"][0].data.noise_fraction == 0.25 and quality["clean"][0].data.noise_fraction == 0
    cfg, specs = variant_plans("data_quantity")["repeated"]
    epochs = sorted(s.tokens / cfg.data.max_unique_tokens for s in specs)
    assert {1.0, 4.0, 16.0} <= set(epochs)


def recipe(cfg) -> str:
    """An arm's training recipe as the LR scan names its directory: family-optimizer-objective."""
    return f"{cfg.model.family}-{cfg.train.optimizer}-{cfg.train.objective}"


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_comparisons_arms_record_the_same_tuning_procedure(experiment: str) -> None:
    """Each arm's tuning record (experiment.json's, from the callback) names one procedure for all arms;
    an arm with its own recipe was scanned on itself, an arm that changes only the data shares the
    reference's scan; and every arm trains with the LR rule its record states."""
    callback = sweeper_params(experiment)["compare"]
    tuning = OmegaConf.to_container(callback.tuning)
    plans = variant_plans(experiment)
    assert set(tuning) == set(plans)
    assert len({t["procedure"] for t in tuning.values()}) == 1
    for v, (cfg, specs) in plans.items():
        rule = tuning[v]["rule"]
        assert {k: getattr(cfg.train, k) for k in rule} == rule  # the rule the record states is the one used
        exponent = rule.get("lr_exponent", 1.0) if rule["lr_rule"] == "power" else 1.0
        for s in specs:
            expected = rule["lr"] * min(1, rule["lr_ref_width"] / s.shape.width) ** exponent
            assert s.peak_lr == pytest.approx(expected)
        if tuning[v]["procedure"] == "lr_scan":  # its own recipe scanned (a data-only arm's: the reference's)
            assert tuning[v]["scanned"] == recipe(cfg)
            optima = list(zip(tuning[v]["grid"]["widths"], tuning[v]["optimum"], strict=True))
            ref, lr, k = load_script("lr_table").fit_rule(optima)
            assert (ref, float(f"{lr:.3g}")) == (rule["lr_ref_width"], rule["lr"])
            # the optima are recorded to 3 significant digits (up to 0.5% each: 0.011 in the exponent over
            # 32 to 72), the exponent from the unrounded ones
            assert rule["lr_exponent"] == pytest.approx(max(k, 0.0), abs=0.011)


def test_the_tuning_records_state_the_scan_that_configs_experiment_lr_scan_runs() -> None:
    """The grid every record states is the one the scan config trains, for each arm; each arm's scan
    writes to its recipe's directory."""
    record = OmegaConf.load(CONFIG_DIR / "experiment" / "tuning" / "lr_scan.yaml")
    hydra_cfg = compose_raw("experiment=lr_scan")
    lrs = [float(x) for x in hydra_cfg.hydra.sweeper.params["train.lr"].split(",")]
    assert lrs == record.grid.lr and hydra_cfg.hydra.mode.name == "MULTIRUN"
    for arm in ARMS:
        cfg = compose_config("experiment=lr_scan", f"experiment/arm={arm}", "train.lr=0.01")
        check_config(cfg)
        specs = plan_runs(cfg, vocab_size=cfg.data.vocab_size, data_fingerprint="x", precision="fp32")
        assert [s.shape.width for s in specs] == record.grid.widths
        assert [s.tokens for s in specs] == record.grid.tokens
        assert {s.peak_lr for s in specs} == {0.01}
        assert {s.train.seed for s in specs} == set(record.grid.seeds)
        assert cfg.sweep.dir == f"runs/exp-lr_scan/{recipe(cfg)}/lr0.01"
        if arm != "reference":
            assert recipe(cfg) != recipe(compose_config("experiment=lr_scan"))


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
    """All six multiruns on tiny budgets in one directory: each trains its variants (the ladder's
    reference once), fits each variant (degenerate fits included) and prints its comparison."""
    exp_root = tmp_path / "runs"
    for e in EXPERIMENTS:
        tiny = TINY_PROPORTION if e == "proportion" else TINY_LADDER
        proc = run_module("harness.sweep", "-m", f"experiment={e}", *TINY, *tiny, cwd=tmp_path, timeout=900)
        assert proc.returncode == 0, f"{e}: {proc.stderr[-3000:]}"
        exp = exp_root / f"exp-{e}"
        data = json.loads((exp / "comparison.json").read_text())
        # the multirun's last words: the comparison's summary, after every variant's fit
        summary = proc.stdout[proc.stdout.rindex(f"comparison exp-{e}: ") :]
        assert summary.startswith(f"comparison exp-{e}: {data['verdict']} (reference {data['reference']}")
        assert f"runs/exp-{e}/comparison.md" in summary.splitlines()[-1] and "|" not in summary
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


@pytest.mark.slow
def test_the_objective_experiment_runs_end_to_end_with_each_arms_tuning(tmp_path: Path) -> None:
    """experiment=objective alone on tiny budgets: the dense reference and the last-token arm train with
    their own scanned LR rules, both are scored on next-token validation loss and paired, and the
    comparison records that both arms were tuned by the one procedure."""
    proc = run_module(
        "harness.sweep", "-m", "experiment=objective", *TINY, *TINY_LADDER, cwd=tmp_path, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    exp = tmp_path / "runs" / "exp-objective"
    data = json.loads((exp / "comparison.json").read_text())
    assert data["reference"] == "next_token" and [v["variant"] for v in data["variants"]] == ["last_token"]
    assert data["tuning_procedure"] == "lr_scan" and data["verdict"] in (*EFFECTS, NONE, INCONCLUSIVE)
    assert {k: t["scanned"] for k, t in data["tuning"].items()} == {
        "next_token": "llama-adamw-next_token", "last_token": "llama-adamw-last_token"
    }  # fmt: skip
    assert "Every arm was tuned by the same procedure: lr_scan." in (exp / "comparison.md").read_text()
    sweeps = {"next_token": tmp_path / "runs" / "exp-reference", "last_token": exp / "last_token"}
    for arm, sweep_dir in sweeps.items():
        rule = data["tuning"][arm]["rule"]
        with (sweep_dir / "results.csv").open() as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == 10 and {r["status"] for r in rows} == {"done"}
        for r in rows:  # each arm trained with the rule its tuning record states
            lr = rule["lr"] * min(1, rule["lr_ref_width"] / int(r["width"])) ** rule["lr_exponent"]
            assert float(r["peak_lr"]) == pytest.approx(lr) and math.isfinite(float(r["val_loss"]))
