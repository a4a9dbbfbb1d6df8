"""How often is the verdict wrong on this sweep's own design? Simulated sweeps from known laws.

Each simulated sweep has the sweep's points (N, D, C, budgets, replicate counts) and its measured
noise (`harness.fit.noise`), and losses drawn from one of these truths:
    smooth, no floor   the Chinchilla surface E + A/N^alpha + B/D^beta closest to the sweep's losses
                       with E = 0
    smooth, floor      the same with E = half the sweep's smallest loss
    broken             the no-floor truth whose compute exponent halves at mid-range: from the middle
                       of the sweep's log C range on, every run's reducible loss is multiplied by
                       (C / C_mid)^(alpha_C / 2), alpha_C = alpha beta / (alpha + beta)
    plateau            the no-floor truth that stops improving two thirds up the range: runs above
                       C_p get (C / C_p)^alpha_C, so the frontier is flat beyond C_p
    bump               the no-floor truth times 1 + 3% exp(-(t - 0.8)^2 / (2 0.1^2)), t the run's
                       position in the log C range: a local worsening near the top
The verdict (`harness.fit.engine`, the fit's own code) judges every simulated sweep; the false-"no"
rate is the share of "no" on the smooth truths, the false-"yes" rate the share of "yes" on the
others. The noise is taken as known (the simulated verdict uses the level the draws came from).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from harness.fit.bootstrap import draw_run_noise, point_losses
from harness.fit.engine import Design, evaluate_rows
from harness.fit.laws import LossSurface
from harness.fit.noise import Noise

FLOOR_SHARE = 0.5
BREAK_AT, PLATEAU_AT = 0.5, 2 / 3
BUMP_HEIGHT, BUMP_AT, BUMP_WIDTH = 0.03, 0.8, 0.1


@dataclass(frozen=True)
class Truth:
    name: str
    smooth: bool
    description: str
    L: np.ndarray  # (m,) the points' noiseless losses


def make_truths(
    N: np.ndarray, D: np.ndarray, C: np.ndarray, no_floor: LossSurface, floor: LossSurface
) -> list[Truth]:
    """The five truths of the module docstring at the points (N, D, C)."""
    base = no_floor.loss(N, D)
    logC = np.log(C)
    t = (logC - logC.min()) / max(logC.max() - logC.min(), 1e-12)
    alpha_c = no_floor.alpha * no_floor.beta / (no_floor.alpha + no_floor.beta)
    at = logC.min() + np.array([BREAK_AT, PLATEAU_AT]) * (logC.max() - logC.min())
    broken = base * np.exp(0.5 * alpha_c * np.maximum(logC - at[0], 0.0))
    plateau = base * np.exp(alpha_c * np.maximum(logC - at[1], 0.0))
    bump = base * (1 + BUMP_HEIGHT * np.exp(-((t - BUMP_AT) ** 2) / (2 * BUMP_WIDTH**2)))
    return [
        Truth("smooth_no_floor", True, "Chinchilla surface fitted to the sweep with E = 0", base),
        Truth(
            "smooth_floor",
            True,
            f"Chinchilla surface fitted to the sweep with E = {floor.E:.4g} (half the smallest loss)",
            floor.loss(N, D),
        ),
        Truth(
            "broken",
            False,
            f"compute exponent halves from mid-range ({alpha_c:.3g} -> {alpha_c / 2:.3g})",
            broken,
        ),
        Truth("plateau", False, "the frontier stops improving two thirds up the compute range", plateau),
        Truth("bump", False, f"the loss {BUMP_HEIGHT:.0%} worse around 80% of the compute range", bump),
    ]


@dataclass(frozen=True)
class Calibration:
    """The verdict's error rates on simulated sweeps of this design."""

    draws: int  # per truth
    noise: float  # the noise level simulated (median relative noise of a run)
    noise_source: str
    false_no: float  # share of "no" over the smooth truths
    false_yes: float  # share of "yes" over the non-smooth truths
    yes_rate: dict[str, float] = field(default_factory=dict)  # per truth
    descriptions: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "draws_per_truth": self.draws,
            "noise": self.noise,
            "noise_source": self.noise_source,
            "false_no": self.false_no,
            "false_yes": self.false_yes,
            "truths": {
                name: {"yes_rate": rate, "smooth": name.startswith("smooth"), "what": self.descriptions[name]}
                for name, rate in self.yes_rate.items()
            },
        }


def calibrate(
    design: Design, noise: Noise, truths: list[Truth], draws: int, rng: np.random.Generator
) -> Calibration:
    """Judge `draws` simulated sweeps per truth with the design's own verdict."""
    Y = np.concatenate(
        [point_losses(replace(design.points, L=t.L), draw_run_noise(noise, draws, rng)) for t in truths]
    )
    smooth = evaluate_rows(design, Y).checks.smooth.reshape(len(truths), draws)
    yes = {t.name: float(smooth[i].mean()) for i, t in enumerate(truths)}
    is_smooth = np.array([t.smooth for t in truths])
    return Calibration(
        draws=draws,
        noise=noise.level,
        noise_source=noise.source,
        false_no=float(1 - smooth[is_smooth].mean()),
        false_yes=float(smooth[~is_smooth].mean()),
        yes_rate=yes,
        descriptions={t.name: t.description for t in truths},
    )
