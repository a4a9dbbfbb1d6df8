"""The synthetic source's exact Bayes loss and questions: forward filtering over the skills still possible
gives what filtering over all K skills at every token gives (the reference below), at any chunking."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp

from harness.config import SyntheticConfig
from harness.data import synthetic
from harness.data.synthetic import SkillMixture


def dense_token_logprobs(m: SkillMixture, seq: np.ndarray) -> np.ndarray:
    """log p(x_{t+1} | x_0..x_t) with the posterior over all K skills carried at every token."""
    log_w = np.tile(np.log(m.skill_p), (seq.shape[0], 1))
    out = np.empty((seq.shape[0], seq.shape[1] - 1))
    for t in range(seq.shape[1] - 1):
        a, nxt = seq[:, t], seq[:, t + 1]
        q = (m.prob[:, a, :] * (m.succ[:, a, :] == nxt[None, :, None])).sum(-1).T  # [n, K]
        with np.errstate(divide="ignore"):
            log_q = np.log(q)
        out[:, t] = logsumexp(log_w + log_q, axis=1) - logsumexp(log_w, axis=1)
        log_w = log_w + log_q
    return out


def dense_asked(m: SkillMixture, seq: np.ndarray, skills: np.ndarray, min_prob: float) -> np.ndarray:
    """Which positions get a question, from the full posterior and the dense transition table."""
    k, v, _ = m.succ.shape
    dense = np.zeros((k, v, v))
    np.put_along_axis(dense, m.succ, m.prob, axis=-1)
    top = np.take_along_axis(m.succ, m.prob.argmax(-1)[..., None], -1)[..., 0]
    bigram_top = np.einsum("k,kab->ab", m.skill_p, dense).argmax(-1)
    log_w = np.tile(np.log(m.skill_p), (seq.shape[0], 1))
    asked = np.zeros((seq.shape[0], seq.shape[1] - 1), dtype=bool)
    for t in range(seq.shape[1] - 1):
        a = seq[:, t]
        w = np.exp(log_w - logsumexp(log_w, axis=1, keepdims=True))
        pred = np.einsum("nk,nkb->nb", w, dense[:, a, :].transpose(1, 0, 2))
        answer = top[skills, a]
        asked[:, t] = (pred.argmax(-1) == answer) & (pred.max(-1) >= min_prob) & (answer != bigram_top[a])
        q = (m.prob[:, a, :] * (m.succ[:, a, :] == seq[None, :, t + 1, None])).sum(-1).T
        with np.errstate(divide="ignore"):
            log_w = log_w + np.log(q)
    return asked


@pytest.mark.parametrize(
    "skills, vocab, branching, pairs", [(64, 16, 2, 1 << 22), (200, 8, 3, 1 << 22), (64, 16, 2, 100)]
)
def test_sparse_filter_equals_the_full_posterior(
    skills: int, vocab: int, branching: int, pairs: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(synthetic, "FILTER_PAIRS", pairs)  # 100: one sequence per chunk
    cfg = SyntheticConfig(n_skills=skills, zipf_exponent=1.2, branching=branching, concentration=0.5)
    m = SkillMixture.create(cfg, vocab, seed=7)
    seq, which = m.sample(40, 33, np.random.default_rng(1))
    np.testing.assert_allclose(m.token_logprobs(seq), dense_token_logprobs(m, seq), rtol=1e-12, atol=1e-12)
    q = m.questions(seq, which, min_prob=0.6)
    asked = dense_asked(m, seq, which, 0.6)
    np.testing.assert_array_equal(q.pos, np.flatnonzero(asked))
    assert len(q.pos) > 0


@pytest.mark.parametrize(
    "overrides",
    [
        (),
        ("data.noise_fraction=0.1",),
        ("data.synthetic.copy_frac=0.2", "data.synthetic.copy_period=5"),
        ("data.max_unique_tokens=3000",),  # 93 sequences of 32 tokens, repeated: batches wrap inside a chunk
    ],
)
def test_batches_made_on_a_device_are_the_hosts(overrides: tuple[str, ...]) -> None:
    """device_batch (a GPU's batches, walked by torch; here on the cpu device) gives train_batch's tokens,
    across a chunk boundary and a group boundary (a new device walk), with noise, copying or a capped
    stream: the same sequences for the same seed and step wherever they are made."""
    import torch

    from harness.data import make_source
    from tests.conftest import compose_config

    source = make_source(compose_config("sweep=smoke", *overrides).data)
    batch = 100  # chunk boundaries at 2,048 sequences; a device walk's group holds 8 chunks (16,384)
    per_group = synthetic.DEVICE_CHUNKS * synthetic.CHUNK_SEQS // batch
    for step in (0, 1, 20, per_group, per_group + 1, 3):  # 20: the first chunk boundary; back to group 0
        host = source.train_batch(step, batch, seed=2)
        made = source.device_batch(step, batch, 2, torch.device("cpu"))
        for h, d in zip(host, made, strict=True):
            assert d.dtype == torch.int64 and d.shape == h.shape
            np.testing.assert_array_equal(d.numpy(), h)
    assert len(source._groups) <= 2  # device walks kept: the last two groups
