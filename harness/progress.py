"""Progress of one training run while it trains: a tqdm bar on a terminal, plain lines otherwise.

`train_run` calls its `progress(step, loss)` hook after every optimiser step, with the steps done and
the loss of that step (None where reading it would cost a host sync: between evals on cuda). A
`RunProgress` is such a hook: on a terminal a bar with the loss, the step rate and tqdm's ETA; in a
log file (not a terminal) one line every `every_s` seconds, so a long run shows it is alive without
flooding the log, and a short one prints nothing. Each training process makes its own.
"""

from __future__ import annotations

import math
import sys
import time
from typing import TextIO


def duration(seconds: float) -> str:
    """A duration a person reads at a glance: 42 s, 8.5 min, 3.2 h, 5.1 days, 3e+09 years."""
    if not math.isfinite(seconds):
        return "unknown"
    for limit, div, unit in ((5400, 60, "min"), (172800, 3600, "h"), (3.2e7, 86400, "days")):
        if seconds < 90:
            return f"{seconds:.0f} s"
        if seconds < limit:
            return f"{seconds / div:.2g} {unit}"
    return f"{seconds / 3.156e7:.2g} years"


class RunProgress:
    """The `progress(step, loss)` hook of one run; `close()` once it ends (also on an error)."""

    def __init__(
        self,
        label: str,
        total: int,
        *,
        stream: TextIO | None = None,
        tty: bool | None = None,
        every_s: float = 30.0,
        position: int = 0,
    ) -> None:
        self.label, self.total, self.every_s = label, total, every_s
        self.stream = stream or sys.stdout
        self.loss: float | None = None
        self._start_step: int | None = None
        self._t0 = time.monotonic()
        self._last_line = self._t0
        tty = self.stream.isatty() if tty is None else tty
        self._bar = None
        if tty:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total,
                desc=label,
                unit="step",
                file=sys.stderr if stream is None else self.stream,
                leave=False,
                dynamic_ncols=True,
                mininterval=0.5,
                position=position,
            )

    def __call__(self, step: int, loss: float | None = None) -> None:
        if self._start_step is None:  # a resumed run starts where its checkpoint left off
            self._start_step = step - 1
        if loss is not None:
            self.loss = loss
        if self._bar is not None:
            self._bar.update(step - self._bar.n)
            if loss is not None and self._bar.n % 20 == 0:
                self._bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
            return
        now = time.monotonic()
        if now - self._last_line >= self.every_s and step < self.total:
            self._last_line = now
            print(self.line(step, now - self._t0), file=self.stream, flush=True)

    def line(self, step: int, elapsed: float) -> str:
        """The plain line at `step` after `elapsed` seconds: steps, share, loss and ETA."""
        rate = (step - (self._start_step or 0)) / elapsed if elapsed > 0 else 0.0
        eta = duration((self.total - step) / rate) if rate > 0 else "?"
        loss = "" if self.loss is None else f"  loss {self.loss:.4f}"
        return (
            f"{time.strftime('%H:%M:%S')} {self.label}  step {step}/{self.total} "
            f"({step / self.total:.0%}){loss}  {rate:.1f} steps/s  eta {eta}"
        )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
