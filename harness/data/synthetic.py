"""The built-in synthetic language: a Zipf mixture of sparse Markov-chain 'skills' with an exact Bayes loss.

Bigger models and more data keep learning rarer skills, which is what makes loss fall as a power law
(the quantization model of Michaud et al. 2023), and its irreducible loss is known exactly (forward
filtering over the skills). Each skill is asked, on the validation set, for its chain's most likely
next token (`SkillMixture.questions`), and on prompts of its own for its most likely path of several
tokens (`SkillMixture.tasks`). An optional copy skill repeats a random block: one rule, learned as a unit.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from harness.config import DataConfig, SyntheticConfig
from harness.data.source import Questions, Tasks, add_noise, noise_draws, quality_settings
from harness.data.validation import MIN_PER_STRATUM, ValWeights, frequency_strata, val_loss_with_se
from harness.hashing import stable_hash

if TYPE_CHECKING:  # torch loads only where batches are made on a device (walk_on)
    import torch

CHUNK_SEQS = 2048  # synthetic training sequences generated at once
DEVICE_CHUNKS = 8  # chunks one device walk generates (harness.device: batches made on a GPU)
ANSWER_MIN_PROB = 0.7  # a skill question needs the Bayes-optimal predictor this sure of its answer
FILTER_PAIRS = 1 << 22  # (sequence, skill) pairs forward filtering holds at once
TASK_RANKS = (0, 1, 2, 4, 7, 12, 20, 33)  # chain skills given multi-token tasks, by frequency rank
TASK_PROMPTS = 32  # prompts per task
TASK_PROMPT_LEN = 40  # tokens of context before the answer (at most seq_len - TASK_ANSWER_LEN + 1)
TASK_ANSWER_LEN = 8  # answer tokens; exact match is scored for its first 1, 2, 4 and 8
TASK_SKILL_POSTERIOR = 0.99  # a prompt leaves the Bayes-optimal predictor this sure of its skill


@dataclass(frozen=True)
class Draws:
    """The random numbers behind sequences of given skills: each first token, the uniforms that pick
    every later token's successor ([n, length - 1]), and the copy skill's blocks (None without one)."""

    skills: np.ndarray  # [n]
    first: np.ndarray  # [n]
    u: np.ndarray  # [n, length - 1] float64
    blocks: np.ndarray | None  # [copy rows, copy_period]


@dataclass(frozen=True)
class SkillMixture:
    """The generative process: skill k ~ Zipf, x_0 ~ Uniform(V), x_{t+1} ~ chain_k(x_t); and, when
    copy_p > 0, a copy skill (index K): a uniform random block of copy_period tokens, repeated.

    succ[k, a] lists the `branching` tokens that may follow a under skill k, prob[k, a] their
    probabilities; skill_p[k] is the chain skill's frequency (they sum to 1 - copy_p).
    """

    skill_p: np.ndarray  # [K]
    succ: np.ndarray  # [K, V, b] int
    prob: np.ndarray  # [K, V, b] float
    copy_p: float = 0.0
    copy_period: int = 0

    @classmethod
    def create(cls, cfg: SyntheticConfig, vocab_size: int, seed: int) -> SkillMixture:
        rng = np.random.default_rng([seed, 0])
        k, v, b = cfg.n_skills, vocab_size, cfg.branching
        skill_p = np.arange(1, k + 1, dtype=np.float64) ** -cfg.zipf_exponent
        skill_p /= skill_p.sum()
        if cfg.copy_frac:  # the chains share what copying leaves (without it: the exact same numbers)
            skill_p *= 1 - cfg.copy_frac
        # b distinct successors per (skill, token): the first b of a random permutation of V
        succ = np.argpartition(rng.random((k, v, v), dtype=np.float32), b - 1, axis=-1)[..., :b]
        prob = rng.dirichlet(np.full(b, cfg.concentration), size=(k, v))
        period = cfg.copy_period if cfg.copy_frac else 0
        return cls(skill_p, succ.astype(np.int64), prob, copy_p=cfg.copy_frac, copy_period=period)

    @property
    def vocab_size(self) -> int:
        return self.succ.shape[1]

    @property
    def n_chains(self) -> int:
        return len(self.skill_p)

    @property
    def frequency(self) -> np.ndarray:
        """Every skill's share of the sequences: the chains, then the copy skill when there is one."""
        return np.append(self.skill_p, self.copy_p) if self.copy_p else self.skill_p

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f"skill {i}" for i in range(self.n_chains)) + (("copy",) if self.copy_p else ())

    @functools.cached_property
    def top(self) -> np.ndarray:
        """[K, V] each chain's most likely successor of each token."""
        return np.take_along_axis(self.succ, self.prob.argmax(-1)[..., None], -1)[..., 0]

    @functools.cached_property
    def _cum(self) -> np.ndarray:
        """Cumulative successor probabilities [K, V, b], once (sampling a chunk reuses them)."""
        return np.cumsum(self.prob, axis=-1)

    def sample(
        self, n: int, length: int, rng: np.random.Generator, skills: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """n sequences of `length` tokens and the skill of each (drawn by frequency unless given)."""
        d = self.draw(n, length, rng, skills)
        return self.walk(d), d.skills

    def sample_skills(self, skills: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
        """One sequence of `length` tokens from each given skill."""
        return self.walk(self.draw(len(skills), length, rng, skills))

    def draw(self, n: int, length: int, rng: np.random.Generator, skills: np.ndarray | None = None) -> Draws:
        """Every random number `sample` needs, in the order the stream has always drawn them (the chain
        walk itself draws none, so it can run on the host, `walk`, or on a device, `walk_on`)."""
        if skills is None:
            p = self.frequency
            skills = rng.choice(len(p), size=n, p=p)
        first = rng.integers(0, self.vocab_size, size=n)
        u = rng.random((n, length - 1))
        copy = int((skills >= self.n_chains).sum())
        blocks = rng.integers(0, self.vocab_size, size=(copy, self.copy_period)) if copy else None
        return Draws(skills, first, u, blocks)

    def walk(self, d: Draws) -> np.ndarray:
        """The sequences of `d`, [n, length] int64, on the host."""
        n, length = len(d.skills), d.u.shape[1] + 1
        chain = np.where(d.skills < self.n_chains, d.skills, 0)  # copy rows are overwritten below
        seq = np.empty((n, length), dtype=np.int64)
        seq[:, 0] = d.first
        for t in range(length - 1):
            c = self._cum[chain, seq[:, t]]  # [n, b]
            j = np.minimum((d.u[:, t, None] > c).sum(-1), c.shape[-1] - 1)
            seq[:, t + 1] = self.succ[chain, seq[:, t], j]
        if d.blocks is not None:
            seq[d.skills >= self.n_chains] = np.tile(d.blocks, -(-length // self.copy_period))[:, :length]
        return seq

    def walk_on(self, draws: list[Draws], device: torch.device) -> torch.Tensor:
        """The sequences of every `draws` stacked, [sum n, length] int64, walked on `device`: the same
        tokens as `walk` (the same float64 comparisons and integer lookups), with one launch per
        operation and token position for all of them, so a GPU's walk costs the host about as much for
        16,384 sequences as for one."""
        import torch

        cum, succ = self._tables(device)
        skills = np.concatenate([d.skills for d in draws])
        u = _on(np.concatenate([d.u for d in draws]).T.copy(), device)  # [length - 1, n]: a row per step
        n, length, b = len(skills), u.shape[0] + 1, succ.shape[-1]
        base = _on(np.where(skills < self.n_chains, skills, 0) * self.vocab_size, device)
        seq = torch.empty((n, length), dtype=torch.int64, device=device)
        seq[:, 0] = _on(np.concatenate([d.first for d in draws]), device)
        for t in range(length - 1):
            row = base + seq[:, t]
            j = (u[t, :, None] > cum[row]).sum(-1).clamp_(max=b - 1)
            seq[:, t + 1] = succ[row].gather(1, j[:, None])[:, 0]
        if any(d.blocks is not None for d in draws):
            blocks = np.concatenate([d.blocks for d in draws if d.blocks is not None])
            seq[_on(skills >= self.n_chains, device)] = _on(
                np.tile(blocks, -(-length // self.copy_period))[:, :length], device
            )
        return seq

    def _tables(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """The cumulative successor probabilities and the successors, [K x V, b], on `device` (once each)."""
        key = str(device)
        if key not in self._on_device:
            b = self.succ.shape[-1]
            self._on_device[key] = tuple(_on(a.reshape(-1, b), device) for a in (self._cum, self.succ))
        return self._on_device[key]

    @functools.cached_property
    def _on_device(self) -> dict:
        return {}

    def _filter(
        self, seq: np.ndarray
    ) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """Forward filtering over the skills each sequence may still be in: for t = 0..L-2, every
        (sequence, skill) pair whose posterior given x_0..x_t is not zero, as (t, row, skill, log_w,
        log_q): rows ascending, log_w the unnormalised log posterior, log_q = log p_skill(x_t -> x_{t+1}).

        A transition a skill's chain cannot make rules the skill out (a wrong skill allows one with
        probability branching / V), so after a few tokens only the true skill and a few others remain:
        about n x K work for the first token and little for the rest, where tracking all K skills per
        token would cost n x K x L (minutes for 65,536 skills). Sequences go in chunks of
        FILTER_PAIRS / K, which bounds the memory. The copy skill (index K) gives each token of its
        first block 1/V, then 1 to the token one period back and 0 to any other."""
        k = len(self.frequency)
        step = max(1, FILTER_PAIRS // k)
        for first in range(0, seq.shape[0], step):
            rows = np.arange(first, min(first + step, seq.shape[0]))
            row, skill = np.repeat(rows, k), np.tile(np.arange(k), len(rows))
            log_w = np.log(self.frequency)[skill]
            for t in range(seq.shape[1] - 1):
                a, nxt = seq[row, t], seq[row, t + 1]
                if self.copy_p:
                    q = self._copy_q(seq, t, row, skill, a, nxt)
                else:
                    q = (self.prob[skill, a] * (self.succ[skill, a] == nxt[:, None])).sum(-1)
                with np.errstate(divide="ignore"):
                    log_q = np.log(q)
                yield t, row, skill, log_w, log_q
                kept = q > 0
                row, skill, log_w = row[kept], skill[kept], log_w[kept] + log_q[kept]

    def _copy_q(self, seq, t, row, skill, a, nxt) -> np.ndarray:
        """p_skill(x_t -> x_{t+1}) of each pair when the mixture has a copy skill (see _filter)."""
        chain = skill < self.n_chains
        q = np.empty(len(row))
        s, a_c = skill[chain], a[chain]
        q[chain] = (self.prob[s, a_c] * (self.succ[s, a_c] == nxt[chain, None])).sum(-1)
        P = self.copy_period
        q[~chain] = 1 / self.vocab_size if t + 1 < P else nxt[~chain] == seq[row[~chain], t + 1 - P]
        return q

    def token_logprobs(self, seq: np.ndarray) -> np.ndarray:
        """log p(x_{t+1} | x_0..x_t) under the true process (the Bayes-optimal predictor), [n, L-1].

        Exact: the posterior over skills is updated by each observed transition.
        """
        out = np.empty((seq.shape[0], seq.shape[1] - 1))
        for t, row, _, log_w, log_q in self._filter(seq):
            starts = _segment_starts(row)
            joint = _segment_logsumexp(log_w + log_q, starts)  # log p(x_0..x_{t+1}) + const
            out[row[starts], t] = joint - _segment_logsumexp(log_w, starts)
        return out

    def posterior(self, seq: np.ndarray) -> np.ndarray:
        """[n, K (+1)] the posterior over skills after the whole sequence."""
        out = np.zeros((seq.shape[0], len(self.frequency)))
        for t, row, skill, log_w, log_q in self._filter(seq):
            if t == seq.shape[1] - 2:
                ok = np.isfinite(log_q)
                row, skill, lw = row[ok], skill[ok], log_w[ok] + log_q[ok]
                starts = _segment_starts(row)
                norm = np.repeat(_segment_logsumexp(lw, starts), np.diff(np.r_[starts, len(row)]))
                out[row, skill] = np.exp(lw - norm)
        return out

    def questions(self, seq: np.ndarray, skills: np.ndarray, min_prob: float = ANSWER_MIN_PROB) -> Questions:
        """One question per position whose answer needs the skill, grouped by the sequence's skill.

        The answer is the true skill's most likely successor of x_t (the copy skill: the token one
        period back). It is asked where the Bayes-optimal predictor (which must infer the skill from
        x_0..x_t) ranks that token first with probability >= min_prob, so an ideal model answers every
        question, and where the answer is not the most likely successor of x_t in the whole mixture, so
        bigram statistics alone answer none: accuracy measures whether a model has learned the skill
        (the most frequent skill, which decides the mixture's bigrams, may get no questions).
        """
        k, v, _ = self.succ.shape
        # the mixture's bigrams: sum_k p_k p_k(a -> b), accumulated over each skill's successors
        cells = (np.arange(v)[None, :, None] * v + self.succ).ravel()
        weights = (self.skill_p[:, None, None] * self.prob).ravel()
        bigram_top = np.bincount(cells, weights, minlength=v * v).reshape(v, v).argmax(-1)  # [V]
        answers = np.full((seq.shape[0], seq.shape[1] - 1), -1, dtype=np.int64)
        asked = np.zeros(answers.shape, dtype=bool)
        copy = skills >= k
        for t, row, skill, log_w, _ in self._filter(seq):
            starts = _segment_starts(row)
            sizes = np.diff(np.r_[starts, len(row)])
            w = np.exp(log_w - np.repeat(_segment_logsumexp(log_w, starts), sizes))  # posterior
            a = seq[row, t]
            seg = np.repeat(np.arange(len(starts)), sizes)
            # the Bayes-optimal next-token distribution of each sequence: sum over skills of w p_skill(a -> .)
            chain = skill < k
            s = np.where(chain, skill, 0)
            cells = (seg[:, None] * v + self.succ[s, a]).ravel()
            mass = (np.where(chain, w, 0)[:, None] * self.prob[s, a]).ravel()
            pred = np.bincount(cells, mass, minlength=len(starts) * v).reshape(len(starts), v)
            rows, state = row[starts], seq[row[starts], t]
            answer = self.top[np.where(copy[rows], 0, skills[rows]), state]
            if self.copy_p:  # the copy skill's share: uniform over its first block, then one period back
                w_copy = np.bincount(seg, np.where(chain, 0, w), minlength=len(starts))
                back = t + 1 - self.copy_period
                if back < 0:
                    pred += w_copy[:, None] / v
                else:
                    pred[np.arange(len(starts)), seq[rows, back]] += w_copy
                answer = np.where(copy[rows], seq[rows, back] if back >= 0 else -1, answer)
            useful = answer != bigram_top[state]
            answers[rows, t] = answer
            asked[rows, t] = (pred.argmax(-1) == answer) & (pred.max(-1) >= min_prob) & useful
        pos = np.flatnonzero(asked)
        group = np.repeat(skills, asked.shape[1])[pos]
        return Questions(
            pos=pos,
            answer=answers.ravel()[pos],
            group=group,
            # an item: the chain state asked about (the copy skill: the token to copy)
            item=np.where(group == k, answers.ravel()[pos], seq[:, :-1].ravel()[pos]),
            names=self.names,
            description=(
                "each skill is asked for its chain's most likely next token (the copy skill: the token "
                "one period back) where the Bayes-optimal predictor, inferring the skill from the "
                f"context, ranks it first with p >= {min_prob} and the mixture's bigram statistics would "
                "predict another token (an item: the current token, i.e. the chain state asked about; "
                "for copying, the token to copy)"
            ),
            frequency=self.frequency,
        )

    def tasks(self, ranks: tuple[int, ...], prompts: int, prompt_len: int, answer_len: int, rng) -> Tasks:
        """Multi-token tasks: for each chain skill of `ranks` (0: the most frequent) and the copy skill,
        `prompts` prompts of prompt_len tokens after which the Bayes-optimal predictor is sure of the
        skill (posterior >= TASK_SKILL_POSTERIOR), each asking for the skill's most likely path of
        answer_len tokens (its chain's top successor at every step; copying: the block's continuation).
        """
        chosen = np.array([r for r in ranks if r < self.n_chains] + ([self.n_chains] if self.copy_p else []))
        length = prompt_len + answer_len
        found = [np.empty((0, length), dtype=np.int64) for _ in chosen]
        for _ in range(20):  # rejection sampling, all skills at once; a rare skill is identified quickly
            short = [g for g in range(len(chosen)) if len(found[g]) < prompts]
            if not short:
                break
            skills = np.repeat(chosen[short], 2 * prompts)
            cand = self.sample_skills(skills, length, rng)
            post = self.posterior(cand[:, :prompt_len])[np.arange(len(skills)), skills]
            sure = post >= TASK_SKILL_POSTERIOR
            for g in short:
                found[g] = np.concatenate([found[g], cand[sure & (skills == chosen[g])]])[:prompts]
        seqs, groups = [], []
        for g, skill in enumerate(chosen):
            if skill < self.n_chains:  # the answer: the chain's greedy path from the prompt's last token
                for t in range(prompt_len, length):
                    found[g][:, t] = self.top[skill, found[g][:, t - 1]]
            seqs.append(found[g])
            groups.append(np.full(len(found[g]), g))
        seq = np.concatenate(seqs)
        frequency = self.frequency[chosen]
        return Tasks(
            x=seq[:, :-1],
            y=seq[:, 1:],
            group=np.concatenate(groups),
            names=tuple(self.names[s] for s in chosen),
            answer_len=answer_len,
            bayes_logp=self.token_logprobs(seq)[:, -answer_len:],
            vocab_size=self.vocab_size,
            description=(
                f"{prompts} prompts per skill, each {prompt_len} tokens of the skill after which the "
                f"Bayes-optimal predictor is sure of it (posterior >= {TASK_SKILL_POSTERIOR}), asking for "
                f"the skill's most likely path of {answer_len} tokens (copying: the block's continuation)"
            ),
            frequency=frequency,
        )


def stratified_val_set(
    mixture: SkillMixture, n: int, length: int, seed: int
) -> tuple[np.ndarray, np.ndarray, ValWeights]:
    """About n validation sequences stratified by skill (`frequency_strata`): each stratum's sequences
    are drawn from its skills by frequency, and weighted so that the strata count by their exact
    frequencies (the copy skill, when there is one, is a skill like the others). Returns (sequences
    [n', length], their skills, their weights)."""
    rng = np.random.default_rng([seed, 1])
    stratum_of, counts = frequency_strata(mixture.frequency, max(MIN_PER_STRATUM, n))
    skills = np.concatenate(
        [
            rng.choice(members, size=c, p=mixture.frequency[members] / mixture.frequency[members].sum())
            for members, c in ((np.flatnonzero(stratum_of == j), c) for j, c in enumerate(counts))
        ]
    )
    seq, _ = mixture.sample(len(skills), length, rng, skills=skills)
    stratum_weight = np.bincount(stratum_of, weights=mixture.frequency)
    return seq, skills, ValWeights.from_strata(stratum_of[skills], stratum_weight)


def _segment_starts(row: np.ndarray) -> np.ndarray:
    """Where each run of equal values of the sorted `row` starts."""
    return np.flatnonzero(np.r_[True, row[1:] != row[:-1]])


def _segment_logsumexp(x: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """log sum exp of each segment of x (segments begin at `starts`); -inf for a segment of -infs
    (a continuation no skill can make: the Bayes probability of an impossible token is 0)."""
    top = np.maximum.reduceat(x, starts)
    top = np.where(np.isfinite(top), top, 0.0)
    sizes = np.diff(np.r_[starts, len(x)])
    with np.errstate(divide="ignore"):
        return top + np.log(np.add.reduceat(np.exp(x - np.repeat(top, sizes)), starts))


@dataclass(eq=False)
class SyntheticSource:
    """A Zipf mixture of sparse Markov-chain skills; each sequence is one skill's chain."""

    cfg: DataConfig
    name: str = "synthetic"
    train_tokens: int | None = None
    info: dict = field(default_factory=dict)
    _groups: dict = field(default_factory=dict, init=False, repr=False)  # device walks (device_batch)

    def __post_init__(self) -> None:
        self.vocab_size = self.cfg.vocab_size
        self.seq_len = self.cfg.seq_len
        self.mixture = SkillMixture.create(self.cfg.synthetic, self.vocab_size, self.cfg.seed)
        self.fingerprint = stable_hash(
            {
                "source": "synthetic",
                "vocab": self.vocab_size,
                "seq_len": self.seq_len,
                "val_tokens": self.cfg.val_tokens,
                "val_layout": "stratified",
                "seed": self.cfg.seed,
                **{k: v for k, v in vars(self.cfg.synthetic).items() if not k.startswith("copy_")},
                **copy_settings(self.cfg.synthetic),
                **quality_settings(self.cfg),
            },
            12,
        )
        seq, skills, self.val_weights = stratified_val_set(
            self.mixture, -(-self.cfg.val_tokens // self.seq_len), self.seq_len + 1, self.cfg.seed
        )
        self._val = (seq[:, :-1], seq[:, 1:])
        self._val_seq, self._val_skills = seq, skills
        bayes, bayes_se = val_loss_with_se(-self.mixture.token_logprobs(seq).mean(1), self.val_weights)
        self.bayes_loss = bayes
        self.info = {
            "bayes_loss": bayes,
            "bayes_loss_se": bayes_se,
            "val_sequences": len(seq),
            "val_tokens": len(seq) * self.seq_len,
            "val_strata": int(self.val_weights.stratum.max()) + 1,
            **quality_settings(self.cfg),
        }
        # max_unique_tokens: the stream is cut to its first n sequences, which then repeat in order
        self._unique_seqs = (
            max(1, self.cfg.max_unique_tokens // self.seq_len) if self.cfg.max_unique_tokens else 0
        )
        if self._unique_seqs:
            self.train_tokens = self._unique_seqs * self.seq_len

    def train_batch(self, step: int, batch_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        index, chunk = self._positions(step, batch_size)
        seq = np.empty((batch_size, self.seq_len + 1), dtype=np.int64)
        for c in np.unique(chunk):  # consecutive positions: one chunk, two at a boundary or wrap
            rows = chunk == c
            seq[rows] = self._chunk(seed, int(c))[index[rows] - c * CHUNK_SEQS]
        if self.cfg.noise_fraction:
            seq = add_noise(seq, self.cfg.noise_fraction, self.vocab_size, self._noise_rng(step, seed))
        return seq[:, :-1], seq[:, 1:]

    def device_batch(
        self, step: int, batch_size: int, seed: int, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`train_batch` made on `device`, the same tokens: each group of DEVICE_CHUNKS chunks is walked
        there at once (`SkillMixture.walk_on`) and kept while the stream is in it (harness.device sends
        a GPU's batches here: numpy's walk, ~4.7 ms per gpu-preset batch on one core, would starve it)."""
        import torch

        index, chunk = self._positions(step, batch_size)
        parts = []
        for c in np.unique(chunk):
            rows = chunk == c
            pos, seqs = index[rows] - c * CHUNK_SEQS, self._device_chunk(seed, int(c), device)
            consecutive = pos[-1] - pos[0] + 1 == len(pos)
            parts.append((rows, seqs[pos[0] : pos[-1] + 1] if consecutive else seqs[_on(pos, device)]))
        if len(parts) == 1:
            seq = parts[0][1]
        else:
            seq = torch.empty((batch_size, self.seq_len + 1), dtype=torch.int64, device=device)
            for rows, part in parts:
                seq[_on(np.flatnonzero(rows), device)] = part
        if self.cfg.noise_fraction:
            hit, ids = noise_draws(
                seq.shape, self.cfg.noise_fraction, self.vocab_size, self._noise_rng(step, seed)
            )
            seq = torch.where(_on(hit, device), _on(ids, device), seq)
        return seq[:, :-1], seq[:, 1:]

    def _positions(self, step: int, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """Batch `step`'s positions in this seed's sequence stream, and the chunk of each."""
        index = step * batch_size + np.arange(batch_size)
        if self._unique_seqs:
            index %= self._unique_seqs
        return index, index // CHUNK_SEQS

    def _noise_rng(self, step: int, seed: int) -> np.random.Generator:
        return np.random.default_rng([self.cfg.seed, 3, seed, step])

    def _device_chunk(self, seed: int, index: int, device: torch.device) -> torch.Tensor:
        """Chunk `index` on `device`, from its group's walk (the last two groups are kept)."""
        group = index // DEVICE_CHUNKS
        key = (seed, group, str(device))
        if key not in self._groups:
            if len(self._groups) >= 2:
                self._groups.pop(next(iter(self._groups)))
            first = group * DEVICE_CHUNKS
            draws = [self._draws(seed, i) for i in range(first, first + DEVICE_CHUNKS)]
            self._groups[key] = self.mixture.walk_on(draws, device)
        start = (index % DEVICE_CHUNKS) * CHUNK_SEQS
        return self._groups[key][start : start + CHUNK_SEQS]

    @functools.lru_cache(maxsize=2)  # noqa: B019 (one source per sweep; bounded)
    def _chunk(self, seed: int, index: int) -> np.ndarray:
        # Sampling is vectorised across sequences, so a chunk of thousands costs about as much as
        # one batch would; sequence i of the stream depends only on (data seed, seed, i).
        return self.mixture.walk(self._draws(seed, index))

    def _draws(self, seed: int, index: int) -> Draws:
        rng = np.random.default_rng([self.cfg.seed, 2, seed, index])
        return self.mixture.draw(CHUNK_SEQS, self.seq_len + 1, rng)

    def val_set(self) -> tuple[np.ndarray, np.ndarray]:
        return self._val

    @functools.cached_property
    def val_questions(self) -> Questions:
        return self.mixture.questions(self._val_seq, self._val_skills)

    @functools.cached_property
    def val_tasks(self) -> Tasks:
        prompt_len = min(TASK_PROMPT_LEN, self.seq_len - TASK_ANSWER_LEN + 1)
        rng = np.random.default_rng([self.cfg.seed, 4])
        return self.mixture.tasks(TASK_RANKS, TASK_PROMPTS, prompt_len, TASK_ANSWER_LEN, rng)


def _on(arr: np.ndarray, device: torch.device) -> torch.Tensor:
    import torch

    return torch.from_numpy(arr).to(device)


def copy_settings(cfg: SyntheticConfig) -> dict:
    """The copy skill's settings when it is on (a mixture without it keeps its fingerprint)."""
    return {"copy_frac": cfg.copy_frac, "copy_period": cfg.copy_period} if cfg.copy_frac else {}
