"""Defaults that agree: the code's defaults are the default run's, every config file changes only what it
must (each key differs from what it would be without the file, under a comment saying why), and every
knob is set by some config, test or documented example (else it goes)."""

from __future__ import annotations

import re
from dataclasses import asdict, fields, is_dataclass

import pytest
from omegaconf import OmegaConf

from harness.config import Config
from tests.conftest import CONFIG_DIR, ROOT, compose_config

SKIP = {"config.yaml"}  # the primary config: the defaults list and Hydra's settings


def _flat(tree: object, prefix: str = "") -> dict[str, object]:
    if not isinstance(tree, dict):
        return {prefix.rstrip("."): tree}
    out: dict[str, object] = {}
    for k, v in tree.items():
        out.update(_flat(v, f"{prefix}{k}."))
    return out


def _config_files() -> list:
    return sorted(
        p for p in CONFIG_DIR.rglob("*.yaml") if p.name not in SKIP and "hydra" not in p.parts
    )


def _keys(path) -> dict[str, object]:
    """The leaf keys a config file sets, with their package (group prefix unless _global_)."""
    global_ = path.read_text().startswith("# @package _global_")
    tree = OmegaConf.to_container(OmegaConf.load(path), resolve=False) or {}
    tree = {k: v for k, v in tree.items() if k not in ("defaults", "hydra")}
    group = path.relative_to(CONFIG_DIR).parts[0]
    return _flat(tree if global_ else {group: tree})


def _included(path) -> list:
    """The config files a file's defaults list pulls in before itself (group choices left out)."""
    tree = OmegaConf.to_container(OmegaConf.load(path), resolve=False) or {}
    out = []
    for entry in tree.get("defaults", []):
        if not isinstance(entry, str) or entry == "_self_" or "@" in entry:  # @: packaged elsewhere
            continue
        ref = CONFIG_DIR / f"{entry[1:]}.yaml" if entry.startswith("/") else path.parent / f"{entry}.yaml"
        out += [*_included(ref), ref]
    return out


def _base(path) -> dict[str, object]:
    """What the keys of `path` would be without it: the code's defaults and the files it includes."""
    base = _flat(asdict(Config()))
    for ref in _included(path):
        base.update(_keys(ref))
    return base


def _same(a: object, b: object) -> bool:
    if isinstance(a, float | int) and isinstance(b, float | int) and not isinstance(a, bool):
        return a == pytest.approx(b, rel=1e-12)
    return a == b


@pytest.mark.parametrize("path", _config_files(), ids=lambda p: str(p.relative_to(CONFIG_DIR)))
def test_a_config_file_sets_only_what_it_changes_and_says_why(path) -> None:
    text = path.read_text()
    reason = [line for line in text.splitlines() if line.startswith("#") and "@package" not in line]
    assert reason, f"{path.name}: no comment saying what the file is for"
    if path.parent.name == "tuning":  # an arm's tuning record: the compare callback's data, not knobs
        return
    base = _base(path)
    pinned = {m[1] for m in re.finditer(r"^\s*(\w+):.*#.*\bpinned\b", text, re.M)}  # on purpose, said why
    for key, value in _keys(path).items():
        assert key in base, f"{path.name}: {key} is not a config knob"
        if key.rsplit(".", 1)[-1] not in pinned:
            assert not _same(value, base[key]), f"{path.name}: {key}: {value!r} is already the default"


def test_the_code_defaults_are_the_default_run() -> None:
    """`python -m harness.sweep` (no GPU) composes to exactly the dataclasses' defaults."""
    composed = _flat(asdict(compose_config()))
    defaults = _flat(asdict(Config()))
    for interpolated in ("data.cache_dir", "sweep.dir"):  # the defaults' ${...}, resolved when composed
        composed.pop(interpolated)
        defaults.pop(interpolated)
    assert composed == defaults


def _knobs(cls: type = Config, prefix: str = "") -> list[str]:
    out = []
    for f in fields(cls):
        default = f.default_factory() if callable(f.default_factory) else f.default
        out += _knobs(type(default), f"{prefix}{f.name}.") if is_dataclass(default) else [prefix + f.name]
    return out


def test_every_knob_is_set_by_a_config_a_test_or_a_documented_example() -> None:
    """A knob nobody sets is a default nobody chose: set it somewhere that shows why, or remove it."""
    in_configs = {k for p in _config_files() for k in _keys(p)}
    texts = [p.read_text() for pattern in ("tests/*.py", "docs/*.md", "README.md", "configs/**/*.yaml")
             for p in ROOT.glob(pattern)]  # fmt: skip
    text = "\n".join(texts)
    unset = []
    for knob in _knobs():
        leaf = knob.rsplit(".", 1)[-1]
        shown = re.search(rf"{re.escape(knob)}=", text) or re.search(rf"\.{leaf} = |\b{leaf}=[^=]", text)
        if knob not in in_configs and not shown:
            unset.append(knob)
    assert unset == []
