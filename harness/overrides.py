"""The command line of `python -m harness.sweep` and `python -m harness.refit`, checked before Hydra
composes: a bare word, a misspelled key, a wrong type or an unknown group option is one line naming
it, with a 'did you mean' where something close exists (Hydra's own errors span several lines and
suggest `+key=value`, which adds the misspelled key instead)."""

from __future__ import annotations

from pathlib import Path

from harness.config import Config, ConfigError

# Hydra's command-line flags that take a value (the next argument), and --info's optional one.
_VALUE_FLAGS = ("--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn",
                "--config-dir", "-cd", "--experimental-rerun")  # fmt: skip
_INFO_FLAGS = ("--info", "-i")
_INFO_VALUES = ("all", "config", "defaults", "defaults-tree", "plugins", "searchpath")


def override_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """(KEY=VALUE overrides, bare positional words) of a command line, Hydra's flags and their values
    left out."""
    overrides, words = [], []
    args = iter(argv)
    for arg in args:
        if arg in _VALUE_FLAGS:
            next(args, None)
        elif arg in _INFO_FLAGS:
            pass  # its optional value is recognised below
        elif arg.startswith("-"):
            continue
        elif "=" in arg:
            overrides.append(arg)
        elif arg not in _INFO_VALUES:
            words.append(arg)
    return overrides, words


def _closest(word: str, choices: list[str]) -> str | None:
    import difflib

    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return close[0] if close else None


def _suggest(word: str, choices: list[str], prefix: str = "") -> str:
    """'; did you mean PREFIX+CHOICE?' for the choice closest to word, or ''."""
    close = _closest(word, choices)
    return f"; did you mean {prefix}{close}?" if close else ""


def _suggest_key(key: str, keys: list[str]) -> str:
    """'; did you mean K?' for the key K at key's depth whose last part is closest to key's (its own
    group's first: fit.bootstrapp -> fit.bootstrap, model.widht -> sweep.widths), or ''."""
    head, _, leaf = key.rpartition(".")
    depth = key.count(".")
    same_depth = sorted((k for k in keys if k.count(".") == depth), key=lambda k: not k.startswith(head))
    by_leaf: dict[str, str] = {}
    for k in same_depth:
        by_leaf.setdefault(k.rpartition(".")[2], k)
    close = _closest(leaf, list(by_leaf))
    return f"; did you mean {by_leaf[close]}?" if close else ""


def _leaf_keys(node, prefix: str = "") -> list[str]:
    from omegaconf import DictConfig

    keys = []
    for k in node:
        path = f"{prefix}{k}"
        keys.append(path)
        child = node._get_node(k)
        if isinstance(child, DictConfig):
            keys += _leaf_keys(child, f"{path}.")
    return keys


def _options(group_dir: Path) -> list[str]:
    return sorted(p.stem for p in group_dir.glob("*.yaml"))


def _group_options(config_dir: Path | None) -> dict[str, list[str]]:
    """Each top-level config group of config_dir (a subdirectory) with its options (yaml stems)."""
    if config_dir is None:
        return {}
    return {d.name: _options(d) for d in sorted(config_dir.iterdir()) if d.is_dir()}


def check_positional(words: list[str], schema, config_dir: Path | None, path_key: str | None = None) -> None:
    """Refuse a bare word on the command line (Hydra takes only KEY=VALUE) with one line that guesses
    what was meant: a group's option (`smoke` -> sweep=smoke), a path (-> `path_key`=PATH) or a key
    of `schema` (an OmegaConf node)."""
    if not words:
        return
    word = words[0]
    guess = ""
    for group, options in _group_options(config_dir).items():
        if word in options:
            guess = f"; did you mean {group}={word}?"
            break
    if not guess and path_key and Path(word).exists():
        guess = f"; did you mean {path_key}={word}?"
    if not guess:
        keys = [k for k in _leaf_keys(schema) if not k.startswith(("hydra", "defaults"))]
        guess = _suggest(word, keys + list(_group_options(config_dir)))
        guess = guess[:-1] + "=...?" if guess else ""
    raise ConfigError(f"positional argument {word!r}: arguments are KEY=VALUE overrides{guess}")


def _syntax_error(parser, args: list[str], exc: Exception) -> str:
    """One line for Hydra's grammar error: a character Hydra reads only inside quotes (any non-ASCII
    one, sweep.name=ünï) named with the quoted form to type instead; else Hydra's first line."""
    for arg in args:
        try:
            parser.parse_overrides([arg])
        except Exception:  # noqa: BLE001 - the override that fails
            key, _, value = arg.partition("=")
            odd = next((c for c in value if not c.isascii()), None)
            if odd is not None:
                return (
                    f"{key}: {value!r} holds {odd!r}, which Hydra reads only inside quotes; "
                    f"""give "{key}='{value}'" (the shell's quotes around Hydra's)"""
                )
            break
    return f"bad override syntax: {str(exc).splitlines()[0]}"


def check_overrides(
    argv: list[str], config_dir: Path | None, schema: type | None = None, path_key: str | None = None
) -> None:
    """Reject a bare positional word, a misspelled key, a wrong type or an unknown group option in
    command-line overrides with one line (with a 'did you mean' where one is close), before Hydra
    composes (whose own errors span several lines). `schema` is the structured config (default:
    the sweep's `Config`), `config_dir` its groups' directory, `path_key` the key a bare existing
    path most likely belongs to."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import DictConfig, OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    args, words = override_args(argv)
    schema = OmegaConf.structured(schema or Config)
    check_positional(words, schema, config_dir, path_key)
    parser = OverridesParser.create()
    try:
        overrides = parser.parse_overrides(args)
    except Exception as exc:  # Hydra's grammar errors
        raise ConfigError(_syntax_error(parser, args, exc)) from None
    groups = _group_options(config_dir)
    for ov in overrides:
        key = ov.key_or_group
        if ov.is_delete() or key.startswith("hydra") or ov.is_sweep_override():
            continue
        if config_dir is not None and (config_dir / key).is_dir():  # a group choice: model=gpt2
            options, value = _options(config_dir / key), ov.value()
            if isinstance(value, str) and value not in options:
                raise ConfigError(
                    f"{key}: unknown option {value!r}; allowed: {', '.join(options)}"
                    + _suggest(value, options, f"{key}=")
                )
            continue
        head, _, leaf = key.rpartition(".")
        parent = OmegaConf.select(schema, head) if head else schema
        if not isinstance(parent, DictConfig) or leaf not in parent:
            allowed = ", ".join(parent.keys()) if isinstance(parent, DictConfig) else "none"
            raise ConfigError(
                f"{key}: unknown config key; allowed keys of {head or 'the config'}: {allowed}"
                + _suggest_key(key, _leaf_keys(schema) + list(groups))
            )
        try:
            OmegaConf.update(schema, key, ov.value(), merge=True)
        except OmegaConfBaseException as exc:
            raise ConfigError(f"{key}: {str(exc).splitlines()[0]}") from None
