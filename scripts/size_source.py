"""Size the synthetic source to a sweep: how many skills (n_skills) and how skewed (zipf_exponent).

    .venv/bin/python scripts/size_source.py measure out=runs/source_pilot.json   # ~3 min on 1 core
    .venv/bin/python scripts/size_source.py choose pilot=runs/source_pilot.json sweep=cpu

measure  trains a few llamas (1 thread; `runs=width:tokens:batch,...`) on the synthetic source with a
         flat skew (Zipf 1.2 over 512 skills, so skills are seen from a handful to thousands of times)
         and writes, per run, each of the 256 most frequent skills' gap: the model's loss on that
         skill's sequences minus the Bayes-optimal loss on them (6 sequences per skill).
choose   fits the gap of a skill as a function of the tokens of it a run saw, pooled over the runs,
             g(s) = g_max / (1 + (s / s_half)^gamma),
         and models a run's loss on a source of K skills with exponent a as E + sum_k p_k g(p_k D).
         It reads the preset's frontier tokens D at its lowest and highest budget (at each budget the
         run nearest sweep.replicate_tokens_per_param, the prior optimum) and applies the rule:
           K(a): the fewest skills (a power of two) for which the skills an unbounded Zipf source
              would have beyond them, all unlearned, would add at most 0.01 nats:
              g_max * sum_{k > K} k^-a / zeta(a) <= 0.01. A finite source lowers the apparent floor
              of a power law by that much (for n learned of K skills the loss is E + c (n^(1-a) -
              K^(1-a))); and as K stays far above the skills a run learns, the loss never runs out
              of skills;
           a: on a grid of 0.1, among exponents whose K(a) is at most 2^17 (the generator holds
              K x alphabet^2 numbers), those whose modelled reducible loss at the top budget (with
              K(a) skills) is 0.4 - 0.6 of the floor, of them the one with the fewest skills, ties to
              the nearest 0.5; with none in the band, the nearest to it. That is the model's guess.
Prints key=value lines, with every feasible exponent's K(a) and modelled ratio: the candidates.
The model ignores model size (capacity), and on the cpu preset its guess (1.8, 1,024 skills) failed
the check that decides: the preset's own sweep, whose fitted frontier E must have a 95% interval that
contains the Bayes loss and excludes 0. The preset takes the flattest candidate on the K(a) curve
whose sweep passes, stepping steeper from the guess (docs/default_sweep.md: 2.4, 64 skills).
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy.optimize import curve_fit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from harness.config import DataConfig, SyntheticConfig  # noqa: E402

TOP_SKILLS, PER_SKILL = 256, 6
PILOT_RUNS = "32:262144:8,32:1048576:16,64:262144:8,64:1048576:16,64:4194304:16,128:1048576:16"
TARGET_BAND = (0.4, 0.6)  # (L - E) / E at the top budget
FLOOR_TOLERANCE = 0.01  # nats the skills left out beyond K may add (and lower the apparent floor by)
MAX_SKILLS = 1 << 17


def measure(out: Path, runs: str, depth: int = 2, head_dim: int = 8, lr: float = 3e-3) -> None:
    """Train the pilot runs and write each one's per-skill gaps (see the module docstring)."""
    import torch
    import torch.nn.functional as F

    from harness.config import ModelConfig, TrainConfig
    from harness.data.synthetic import SyntheticSource
    from harness.models import param_counts, shape_for_width
    from harness.models.build import build_model
    from harness.schedule import lr_at, warmup_steps

    torch.set_num_threads(1)
    cfg = DataConfig(source="synthetic", vocab_size=32, seq_len=64, val_tokens=64 * 64)
    cfg.synthetic = SyntheticConfig(n_skills=512, zipf_exponent=1.2)
    source = SyntheticSource(cfg)
    mixture, t = source.mixture, TrainConfig()
    skills = np.repeat(np.arange(TOP_SKILLS), PER_SKILL)
    seq, _ = mixture.sample(len(skills), cfg.seq_len + 1, np.random.default_rng([99]), skills=skills)
    bayes = -mixture.token_logprobs(seq).mean(1)
    x_val, y_val = torch.from_numpy(seq[:, :-1]), torch.from_numpy(seq[:, 1:])
    results = []
    for width, tokens, batch in (tuple(map(int, r.split(":"))) for r in runs.split(",")):
        model_cfg = ModelConfig(depth=depth, head_dim=head_dim)
        shape = shape_for_width(width, model_cfg, cfg.vocab_size, cfg.seq_len)
        steps, params = tokens // (batch * cfg.seq_len), param_counts(shape).total
        model = build_model(shape, seed=0)
        matrices = [q for q in model.parameters() if q.dim() >= 2]  # decayed, as harness.train does
        others = [q for q in model.parameters() if q.dim() < 2]
        groups = [{"params": matrices, "weight_decay": t.weight_decay}, {"params": others, "weight_decay": 0}]
        opt = torch.optim.AdamW(groups, lr=lr, betas=(t.beta1, t.beta2))
        warmup = warmup_steps(params, steps, batch * cfg.seq_len, t)
        for step in range(steps):
            for group in opt.param_groups:
                group["lr"] = lr_at(step, steps=steps, warmup=warmup, peak=lr, cfg=t)
            x, y = (torch.from_numpy(a) for a in source.train_batch(step, batch, 0))
            F.cross_entropy(model(input_ids=x).logits.flatten(0, 1), y.flatten()).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
            opt.step()
            opt.zero_grad(set_to_none=True)
        with torch.no_grad():
            logp = model(input_ids=x_val).logits.log_softmax(-1)
            loss = -logp.gather(-1, y_val[..., None])[..., 0].mean(1).numpy()
        gap = (loss - bayes).reshape(TOP_SKILLS, PER_SKILL).mean(1)
        results.append({"width": width, "params": params, "tokens": tokens, "batch": batch})
        results[-1]["gap"] = gap.tolist()
        print(f"width={width} params={params} tokens={tokens} batch={batch} top_gap={gap[0]:.3f}", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"skill_p": mixture.skill_p[:TOP_SKILLS].tolist(), "runs": results}))


def gap_curve(s: np.ndarray, g_max: float, s_half: float, gamma: float) -> np.ndarray:
    """A skill's loss above the floor after a run saw s tokens of it."""
    return g_max / (1 + (s / s_half) ** gamma)


def fit_gap(pilot: dict) -> tuple[float, float, float]:
    """(g_max, s_half, gamma) fitted to every pilot run's per-skill gaps against the skill's tokens."""
    p = np.array(pilot["skill_p"])
    s = np.concatenate([p * r["tokens"] for r in pilot["runs"]])
    g = np.concatenate([r["gap"] for r in pilot["runs"]])
    params, _ = curve_fit(lambda lg, *q: gap_curve(np.exp(lg), *q), np.log(s), g, p0=[2.9, 5e3, 1.5])
    return tuple(float(v) for v in params)


def reducible(tokens: float, a: float, k: int, gap: tuple[float, float, float]) -> float:
    """Modelled loss above the floor of a run of `tokens` on K skills with Zipf exponent a."""
    p = np.arange(1, k + 1, dtype=np.float64) ** -a
    p /= p.sum()
    return float(p @ gap_curve(p * tokens, *gap))


def skills_for(a: float, g_max: float) -> int | None:
    """K(a): the fewest skills (a power of two, at most MAX_SKILLS) whose unbounded tail adds at most
    FLOOR_TOLERANCE nats when unlearned; None when more are needed."""
    from scipy.special import zeta

    for n in range(4, MAX_SKILLS.bit_length()):
        if g_max * zeta(a, (1 << n) + 1) / zeta(a) <= FLOOR_TOLERANCE:
            return 1 << n
    return None


def choose(pilot_path: Path, overrides: list[str]) -> None:
    """Apply the rule (module docstring) to a preset's frontier tokens and print the choice."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from harness.config import register_configs
    from harness.data import make_source
    from harness.plan import plan_runs

    register_configs()
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = OmegaConf.to_object(compose(config_name="config", overrides=overrides))
    gap = fit_gap(json.loads(pilot_path.read_text()))
    source = make_source(replace(cfg.data, val_tokens=cfg.data.seq_len * 64))
    runs = plan_runs(cfg, vocab_size=source.vocab_size, data_fingerprint="", precision="fp32")
    prior = cfg.sweep.replicate_tokens_per_param
    budgets = np.array(sorted({r.budget for r in runs}))

    def off(r) -> float:  # distance in log from the prior optimum's tokens per parameter
        return abs(np.log(r.tokens / r.params.total / prior))

    nearest = [min((r for r in runs if r.budget == b), key=off) for b in budgets]
    d_lo, d_hi = nearest[0].tokens, nearest[-1].tokens
    floor = source.bayes_loss
    feasible = {a: k for a in np.round(np.arange(1.1, 3.01, 0.1), 1) if (k := skills_for(a, gap[0]))}
    ratio = {a: reducible(d_hi, a, k, gap) / floor for a, k in feasible.items()}
    lo, hi = TARGET_BAND
    in_band = [a for a in feasible if lo <= ratio[a] <= hi]
    if in_band:
        a = float(min(in_band, key=lambda x: (feasible[x], abs(ratio[x] - (lo + hi) / 2))))
    else:
        a = float(min(feasible, key=lambda x: min(abs(ratio[x] - lo), abs(ratio[x] - hi))))
    k = feasible[a]
    print(f"gap_fit g_max={gap[0]:.3f} s_half_tokens={gap[1]:.4g} gamma={gap[2]:.3f}")
    print(f"frontier_tokens lo={d_lo} hi={d_hi} budgets={len(budgets)} floor={floor:.4f}")
    print(
        f"model_guess zipf_exponent={a} n_skills={k} reducible_top={reducible(d_hi, a, k, gap):.4f} "
        f"reducible_bottom={reducible(d_lo, a, k, gap):.4f} smallest_feasible_exponent={min(feasible)} "
        "candidates: "
        + " ".join(f"ratio[{x}]={ratio[x]:.3f}/K={feasible[x]}" for x in sorted(feasible) if ratio[x] > 0.05)
    )


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in ("measure", "choose"):
        sys.exit("usage: size_source.py measure out=PATH [runs=w:tokens:batch,...] | choose pilot=PATH [...]")
    own = ("out", "runs", "pilot")
    args = dict(a.split("=", 1) for a in argv[1:] if "=" in a and a.split("=", 1)[0] in own)
    if argv[0] == "measure":
        measure(Path(args["out"]), args.get("runs", PILOT_RUNS))
    else:
        overrides = [a for a in argv[1:] if a.split("=", 1)[0] not in ("pilot",)]
        choose(Path(args["pilot"]), overrides)


if __name__ == "__main__":
    main(sys.argv[1:])
