"""Number formatting shared by the markdown report and the terminal summary."""

from __future__ import annotations

import math


def g(x: float | None, digits: int = 4) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{x:.{digits}g}"


def ci(ci: dict, key: str, digits: int = 4) -> str:
    v = ci.get(key)
    return "n/a" if v is None else f"[{g(v[0], digits)}, {g(v[1], digits)}]"


def pct(x: float | None) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.2%}"


def ci_pct(ci: dict, key: str) -> str:
    v = ci.get(key)
    return "n/a" if v is None else f"[{pct(v[0])}, {pct(v[1])}]"
