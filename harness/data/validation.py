"""How the held-out sequences combine into one validation loss, and that loss's standard error.

Sequences, not tokens, are the independent unit (tokens of one sequence share its skill, file and
context). Each source says how its sequences were drawn (`ValWeights`): a weight per sequence (its
share of the loss; they sum to 1) and a stratum per sequence. The loss is the weighted mean of the
per-sequence losses and its standard error the stratified-sampling one,

    L = sum_i w_i l_i,    SE^2 = sum_j W_j^2 s_j^2 / n_j,

with W_j the weight of stratum j, n_j its sequences and s_j^2 their sample variance (Cochran 1977,
ch. 5). Variance between strata costs nothing, so strata that group alike sequences (the synthetic
source's skills, with their known frequencies as weights) make the estimate precise, and a shared
validation set cannot drift from the source's expected loss as models learn more skills.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_PER_STRATUM = 2  # sequences per stratum: a variance needs two


@dataclass(frozen=True)
class ValWeights:
    """weight[i]: sequence i's share of the validation loss (sums to 1); stratum[i]: its stratum,
    every stratum holding at least MIN_PER_STRATUM sequences of equal weight."""

    weight: np.ndarray  # [n] float64
    stratum: np.ndarray  # [n] int64

    @classmethod
    def from_strata(cls, stratum: np.ndarray, stratum_weight: np.ndarray) -> ValWeights:
        """Sequence weights from each stratum's weight W_j shared equally by its n_j sequences."""
        stratum = np.asarray(stratum, dtype=np.int64)
        counts = np.bincount(stratum, minlength=len(stratum_weight))
        if (counts[stratum_weight > 0] < MIN_PER_STRATUM).any():
            raise ValueError(f"every stratum with weight needs at least {MIN_PER_STRATUM} sequences")
        w = np.asarray(stratum_weight, dtype=np.float64)[stratum] / counts[stratum]
        return cls(weight=w / w.sum(), stratum=stratum)

    @classmethod
    def systematic(cls, n: int) -> ValWeights:
        """n equally weighted sequences taken at even spacing through a corpus: adjacent pairs are the
        strata (the paired-differences estimator of a systematic sample; an odd last one joins the
        pair before it), so the SE leaves out the variation between distant parts (files) of it."""
        if n < MIN_PER_STRATUM:
            raise ValueError(f"a validation set needs at least {MIN_PER_STRATUM} sequences, got {n}")
        stratum = np.minimum(np.arange(n) // 2, n // 2 - 1)
        return cls(weight=np.full(n, 1.0 / n), stratum=stratum)


def val_loss_with_se(per_sequence_losses: np.ndarray, weights: ValWeights) -> tuple[float, float]:
    """(loss, standard error) of the validation loss from each sequence's mean token loss (nats)."""
    losses = np.asarray(per_sequence_losses, dtype=np.float64)
    if losses.shape != weights.weight.shape:
        raise ValueError(f"{losses.shape} sequence losses for {weights.weight.shape} validation sequences")
    loss = float(weights.weight @ losses)
    n = np.bincount(weights.stratum)
    big_w = np.bincount(weights.stratum, weights=weights.weight)
    mean = np.bincount(weights.stratum, weights=losses) / np.maximum(n, 1)
    sq = np.bincount(weights.stratum, weights=(losses - mean[weights.stratum]) ** 2)
    var = np.divide(sq, n - 1, out=np.zeros_like(sq), where=n > 1)
    return loss, float(np.sqrt(np.sum(np.divide(big_w**2 * var, n, out=np.zeros_like(sq), where=n > 0))))


def frequency_strata(p: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Strata of classes with known frequencies p (most frequent first) for n sequences.

    Each stratum is a run of consecutive classes, closed once its frequency reaches
    MIN_PER_STRATUM / n, so proportional allocation gives it at least MIN_PER_STRATUM sequences; a
    last run below that joins the one before. Frequent classes are their own strata; rare ones share
    a stratum with neighbours of similar frequency (which a model tends to have learned, or not,
    alike). Returns (stratum of each class, sequences per stratum: round(n W_j), at least the minimum).
    """
    p = np.asarray(p, dtype=np.float64)
    if n < MIN_PER_STRATUM:
        raise ValueError(f"a validation set needs at least {MIN_PER_STRATUM} sequences, got {n}")
    stratum_of = np.empty(len(p), dtype=np.int64)
    j, mass = 0, 0.0
    for k, pk in enumerate(p):
        stratum_of[k] = j
        mass += pk
        if mass * n >= MIN_PER_STRATUM and k < len(p) - 1:
            j, mass = j + 1, 0.0
    if mass * n < MIN_PER_STRATUM and j > 0:  # the last run is too light: merge it into the one before
        stratum_of[stratum_of == j] = j - 1
    big_w = np.bincount(stratum_of, weights=p)
    return stratum_of, np.maximum(MIN_PER_STRATUM, np.round(n * big_w).astype(np.int64))
