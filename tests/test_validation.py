"""The validation loss's design: stratified weights, the estimate and its standard error, the
synthetic source's skill strata and the text sources' spread windows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness import store
from harness.config import DataConfig, SyntheticConfig
from harness.data.synthetic import SkillMixture, SyntheticSource, stratified_val_set
from harness.data.validation import ValWeights, frequency_strata, val_loss_with_se
from harness.device import resolve_device
from harness.plan import plan_runs
from harness.tracking.wandb_run import NullLogger
from harness.train import train_run
from tests.conftest import compose_config


def test_loss_and_se_are_the_stratified_formulas() -> None:
    losses = np.array([1.0, 3.0, 2.0, 2.0, 5.0])
    weights = ValWeights.from_strata(np.array([0, 0, 1, 1, 1]), np.array([0.25, 0.75]))
    np.testing.assert_allclose(weights.weight, [0.125, 0.125, 0.25, 0.25, 0.25])
    loss, se = val_loss_with_se(losses, weights)
    assert loss == pytest.approx(0.25 * 2.0 + 0.75 * 3.0)
    assert se == pytest.approx(np.sqrt(0.25**2 * 2.0 / 2 + 0.75**2 * 3.0 / 3))


def test_one_stratum_of_equal_weights_gives_the_plain_mean_and_sd_over_root_n() -> None:
    rng = np.random.default_rng(0)
    losses = rng.normal(2.0, 0.3, size=40)
    one = ValWeights(weight=np.full(40, 1 / 40), stratum=np.zeros(40, dtype=np.int64))
    loss, se = val_loss_with_se(losses, one)
    assert loss == pytest.approx(losses.mean())
    assert se == pytest.approx(losses.std(ddof=1) / np.sqrt(40))


def test_systematic_weights_pair_neighbours_and_remove_a_trend_from_the_se() -> None:
    w = ValWeights.systematic(7)
    assert w.stratum.tolist() == [0, 0, 1, 1, 2, 2, 2]  # the odd last joins the pair before it
    trend = np.linspace(1.0, 4.0, 200)  # windows through files of steadily harder text
    loss, se = val_loss_with_se(trend, ValWeights.systematic(200))
    assert loss == pytest.approx(2.5)
    assert se < 0.05 * trend.std(ddof=1) / np.sqrt(200)
    with pytest.raises(ValueError, match="at least 2 sequences"):
        ValWeights.systematic(1)
    with pytest.raises(ValueError, match="sequence losses for"):
        val_loss_with_se(np.ones(3), ValWeights.systematic(4))


def test_frequency_strata_give_every_stratum_two_sequences_of_consecutive_classes() -> None:
    p = np.arange(1, 301, dtype=float) ** -1.5
    p /= p.sum()
    stratum_of, counts = frequency_strata(p, 128)
    assert np.all(np.diff(stratum_of) >= 0) and stratum_of[0] == 0  # runs of consecutive classes
    assert counts.min() >= 2 and abs(counts.sum() - 128) <= len(counts)
    big_w = np.bincount(stratum_of, weights=p)
    assert np.all(big_w[:-1] * 128 >= 2)  # each closed once it could fill two sequences
    assert np.bincount(stratum_of)[:5].tolist() == [1, 1, 1, 1, 1]  # frequent classes stand alone
    assert np.bincount(stratum_of)[-1] > 10  # the rare tail is shared


def test_stratified_set_matches_the_exact_skill_mix_where_a_plain_sample_drifts() -> None:
    """A 'model' that has learned the 4 most frequent skills: loss 0.5 on them, 3 elsewhere. Its exact
    loss is known from the skill frequencies; the stratified estimate recovers it on every data seed
    within its SE, and its SE is far below that of a plain random sample of the same size."""
    mixture = SkillMixture.create(SyntheticConfig(n_skills=64, zipf_exponent=1.5), vocab_size=8, seed=0)
    p = mixture.skill_p
    exact = 0.5 * p[:4].sum() + 3.0 * p[4:].sum()
    z, plain_se = [], []
    for seed in range(20):
        _, skills, weights = stratified_val_set(mixture, 128, 9, seed)
        rng = np.random.default_rng(seed)
        losses = np.where(skills < 4, 0.5, 3.0) + rng.normal(0, 0.05, len(skills))
        loss, se = val_loss_with_se(losses, weights)
        z.append((loss - exact) / se)
        plain = np.where(rng.choice(len(p), size=128, p=p) < 4, 0.5, 3.0)
        plain_se.append(plain.std(ddof=1) / np.sqrt(128))
        assert se < 0.2 * plain_se[-1]
    assert np.abs(z).max() < 4 and 0.3 < np.std(z) < 2.0  # the SE is of the right size


def test_synthetic_source_weights_its_val_set_and_bayes_loss_by_skill() -> None:
    cfg = DataConfig(source="synthetic", vocab_size=8, seq_len=16, val_tokens=16 * 100)
    cfg.synthetic = SyntheticConfig(n_skills=32, zipf_exponent=1.2)
    src = SyntheticSource(cfg)
    x, _ = src.val_set()
    assert len(x) == len(src.val_weights.weight) == src.info["val_sequences"]
    assert src.val_weights.weight.sum() == pytest.approx(1.0)
    skill_weight = np.bincount(src._val_skills, weights=src.val_weights.weight, minlength=32)
    head = skill_weight[:5]  # frequent skills are strata of their own: exactly their frequency
    np.testing.assert_allclose(head, src.mixture.skill_p[:5])
    assert 0 < src.info["bayes_loss_se"] < 0.05 * src.bayes_loss


def test_a_run_records_its_val_loss_se(tmp_path: Path) -> None:
    cfg = compose_config("sweep=smoke", "sweep.widths=[16]", "sweep.tokens=[16384]", "train.device=cpu")
    source = SyntheticSource(cfg.data)
    (spec,) = plan_runs(
        cfg, vocab_size=source.vocab_size, data_fingerprint=source.fingerprint, precision="fp32"
    )
    result = train_run(spec, source, tmp_path, NullLogger(), resolve_device(cfg.train, 1))
    assert 0 < result["val_loss_se"] < 0.05 * result["val_loss"]
    assert store.read_metrics(tmp_path)[-1]["val/loss_se"] == result["val_loss_se"]
