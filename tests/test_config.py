"""Config composition and one-line validation of bad input."""

from __future__ import annotations

import pytest

from harness.config import ConfigError
from harness.overrides import check_overrides
from harness.plan import check_config, plan_runs
from tests.conftest import CONFIG_DIR, compose_config

GROUPS = ("model", "data", "train", "sweep", "logger", "fit", "hydra/launcher")
# what an option needs beside it: the user's input (files, a dataset), or the sweep it is sized for
NEEDS = {
    ("data", "text"): ["data.files=[README.md]"],
    ("data", "hf"): ["data.hf_path=json"],
    ("data", "fineweb_edu"): ["sweep=gpu"],
    ("data", "tinystories"): ["sweep=gpu"],
}


def _options() -> list[tuple[str, str]]:
    return [(g, p.stem) for g in GROUPS for p in sorted((CONFIG_DIR / g).glob("*.yaml"))]


@pytest.mark.parametrize(("group", "option"), _options(), ids=str)
def test_every_option_of_every_group_composes_checks_and_plans(group: str, option: str) -> None:
    """Each yaml of each group composes onto the defaults, passes every check, and plans its runs."""
    cfg = compose_config(f"{group}={option}", *NEEDS.get((group, option), []))
    check_config(cfg)
    runs = plan_runs(cfg, vocab_size=cfg.data.vocab_size, data_fingerprint="x", precision="fp32")
    assert runs and len({r.run_id for r in runs}) == len(runs)
    if group == "sweep":
        # a multirun preset (lr_scan) puts each of its sweeps in a directory under runs/<option>/
        assert cfg.sweep.name == option and cfg.sweep.dir.startswith(f"runs/{option}")


def test_the_option_list_is_complete() -> None:
    """Every group directory under configs/ (but experiment/, tested in test_experiments) is covered."""
    yamls = [p for p in CONFIG_DIR.rglob("*.yaml") if p.parent != CONFIG_DIR]
    dirs = {str(p.parent.relative_to(CONFIG_DIR)) for p in yamls}
    assert {d for d in dirs if not d.startswith(("experiment", "sweep/common"))} == set(GROUPS)


def test_cpu_preset_spans_the_required_ladder() -> None:
    """>= 5 sizes over >= 30x in non-embedding parameters; every size but the largest (which only the
    top budget affords) trained at >= 2 budgets (the rest of its rules: tests/test_plan.py)."""
    cfg = compose_config("sweep=cpu")
    runs = plan_runs(cfg, vocab_size=cfg.data.vocab_size, data_fingerprint="x", precision="fp32")
    sizes = sorted({r.params.nonembedding for r in runs})
    assert len(sizes) >= 5 and sizes[-1] / sizes[0] >= 30
    for n in sizes[:-1]:
        assert len({r.budget for r in runs if r.params.nonembedding == n}) >= 2


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        (["sweep.tokens=[-5]"], "sweep.tokens[0]"),
        (["sweep.tokens=[0,100000]"], "sweep.tokens[0]"),
        (["sweep.tokens=[10]"], "smaller than one batch"),
        (["sweep.widths=[33]"], "sweep.widths[0]"),
        (["sweep.widths=[]"], "sweep.widths"),
        (["sweep.widths=[32,32]"], "duplicate"),
        (["model.family=rnn"], "model.family"),
        (["train.lr=-1"], "train.lr"),
        (["data.source=nope"], "data.source"),
        (["sweep.design=isoflop", "sweep.flops=[]"], "sweep.flops"),
        (["sweep.design=paired", "sweep.tokens=[16384]"], "sweep.tokens: design=paired needs one budget"),
        (["sweep.name=.."], "sweep.name: must be one directory name inside the sweeps folder"),
        (["sweep.name=."], "sweep.name"),
        (["sweep.max_hours=0"], "sweep.max_hours: must be > 0"),
        (["sweep.seeds=[1,-1]"], "sweep.seeds[1]: a seed must be >= 0, got -1"),
        (["train.seed=-3"], "train.seed: a seed must be >= 0"),
        (["data.seed=-1"], "data.seed: a seed must be >= 0"),
        (["fit.seed=-1"], "fit.seed: a seed must be >= 0"),
    ],
)
def test_bad_values_fail_with_one_line_naming_the_field(overrides: list[str], field: str) -> None:
    cfg = compose_config("sweep=smoke", *overrides)
    with pytest.raises(ConfigError) as err:
        check_config(cfg)
    assert field in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("model.widht=64", "model.widht: unknown config key"),
        ("train.lr=abc", "train.lr"),
        ("sweep.widths=[a,b]", "sweep.widths"),
        ("model=transformerxl", "model: unknown option 'transformerxl'; allowed: gpt2, llama, lstm, neox"),
        ("nosuchgroup.x=1", "nosuchgroup.x: unknown config key"),
        ("sweep.widht=[16]", "; did you mean sweep.widths?"),
        ("fit.bootstrapp=10", "; did you mean fit.bootstrap?"),
        ("sweeps=smoke", "; did you mean sweep?"),
        ("sweep=smok", "; did you mean sweep=smoke?"),
        (
            "smoke",
            "positional argument 'smoke': arguments are KEY=VALUE overrides; did you mean sweep=smoke?",
        ),
        ("widths", "did you mean sweep.widths=...?"),
        ("xyzzy", "positional argument 'xyzzy': arguments are KEY=VALUE overrides"),
    ],
)
def test_bad_overrides_fail_before_compose(override: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        check_overrides([override], CONFIG_DIR)
    assert expected in str(err.value)
    assert "\n" not in str(err.value)


def test_good_overrides_pass() -> None:
    check_overrides(
        ["sweep=smoke", "train.lr=1e-3", "sweep.widths=[16,32]", "-m", "hydra.verbose=true"], CONFIG_DIR
    )
    check_overrides(["--cfg", "job", "--info", "defaults", "-cn", "config", "sweep=smoke"], CONFIG_DIR)


def test_a_bare_path_is_guessed_as_the_path_key(tmp_path) -> None:
    with pytest.raises(ConfigError, match=f"did you mean sweep.dir={tmp_path}"):
        check_overrides([str(tmp_path)], CONFIG_DIR, path_key="sweep.dir")
