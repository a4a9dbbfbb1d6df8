"""Planning: grid and IsoFLOP designs, stable run ids, budget errors."""

from __future__ import annotations

import math

import pytest

from harness.config import ConfigError
from harness.plan import check_config, plan_runs
from tests.conftest import compose_config

# the smoke grid turned IsoFLOP, with no tokens-per-parameter window (the default preset's is 5-500)
ISO = ("sweep.design=isoflop", "sweep.min_tokens_per_param=0", "sweep.max_tokens_per_param=0")


def _plan(*overrides: str, data_fingerprint: str = "abc"):
    cfg = compose_config("sweep=smoke", *overrides)
    return plan_runs(cfg, vocab_size=cfg.data.vocab_size, data_fingerprint=data_fingerprint, precision="fp32")


def test_grid_plans_every_width_and_budget_with_exact_tokens() -> None:
    runs = _plan()
    assert len(runs) == 9
    assert {r.shape.width for r in runs} == {16, 32, 48}
    for r in runs:
        assert r.tokens == r.steps * r.batch_size * r.shape.seq_len == r.budget
        assert r.flops == pytest.approx(r.flops_per_token * r.tokens)
    assert len({r.run_id for r in runs}) == 9


def test_run_ids_are_stable_and_change_with_numbers_only() -> None:
    base = {r.run_id for r in _plan()}
    assert base == {r.run_id for r in _plan()}
    assert base == {r.run_id for r in _plan("train.evals=7", "train.checkpoint_every=5")}
    assert base.isdisjoint({r.run_id for r in _plan("train.lr=1e-3")})
    assert base.isdisjoint({r.run_id for r in _plan(data_fingerprint="other-data")})


def test_isoflop_derives_tokens_from_compute() -> None:
    runs = _plan(*ISO, "sweep.flops=[1e10,4e10]")
    for r in runs:
        assert abs(r.flops - r.budget) <= r.flops_per_token * r.batch_size * r.shape.seq_len
    small = [r for r in runs if r.budget == 1e10]
    assert sorted(r.shape.width for r in small) == [16, 32, 48]
    assert small[0].tokens > small[-1].tokens  # larger models get fewer tokens at fixed compute


def test_isoflop_budget_too_small_for_smallest_model() -> None:
    with pytest.raises(ConfigError, match="too small for the smallest model"):
        _plan(*ISO, "sweep.flops=[1e3]")


def test_isoflop_leaves_out_sizes_that_cannot_spend_the_budget_in_whole_batches() -> None:
    runs = _plan(*ISO, "sweep.flops=[4e8,1e10]")
    for r in runs:
        assert abs(r.flops - r.budget) <= 0.1 * r.budget
    widths = {b: sorted(r.shape.width for r in runs if r.budget == b) for b in (4e8, 1e10)}
    assert widths[1e10] == [16, 32, 48]
    assert 16 in widths[4e8] and 48 not in widths[4e8]


def test_isoflop_window_keeps_only_sizes_near_the_budgets_optimum() -> None:
    everything = _plan(*ISO, "sweep.flops=[1e10,4e10]")
    ratios = sorted(r.tokens / r.params.total for r in everything)
    lo, hi = ratios[1], ratios[-2]  # a window that must cut the two extremes
    runs = _plan(
        *ISO,
        "sweep.flops=[1e10,4e10]",
        f"sweep.min_tokens_per_param={lo}",
        f"sweep.max_tokens_per_param={hi}",
    )
    assert len(runs) == len(everything) - 2
    assert all(lo <= r.tokens / r.params.total <= hi for r in runs)


def test_isoflop_window_bounds_are_checked() -> None:
    cfg = compose_config("sweep.min_tokens_per_param=2", "sweep.max_tokens_per_param=1")
    with pytest.raises(ConfigError, match=r"^sweep.max_tokens_per_param: 1.0 is below"):
        check_config(cfg)


def test_seeds_replicate_every_run_under_their_own_ids_and_names() -> None:
    base = _plan()
    runs = _plan("sweep.seeds=[1,2]", "sweep.replicate=all")
    assert runs[: len(base)] == base  # the default seed's runs keep their ids and names
    assert all(r.train.seed == 0 and "-s" not in r.name for r in base)
    for seed in (1, 2):
        copies = [r for r in runs if r.train.seed == seed]
        assert [(r.shape, r.steps, r.peak_lr, r.warmup_steps) for r in copies] == [
            (r.shape, r.steps, r.peak_lr, r.warmup_steps) for r in base
        ]
        assert all(r.name.endswith(f"-s{seed}") and r.planned_row()["seed"] == seed for r in copies)
    assert len({r.run_id for r in runs}) == len({r.name for r in runs}) == 27


def test_near_optimum_replicates_the_sizes_nearest_the_prior_ratio_at_the_chosen_budgets() -> None:
    overrides = (*ISO, "sweep.flops=[1e10,4e10]", "sweep.widths=[16,32,48,64]")
    base = _plan(*overrides)
    runs = _plan(
        *overrides, "sweep.seeds=[5]", "sweep.replicate_budgets=[4e10]", "sweep.replicate_tokens_per_param=20"
    )
    copies = runs[len(base) :]
    at = sorted(
        (r for r in base if r.budget == 4e10), key=lambda r: abs(math.log(r.tokens / r.params.total / 20))
    )
    assert len(at) >= 3
    assert {(r.shape.width, r.budget) for r in copies} == {(r.shape.width, 4e10) for r in at[:2]}
    assert all(r.train.seed == 5 for r in copies)
    one = _plan(*overrides, "sweep.seeds=[5]", "sweep.replicate_sizes=1")
    assert len(one) - len(base) == 2  # one size at each of the two budgets


def test_replicated_branches_fork_from_a_main_run_of_their_own_seed_with_the_same_warmup() -> None:
    overrides = (
        "sweep.branches=true",
        "train.schedule=wsd",
        "sweep.widths=[16]",
        "sweep.tokens=[16384,65536]",
    )
    base = _plan(*overrides)
    runs = _plan(
        *overrides, "sweep.seeds=[3]", "sweep.replicate_budgets=[65536]", "sweep.replicate_tokens_per_param=1"
    )
    (copy,) = runs[len(base) :]
    (original,) = [r for r in base if r.budget == 65536]
    assert copy.parent.train.seed == 3 and copy.parent.run_id != original.parent.run_id
    assert (copy.steps, copy.fork_step, copy.warmup_steps) == (
        original.steps,
        original.fork_step,
        original.warmup_steps,
    )
    assert copy.parent.forks == (copy.fork_step,)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["sweep.seeds=[1,1]"], r"^sweep.seeds: duplicate seeds"),
        (["sweep.seeds=[0,1]"], r"^sweep.seeds: \[0, 1\] repeats train.seed=0"),
        (["sweep.replicate=some"], r"^sweep.replicate: unknown value 'some'; allowed: all, near_optimum"),
        (["sweep.replicate_sizes=0"], r"^sweep.replicate_sizes: must be > 0"),
        (
            ["sweep.replicate_budgets=[12345]"],
            r"^sweep.replicate_budgets\[0\]: 12345 is not one of sweep.tokens",
        ),
    ],
)
def test_bad_seed_settings_are_one_line_errors(overrides: list[str], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        check_config(compose_config("sweep=smoke", *overrides))


def test_min_steps_gives_short_runs_the_largest_batch_that_keeps_them_long_enough() -> None:
    runs = _plan("train.batch_size=16", "train.min_steps=20", "sweep.tokens=[16384,32768,65536]")
    by_tokens = {r.budget: r for r in runs if r.shape.width == 16}
    # 16384 tokens: 16384 // (20 x 64) = 12 sequences, 21 steps; 32768 = 32 steps at 16 already
    assert [(by_tokens[b].batch_size, by_tokens[b].steps) for b in (16384, 32768, 65536)] == [
        (12, 21),
        (16, 32),
        (16, 64),
    ]
    assert all(r.steps >= 20 and r.tokens == r.steps * r.batch_size * 64 for r in runs)
    assert {r.batch_size for r in _plan("sweep.tokens=[16384]")} == {16}  # min_steps=0: no rule


def test_the_sizes_of_an_isoflop_budget_share_its_batch() -> None:
    runs = _plan(
        *ISO, "sweep.flops=[2e9,2e10]", "train.min_steps=50", "sweep.widths=[16,32,48]"
    )
    top = [r for r in runs if r.budget == 2e10]
    assert len(top) == 3 and {r.batch_size for r in top} == {15}  # width 48's 48000 tokens // (50 x 64)
    assert min(r.steps for r in top) == 50  # the budget's fewest-token run sets it
    assert {r.batch_size for r in runs if r.budget == 2e9} == {1}


def test_a_batch_exponent_makes_the_batch_a_power_of_the_budget_within_the_step_rule() -> None:
    flops = "sweep.flops=[1e9,4e9,1.6e10]"
    runs = _plan(*ISO, flops, "train.batch_size=16", "train.batch_exponent=0.5")
    assert {b: {r.batch_size for r in runs if r.budget == b} for b in (1e9, 4e9, 1.6e10)} == {
        1e9: {4},  # 16 x (1/16)^0.5
        4e9: {8},
        1.6e10: {16},
    }
    steps_rule = _plan(*ISO, flops, "train.batch_size=16", "train.min_steps=50")
    both = _plan(*ISO, flops, "train.batch_size=16", "train.min_steps=50",
                 "train.batch_exponent=0.5")  # fmt: skip
    smooth = {1e9: 4, 4e9: 8, 1.6e10: 16}
    for b in smooth:  # the smaller of the two rules' batches: the step rule's 50 steps still hold
        (by_steps,) = {r.batch_size for r in steps_rule if r.budget == b}
        assert {r.batch_size for r in both if r.budget == b} == {min(by_steps, smooth[b])}
    assert any(r.batch_size < 16 for r in steps_rule if r.budget == 1.6e10)  # the step rule binds there


def test_branches_of_a_size_share_the_batch_of_its_shortest_budget() -> None:
    runs = _plan(
        "sweep.branches=true", "train.schedule=wsd", "train.min_steps=20", "sweep.tokens=[16384,65536]"
    )
    assert {(r.batch_size, r.parent.batch_size) for r in runs} == {(12, 12)}
    assert sorted({r.steps for r in runs}) == [21, 85]


def test_a_fixed_depth_gives_every_width_the_same_layers() -> None:
    runs = _plan("model.depth=3", "model.head_dim=8", "sweep.widths=[16,40,72]")
    assert {r.shape.depth for r in runs} == {3}
    assert {r.shape.width // r.shape.n_heads for r in runs} == {8}
    assert {r.shape.depth for r in _plan("sweep.widths=[16,64]")} == {1, 2}  # depth 0: from aspect


def test_default_cpu_sweep_meets_its_design_rules() -> None:
    """The cpu preset (docs/default_sweep.md): every run >= 200 steps; >= 8 budgets over >= 2 decades,
    each with >= 5 sizes; one depth, size steps <= 1.5x; replicate seeds at >= 2 budgets."""
    runs = _plan("sweep=cpu")
    base = [r for r in runs if r.train.seed == 0]
    budgets = sorted({r.budget for r in base})
    assert min(r.steps for r in runs) >= 200
    assert len(budgets) >= 8 and budgets[-1] / budgets[0] >= 100
    assert all(sum(r.budget == b for r in base) >= 5 for b in budgets)
    sizes = sorted({r.params.total for r in base})
    assert max(b / a for a, b in zip(sizes, sizes[1:], strict=False)) <= 1.5
    assert len({r.shape.depth for r in runs}) == 1
    replicated = {(r.shape.width, r.budget) for r in runs if r.train.seed != 0}
    assert len({b for _, b in replicated}) >= 2 and len({r.train.seed for r in runs}) >= 3


def test_a_fixed_head_count_allows_any_width_it_divides() -> None:
    runs = _plan("model.depth=2", "model.n_heads=2", "sweep.widths=[10,14,38]")
    assert {(r.shape.width, r.shape.n_heads) for r in runs} == {(10, 2), (14, 2), (38, 2)}
    with pytest.raises(
        ConfigError, match=r"^sweep.widths\[0\]: width 11 is not divisible by model.n_heads=2"
    ):
        check_config(compose_config("sweep=smoke", "model.n_heads=2", "sweep.widths=[11]"))
