"""Number formatting shared by the markdown report and the terminal summary."""

from __future__ import annotations

import math

from harness.fit.intervals import MAX_FAILED


def g(x: float | None, digits: int = 4) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{x:.{digits}g}"


def _unreliable(ci, key: str, text: str) -> str:
    """The interval as is, or marked unreliable with why (harness.fit.intervals): never a plain interval."""
    if getattr(ci, "reliable", {}).get(key, True):
        return text
    share = getattr(ci, "failed_share", None)
    why = f"{share:.0%} of resamples failed" if share and share > MAX_FAILED else "excludes the estimate"
    return f"unreliable {text} ({why})"


def ci(ci, key: str, digits: int = 4) -> str:
    """'[lo, hi]' of an interval (a dict or harness.fit.Intervals), flagged when unreliable."""
    v = ci.get(key)
    return "n/a" if v is None else _unreliable(ci, key, f"[{g(v[0], digits)}, {g(v[1], digits)}]")


def pct(x: float | None) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.2%}"


def ci_pct(ci, key: str) -> str:
    v = ci.get(key)
    return "n/a" if v is None else _unreliable(ci, key, f"[{pct(v[0])}, {pct(v[1])}]")
