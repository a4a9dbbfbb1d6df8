"""scripts/size_source.py's model of the synthetic source: the tail bound K(a), the modelled reducible
loss, and the gap-curve fit, checked against definitions and a known answer (no training)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import zeta

from tests.conftest import load_script

size_source = load_script("size_source")
G_MAX = 2.943  # the pilot's fitted gap of an unlearned skill (docs/default_sweep.md)


@pytest.mark.parametrize("a", [1.5, 1.8, 2.2, 2.4, 2.5, 3.0])
def test_skills_for_is_the_fewest_power_of_two_within_the_tail_bound(a: float) -> None:
    k = size_source.skills_for(a, G_MAX)
    assert k is not None and k & (k - 1) == 0

    def tail(n: int) -> float:  # nats the skills beyond the first n would add, all unlearned
        return G_MAX * zeta(a, n + 1) / zeta(a)

    assert tail(k) <= size_source.FLOOR_TOLERANCE < tail(k // 2)


def test_the_candidates_the_docs_name() -> None:
    assert {a: size_source.skills_for(a, G_MAX) for a in (1.8, 2.2, 2.3, 2.4, 2.5)} == {
        1.8: 1024,
        2.2: 128,
        2.3: 64,
        2.4: 64,
        2.5: 32,
    }
    assert size_source.skills_for(1.1, G_MAX) is None  # would need more than MAX_SKILLS


def test_reducible_loss_falls_from_the_unlearned_gap_towards_zero() -> None:
    gap = (G_MAX, 5050.0, 0.98)
    losses = [size_source.reducible(d, 2.4, 64, gap) for d in (0.0, 1e5, 1e6, 1e7, 1e12)]
    assert losses[0] == pytest.approx(G_MAX)
    assert all(x > y for x, y in zip(losses, losses[1:], strict=False))
    assert losses[-1] < 1e-3


def test_fit_gap_recovers_a_known_curve() -> None:
    truth = (2.5, 4000.0, 1.1)
    p = 0.5 ** np.arange(1, 40) / (1 - 0.5**39)  # skill frequencies over 5 decades
    pilot = {"skill_p": p.tolist(), "runs": []}
    for tokens in (2e5, 1e6, 5e6):
        gap = size_source.gap_curve(p * tokens, *truth)
        pilot["runs"].append({"tokens": tokens, "gap": gap.tolist()})
    assert size_source.fit_gap(pilot) == pytest.approx(truth, rel=1e-4)
