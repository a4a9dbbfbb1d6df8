"""The studies' command lines take `key=value`, as `python -m harness.sweep` does."""

from __future__ import annotations

from harness.config import ConfigError


def key_values(
    argv: list[str], *, required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> dict[str, str]:
    """The `key=value` arguments as a dict; ConfigError (one line naming the argument and what is allowed)
    for anything else, an unknown or repeated key, or a missing required one."""
    allowed = ", ".join(f"{k}=..." for k in (*required, *optional))
    args: dict[str, str] = {}
    for arg in argv:
        key, eq, value = arg.partition("=")
        if not eq or key not in (*required, *optional):
            raise ConfigError(f"{arg}: not an argument here; allowed: {allowed}")
        if key in args:
            raise ConfigError(f"{key}: given twice")
        args[key] = value
    if missing := [k for k in required if k not in args]:
        raise ConfigError(f"{missing[0]}: required; allowed: {allowed}")
    return args
