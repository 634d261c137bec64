"""The losses, as pure tensor functions: clipped policy gradient, PPO's clipped value loss, k3
KL, truncated importance sampling, loss aggregation, the weighted SFT loss, and the preference
losses (DPO, IPO, SimPO; per-sequence log-probs in, see their section).

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


def clipped_value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor,
                       clip: float | None) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO's clipped value loss per token (the OpenAI baselines PPO2 form; TRL, DeepSpeed-Chat
    and verl use it): 0.5 max((V - R)^2, (V_clip - R)^2) with V_clip = old_V + clip(V - old_V,
    -clip, +clip); `clip` None = 0.5 (V - R)^2 unclipped.

    values, old_values, returns: [B, A] (the critic now, the critic at rollout time, the GAE
    returns). Returns (per-token loss [B, A], clipped [B, A]: True where the clipped term was
    the larger, i.e. set the loss). Raises ValueError if clip <= 0.
    """
    unclipped = (values - returns) ** 2
    if clip is None:
        return 0.5 * unclipped, torch.zeros_like(unclipped, dtype=torch.bool)
    if clip <= 0:
        raise ValueError(f"value clip must be > 0 or None, got {clip}")
    v_clip = old_values + torch.clamp(values - old_values, -clip, clip)
    clipped = (v_clip - returns) ** 2
    return 0.5 * torch.max(unclipped, clipped), clipped > unclipped


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


# --- preference losses (DPO, IPO, SimPO) --------------------------------------------------
#
# Shapes: B preference pairs; `*_logps [B]` are a continuation's log-probability SUMMED over its
# tokens (nats), `*_tokens [B]` its number of tokens (counts below 1 are taken as 1, as TRL
# does). Each function returns (loss: the mean over the B pairs, a 0-d tensor; chosen rewards
# [B]; rejected rewards [B]): the implicit rewards, detached, for metrics only.

PrefLoss = Literal["sigmoid", "ipo", "simpo"]
PREF_LOSSES = typing.get_args(PrefLoss)


def _smoothed_sigmoid_loss(z: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    """-(1 - eps) log sigma(z) - eps log sigma(-z): the logistic loss of a preference whose
    label is flipped with probability eps (cDPO). Raises ValueError unless 0 <= eps < 0.5."""
    if not 0 <= label_smoothing < 0.5:
        raise ValueError(f"label_smoothing must be in [0, 0.5), got {label_smoothing}")
    loss = -torch.nn.functional.logsigmoid(z)
    if label_smoothing:
        loss = (1 - label_smoothing) * loss - label_smoothing * torch.nn.functional.logsigmoid(-z)
    return loss


def dpo_loss(chosen_logps: torch.Tensor, rejected_logps: torch.Tensor,
             ref_chosen_logps: torch.Tensor, ref_rejected_logps: torch.Tensor, beta: float,
             label_smoothing: float = 0.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """DPO's sigmoid loss (Rafailov et al. 2023, arXiv 2305.18290, eq. 7):
    L = -log sigma(beta (log pi(y_w|x)/ref(y_w|x) - log pi(y_l|x)/ref(y_l|x))), mean over pairs.

    With `label_smoothing` eps > 0, conservative DPO (cDPO; Mitchell 2023, "A note on DPO with
    noisy preferences and relationship to IPO"): (1 - eps) L(z) + eps L(-z), i.e. the label is
    taken as flipped with probability eps; needs 0 <= eps < 0.5 (ValueError otherwise).
    Agrees with TRL 1.16 `DPOTrainer._compute_loss` (loss_type "sigmoid", which has no label
    smoothing) and, with smoothing, with TRL's `CPOTrainer.cpo_loss` (loss_type "sigmoid") applied
    to the log-ratios; TRL < 1.0's DPOTrainer had the same smoothed form.
    All inputs [B], summed log-probs in nats. Rewards: beta (logp - ref_logp) per continuation,
    as TRL logs them.
    """
    chosen_ratio, rejected_ratio = chosen_logps - ref_chosen_logps, rejected_logps - ref_rejected_logps
    loss = _smoothed_sigmoid_loss(beta * (chosen_ratio - rejected_ratio), label_smoothing)
    return loss.mean(), beta * chosen_ratio.detach(), beta * rejected_ratio.detach()


def ipo_loss(chosen_logps: torch.Tensor, rejected_logps: torch.Tensor,
             ref_chosen_logps: torch.Tensor, ref_rejected_logps: torch.Tensor,
             chosen_tokens: torch.Tensor, rejected_tokens: torch.Tensor,
             beta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """IPO (Azar et al. 2023, arXiv 2310.12036, eq. 17; beta is the paper's tau):
    L = (h - 1 / (2 beta))^2, mean over pairs, with h the difference of the chosen and rejected
    log-ratios log pi / ref, each DIVIDED BY ITS CONTINUATION'S TOKEN COUNT.

    The per-token averaging is not in the paper's formula; TRL 1.16 `DPOTrainer._compute_loss`
    (loss_type "ipo") does it (its comment: confirmed with the IPO authors, and the paper's
    results use it) so that beta does not depend on the completion length; we match TRL.
    `*_logps` [B] summed log-probs (nats), `*_tokens` [B] token counts (clamped to >= 1).
    Rewards: beta (logp - ref_logp) of the summed log-probs, as TRL logs them for every loss.
    """
    chosen_ratio, rejected_ratio = chosen_logps - ref_chosen_logps, rejected_logps - ref_rejected_logps
    h = (chosen_ratio / chosen_tokens.clamp(min=1).to(chosen_ratio.dtype)
         - rejected_ratio / rejected_tokens.clamp(min=1).to(rejected_ratio.dtype))
    loss = (h - 1 / (2 * beta)) ** 2
    return loss.mean(), beta * chosen_ratio.detach(), beta * rejected_ratio.detach()


def simpo_loss(chosen_logps: torch.Tensor, rejected_logps: torch.Tensor,
               chosen_tokens: torch.Tensor, rejected_tokens: torch.Tensor, beta: float,
               gamma: float, label_smoothing: float = 0.0,
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """SimPO (Meng et al. 2024, arXiv 2405.14734, eq. 6), no reference model:
    L = -log sigma(beta / |y_w| log pi(y_w|x) - beta / |y_l| log pi(y_l|x) - gamma), mean over
    pairs; `gamma` is the target reward margin exactly as in the formula (nats, after beta).

    Conventions elsewhere: TRL's `CPOTrainer` (loss_type "simpo", with cpo_alpha=0) and
    LLaMA-Factory take `simpo_gamma` = gamma too (they subtract simpo_gamma / beta inside before
    multiplying by beta, the same value); the SimPO authors' current trainer takes
    `gamma_beta_ratio` = gamma / beta instead. Optional `label_smoothing` as in `dpo_loss` (TRL's
    CPOTrainer applies it to SimPO the same way). Agrees with TRL 1.16 `CPOTrainer.cpo_loss`.
    `*_logps` [B] summed log-probs (nats), `*_tokens` [B] token counts (clamped to >= 1).
    Rewards: beta * the length-normalised log-prob (the paper's implicit reward; TRL's CPO logs
    the same).
    """
    chosen = beta * chosen_logps / chosen_tokens.clamp(min=1).to(chosen_logps.dtype)
    rejected = beta * rejected_logps / rejected_tokens.clamp(min=1).to(rejected_logps.dtype)
    loss = _smoothed_sigmoid_loss(chosen - rejected - gamma, label_smoothing)
    return loss.mean(), chosen.detach(), rejected.detach()
