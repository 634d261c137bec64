"""The losses, as pure tensor functions: clipped policy gradient, k3 KL, truncated importance
sampling, loss aggregation, and the weighted SFT loss.

Shapes: B rows (one env step each), A the longest action in the batch; `mask [B, A]` is True on
real action tokens. Advantages are per token, `[B, A]` (a per-row `[B]` broadcasts), so GRPO's
trajectory advantage, step-level advantages (GiGPO) and GAE all enter the same loss.

Bounds (as verl's `core_algos.py` sets them; DeepSeekMath and TRL have none): the log-ratio is
clamped to [-20, 20] before `exp`, the per-token k3 KL to at most 10, and the optional dual clip
(Ye et al. 2020, "Mastering Complex Control in MOBA Games", eq. 5; verl's `clip_ratio_c`) bounds
the loss of a negative-advantage token at `dual_clip * |A|`. Inside the bounds every function is
the unbounded formula.
"""

from __future__ import annotations

import typing
from typing import Literal

import torch

LossAgg = Literal["seq-mean-token-mean", "token-mean", "seq-mean-token-sum-norm"]
LOSS_AGGS = typing.get_args(LossAgg)
TISMode = Literal["token_truncate", "token_mask", "sequence_truncate", "sequence_mask"]
TIS_MODES = typing.get_args(TISMode)

LOG_RATIO_BOUND = 20.0
"""|log pi/pi_old| and |log ref/pi| are clamped to this before `exp` (verl: `clamp(-20, 20)`)."""
KL_BOUND = 10.0
"""Per-token k3 KL is clamped to at most this (verl's `low_var_kl`: `clamp(max=10)`)."""


def kl_k3(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimate of KL(pi || ref) (Schulman 2020, "Approximating KL divergence";
    DeepSeekMath eq. 4): exp(d) - d - 1 with d = ref - logp, d clamped to +-LOG_RATIO_BOUND and
    the result to at most KL_BOUND. logp, ref_logp: same shape (e.g. [B, A]), natural-log probs."""
    d = torch.clamp(ref_logp - logp, -LOG_RATIO_BOUND, LOG_RATIO_BOUND)
    return torch.clamp(torch.exp(d) - d - 1, max=KL_BOUND)


def clipped_token_loss(logp: torch.Tensor, old_logp: torch.Tensor, adv: torch.Tensor,
                       eps_low: float, eps_high: float, dual_clip: float | None = None,
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO's clipped surrogate per token (Schulman et al. 2017, eq. 7; asymmetric bounds from DAPO,
    Yu et al. 2025): l_t = -min(rho_t A_t, clip(rho_t, 1 - eps_low, 1 + eps_high) A_t) with
    rho_t = exp(logp_t - old_logp_t); with `dual_clip` = c (> 1), l_t = min(l_t, -c A_t) where
    A_t < 0.

    logp, old_logp: [B, A]; adv: [B, A] or [B] (one advantage per row, broadcast).
    Returns (per-token loss [B, A], clipped [B, A]: True where a bound, either, set the loss).
    Raises ValueError if dual_clip <= 1.
    """
    if dual_clip is not None and dual_clip <= 1:
        raise ValueError(f"dual_clip must be > 1, got {dual_clip}")
    a = adv if adv.dim() == logp.dim() else adv[:, None]
    ratio = torch.exp(torch.clamp(logp - old_logp, -LOG_RATIO_BOUND, LOG_RATIO_BOUND))
    unclipped = -ratio * a
    clipped = -torch.clamp(ratio, 1 - eps_low, 1 + eps_high) * a
    loss = torch.max(unclipped, clipped)
    was_clipped = clipped > unclipped
    if dual_clip is not None:
        bound = -dual_clip * a
        dual = (a < 0) & (loss > bound)
        loss = torch.where(dual, bound, loss)
        was_clipped = was_clipped | dual
    return loss, was_clipped


def tis_weights(old_logp: torch.Tensor, sample_logp: torch.Tensor, mask: torch.Tensor,
                mode: TISMode, cap: float) -> torch.Tensor:
    """Truncated importance-sampling weights correcting the generator/trainer mismatch (Yao et
    al. 2025, "Your efficient RL framework secretly brings you off-policy RL training"; TRL's
    `vllm_importance_sampling_mode`, whose four modes these are).

    w = exp(old_logp - sample_logp) per token (`token_*`) or exp of its masked sum per row
    (`sequence_*`); `*_truncate` caps w at `cap`, `*_mask` sets w > cap to 0. The weights
    multiply the per-token policy loss and carry no gradient.
    old_logp, sample_logp: [B, A] (trainer's and generator's logprobs of the sampled tokens);
    mask: [B, A]. Returns [B, A] (`token_*`) or [B, 1] (`sequence_*`).
    Raises ValueError on an unknown mode.
    """
    if mode not in TIS_MODES:
        raise ValueError(f"unknown TIS mode {mode!r}; one of {', '.join(TIS_MODES)}")
    diff = torch.where(mask, old_logp - sample_logp, torch.zeros_like(old_logp)).detach()
    if mode.startswith("sequence"):
        diff = diff.sum(-1, keepdim=True)
    w = torch.exp(torch.clamp(diff, -LOG_RATIO_BOUND, LOG_RATIO_BOUND))
    if mode.endswith("truncate"):
        return torch.clamp(w, max=cap)
    return torch.where(w > cap, torch.zeros_like(w), w)


def span_lengths(mask: torch.Tensor) -> torch.Tensor:
    """mask [B, A] -> [B, A]: for each True entry, the length of the run of Trues it is in (an
    action span of a packed trajectory; a per-step row is one run); 0 elsewhere."""
    m = mask.long()
    starts = m.clone()
    starts[:, 1:] = m[:, 1:] * (1 - m[:, :-1])
    run = torch.cumsum(starts, -1) * m  # 1..R within each row, 0 outside the mask
    counts = torch.zeros(m.shape[0], int(run.max()) + 1 if m.numel() else 1, dtype=torch.long,
                         device=m.device).scatter_add_(1, run, m)
    return counts.gather(1, run) * m


def aggregate(per_token: torch.Tensor, mask: torch.Tensor, agg: LossAgg, n_seqs: int,
              n_tokens: int, max_tokens: int) -> torch.Tensor:
    """Sum-form aggregation of per_token [B, A] (mask [B, A]) over one micro-batch:
    "seq-mean-token-mean" (GRPO, Shao et al. 2024: mean over each action's tokens, then over
    actions), "token-mean" (DAPO: mean over all tokens), "seq-mean-token-sum-norm" (Dr.GRPO,
    Liu et al. 2025: token sum / (n_seqs * max_tokens)).

    A "sequence" is one action: a row's run of masked tokens (`span_lengths`), so a packed
    trajectory of k actions aggregates as its k per-step rows would. The normalisers (`n_seqs`
    actions, `n_tokens` of the whole minibatch) come from the caller, so the micro-batch losses
    of a minibatch add up to the full-minibatch loss (exact accumulation).
    Raises ValueError on an unknown `agg`.
    """
    m = mask.to(per_token.dtype)
    if agg == "seq-mean-token-mean":
        spans = span_lengths(mask).to(per_token.dtype).clamp(min=1)
        return (per_token * m / spans).sum() / n_seqs
    if agg == "token-mean":
        return (per_token * m).sum() / max(n_tokens, 1)
    if agg == "seq-mean-token-sum-norm":
        return (per_token * m).sum() / (n_seqs * max_tokens)
    raise ValueError(f"unknown loss_agg {agg!r}")


def sft_loss(logprobs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """logprobs, weights [N] of target tokens -> weighted token-mean NLL
    -(w * lp).sum() / w.sum(); 0 when w.sum() == 0 (tokens of weight 0 never contribute, even
    with logprob -inf)."""
    total = weights.sum()
    weighted = torch.where(weights != 0, weights * logprobs, torch.zeros_like(logprobs))
    return -weighted.sum() / torch.where(total == 0, torch.ones_like(total), total)
