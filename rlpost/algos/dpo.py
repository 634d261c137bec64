"""Preference optimisation on chosen/rejected pairs: DPO (sigmoid), IPO and SimPO, full or LoRA.

Math (pure functions in `losses.py`, with shapes and sources): each pair (x, y_w, y_l) gives the
summed log-probability of each continuation given the prompt under the policy (and, for DPO and
IPO, under the reference: the policy's weights when `train_dpo` starts) and the token counts;
- sigmoid (DPO, eq. 7): -log sigma(beta (log pi/ref (y_w) - log pi/ref (y_l))), optionally
  label-smoothed (cDPO);
- ipo (eq. 17): (h - 1/(2 beta))^2, h the difference of the per-token-averaged log-ratios (TRL);
- simpo (eq. 6): -log sigma(beta/|y_w| log pi(y_w) - beta/|y_l| log pi(y_l) - gamma).
The loss of an optimizer step is the mean over its `batch_size` pairs; micro-batches scale their
mean by their share of the batch, so gradient accumulation is exact.

The reference log-probs are computed once, before the first update, with the policy's current
weights (no model copy), and cached; SimPO needs none. Fragment-level pairs (iTool: two
continuations of one prompt that share a prefix and then differ) are built by `fragment_pair`,
which moves the shared prefix into the prompt, so the loss is over the differing tokens only.
"""

from __future__ import annotations

import math
import random
import time
import typing
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch

from rlpost import learn
from rlpost.algos.losses import PREF_LOSSES, PrefLoss, dpo_loss, ipo_loss, simpo_loss
from rlpost.errors import RlpostError
from rlpost.learn import Schedule
from rlpost.policy import LoRAConfig, Policy, rows_logprobs
from rlpost.seeds import derive_seed
from rlpost.track import Progress, Tracker
from rlpost.types import PreferencePair

SCHEDULES = typing.get_args(Schedule)
DEFAULT_BETA: dict[str, float] = {"sigmoid": 0.1, "ipo": 0.1, "simpo": 2.5}
"""beta when `DPOConfig.beta` is None: TRL's DPOConfig default (0.1) for sigmoid and IPO (for
IPO it is the paper's tau); iTool's SimPO script (2.5, in the SimPO paper's range 2-10)."""


# --- pairs and their log-probs -----------------------------------------------------------


def fragment_pair(prompt_ids: Sequence[int], chosen_ids: Sequence[int],
                  rejected_ids: Sequence[int], chosen_score: float = 0.0,
                  rejected_score: float = 0.0, info: dict[str, Any] | None = None,
                  ) -> PreferencePair:
    """A fragment-level pair (iTool): the longest common token prefix of `chosen_ids` and
    `rejected_ids` is appended to the prompt and removed from both, so that the loss (and, for
    SimPO and IPO, the length normalisation) covers only the tokens where they differ. The shared
    prefix is at most min(len) - 1 tokens long, so each continuation keeps at least one token
    (when one continuation is a prefix of the other, the shorter keeps its last token).
    `info["fragment_prefix"]` records the number of tokens moved.
    Raises ValueError when the prompt or a continuation is empty, or the continuations are
    identical (there is no preference to learn)."""
    prompt, chosen, rejected = list(prompt_ids), list(chosen_ids), list(rejected_ids)
    if not prompt or not chosen or not rejected:
        raise ValueError("fragment_pair: the prompt, chosen and rejected ids must be non-empty")
    if chosen == rejected:
        raise ValueError("fragment_pair: chosen and rejected are identical token sequences; "
                         "a preference pair needs continuations that differ")
    k = 0
    limit = min(len(chosen), len(rejected)) - 1
    while k < limit and chosen[k] == rejected[k]:
        k += 1
    return PreferencePair(prompt + chosen[:k], chosen[k:], rejected[k:], chosen_score,
                          rejected_score, {**(info or {}), "fragment_prefix": k})


@dataclass
class PairLogps:
    """Per-pair sequence log-probs of a batch of B pairs."""

    chosen: torch.Tensor
    """[B] log pi(y_w | x) summed over the chosen continuation's tokens (nats)."""
    rejected: torch.Tensor
    """[B] the same for the rejected continuation."""
    chosen_tokens: torch.Tensor
    """[B] number of chosen tokens (long)."""
    rejected_tokens: torch.Tensor
    """[B] number of rejected tokens (long)."""


def pair_logprobs(model: torch.nn.Module, pairs: Sequence[PreferencePair], pad_id: int,
                  device: torch.device | str = "cpu") -> PairLogps:
    """Summed log-probs and token counts of each pair's chosen and rejected continuation given
    its prompt, in ONE forward of 2B rows (`rlpost.policy.rows_logprobs`: logits only at the
    continuation positions; a single pair's two rows share its prompt, which is computed once).
    Gradients flow when the caller has them enabled; autocast is the caller's."""
    rows = [(p.prompt_ids, p.chosen_ids) for p in pairs] + [(p.prompt_ids, p.rejected_ids)
                                                            for p in pairs]
    lp, mask = rows_logprobs(model, rows, pad_id, device)
    summed, counts = lp.sum(-1), mask.sum(-1)  # lp is 0 outside the mask
    B = len(pairs)
    return PairLogps(summed[:B], summed[B:], counts[:B], counts[B:])


# --- config ------------------------------------------------------------------------------


@dataclass
class DPOConfig:
    """Preference-optimisation hyper-parameters."""

    loss: PrefLoss = "simpo"
    """sigmoid (DPO), ipo, or simpo (no reference model)."""
    beta: float | None = None
    """Inverse temperature of the implicit reward (IPO: the paper's tau); None = the loss's
    default (`DEFAULT_BETA`: 0.1 for sigmoid and ipo, 2.5 for simpo)."""
    gamma: float = 0.5
    """SimPO's target reward margin, as in the loss -log sigma(... - gamma) (TRL's and
    LLaMA-Factory's `simpo_gamma`; iTool: 0.5)."""
    label_smoothing: float = 0.0
    """Probability that a preference label is flipped (cDPO), in [0, 0.5); sigmoid and simpo."""
    lr: float = 1e-6
    """AdamW learning rate (after warm-up); TRL's DPO default."""
    epochs: int = 1
    """Passes over the pairs."""
    batch_size: int = 8
    """Pairs per optimizer step."""
    micro_batch_pairs: int = 4
    """Pairs per forward/backward (gradient accumulation inside a batch); 1 computes each prompt
    once for both continuations."""
    max_grad_norm: float = 1.0
    """Gradient clipping (global L2 norm); 0 = no clipping."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    warmup_steps: int = 0
    """Linear LR warm-up steps."""
    schedule: Schedule = "constant"
    """LR after warm-up: constant, or cosine decay towards 0 at the last step."""
    lora: bool = False
    """Train LoRA adapters instead of all weights; merged into the model at the end."""
    lora_r: int = 16
    """LoRA rank."""
    lora_alpha: int = 32
    """LoRA scaling numerator (scale = alpha / r)."""
    lora_dropout: float = 0.0
    """Dropout on the LoRA input."""
    lora_targets: tuple[str, ...] = LoRAConfig.targets
    """Names of the linear modules that get adapters."""
    seed: int = 0
    """Seeds the per-epoch shuffle (`derive_seed(seed, "dpo", epoch)`) and the LoRA init."""

    def resolved_beta(self) -> float:
        """`beta`, or the loss's default when it is None."""
        return DEFAULT_BETA[self.loss] if self.beta is None else self.beta

    def lora_config(self) -> LoRAConfig:
        """The adapters `Policy.lora` trains when `lora` is set."""
        return LoRAConfig(self.lora_r, self.lora_alpha, self.lora_dropout,
                          tuple(self.lora_targets), self.seed)

    def validate(self) -> None:
        """Raise RlpostError on settings no run can use."""
        if self.loss not in PREF_LOSSES:
            raise RlpostError(f"dpo: loss must be one of {', '.join(PREF_LOSSES)} (sigmoid is "
                              f"DPO's loss), got {self.loss!r}")
        beta = self.resolved_beta()
        checks = [(0 < beta < math.inf, "beta must be finite and > 0 (or None: the loss's default)"),
                  (0 <= self.gamma < math.inf, "gamma must be finite and >= 0"),
                  (0 <= self.label_smoothing < 0.5, "label_smoothing must be in [0, 0.5)"),
                  (self.loss != "ipo" or self.label_smoothing == 0,
                   "label_smoothing applies to the sigmoid and simpo losses, not ipo"),
                  (0 < self.lr < math.inf, "lr must be finite and > 0"),
                  (self.epochs >= 1, "epochs must be >= 1"),
                  (self.batch_size >= 1, "batch_size must be >= 1"),
                  (self.micro_batch_pairs >= 1, "micro_batch_pairs must be >= 1"),
                  (self.max_grad_norm >= 0, "max_grad_norm must be >= 0 (0 = no clipping)"),
                  (0 <= self.weight_decay < math.inf, "weight_decay must be finite and >= 0"),
                  (self.warmup_steps >= 0, "warmup_steps must be >= 0"),
                  (self.schedule in SCHEDULES, f"schedule must be one of {', '.join(SCHEDULES)}"),
                  (self.lora_r >= 1, "lora_r must be >= 1"),
                  (0 < self.lora_alpha < math.inf, "lora_alpha must be finite and > 0"),
                  (0 <= self.lora_dropout < 1, "lora_dropout must be in [0, 1)"),
                  (len(self.lora_targets) > 0, "lora_targets must name at least one module")]
        for ok, message in checks:
            if not ok:
                raise RlpostError(f"dpo: {message}")


@dataclass
class DPOResult:
    steps: int
    """Optimizer steps taken (skipped ones included)."""
    losses: list[float] = field(default_factory=list)
    """Loss of each optimizer step."""
    margins: list[float] = field(default_factory=list)
    """Mean implicit-reward margin (chosen - rejected) of each step's pairs, before its update."""
    accuracies: list[float] = field(default_factory=list)
    """Share of each step's pairs whose chosen reward exceeds the rejected one."""
    skipped: int = 0
    """Steps whose loss or gradient norm was not finite (no update)."""
    seconds: float = 0.0
    """Wall time of `train_dpo`."""


# --- the loop ----------------------------------------------------------------------------


def _check_pairs(pairs: Sequence[PreferencePair]) -> None:
    for i, p in enumerate(pairs):
        if not p.prompt_ids or not p.chosen_ids or not p.rejected_ids:
            raise RlpostError(f"dpo: pair {i} has an empty prompt, chosen or rejected sequence")
        if list(p.chosen_ids) == list(p.rejected_ids):
            raise RlpostError(f"dpo: pair {i} has identical chosen and rejected continuations")


def _chunks(items: Sequence[int], size: int) -> list[list[int]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def reference_logprobs(policy: Policy, pairs: Sequence[PreferencePair],
                       micro_batch_pairs: int) -> PairLogps:
    """`pair_logprobs` of every pair under the policy's current weights, without gradients, in
    eval mode and the policy's autocast: the reference of the DPO and IPO losses."""
    policy.model.eval()
    parts = []
    with torch.no_grad(), policy.autocast_ctx():
        for idx in _chunks(range(len(pairs)), micro_batch_pairs):
            parts.append(pair_logprobs(policy.model, [pairs[i] for i in idx],
                                       policy.tokenizer.pad_token_id, policy.device))
    return PairLogps(*(torch.cat([getattr(p, f) for p in parts]).detach()
                       for f in ("chosen", "rejected", "chosen_tokens", "rejected_tokens")))


def _loss(cfg: DPOConfig, lp: PairLogps, ref: PairLogps | None, idx: list[int],
          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The configured loss of a micro-batch (mean over its pairs) and its implicit rewards."""
    beta = cfg.resolved_beta()
    if cfg.loss == "simpo":
        return simpo_loss(lp.chosen, lp.rejected, lp.chosen_tokens, lp.rejected_tokens, beta,
                          cfg.gamma, cfg.label_smoothing)
    assert ref is not None
    i = torch.tensor(idx, dtype=torch.long)
    ref_c, ref_r = ref.chosen[i].to(lp.chosen.device), ref.rejected[i].to(lp.chosen.device)
    if cfg.loss == "ipo":
        return ipo_loss(lp.chosen, lp.rejected, ref_c, ref_r, lp.chosen_tokens,
                        lp.rejected_tokens, beta)
    return dpo_loss(lp.chosen, lp.rejected, ref_c, ref_r, beta, cfg.label_smoothing)


def train_dpo(policy: Policy, pairs: Sequence[PreferencePair], cfg: DPOConfig,
              tracker: Tracker | None = None, step_offset: int = 0,
              progress: bool = True) -> DPOResult:
    """Train `policy` in place on preference `pairs` with `cfg.loss`. The reference log-probs
    (sigmoid, ipo) are computed once, before the first update, from the current weights.
    Logs, at step `step_offset + k` for the k-th optimizer step (k from 1), TRL's metric names
    under the `dpo/` prefix (as `train_sft` logs under `sft/`): dpo/loss, dpo/rewards/chosen,
    dpo/rewards/rejected, dpo/rewards/margins, dpo/rewards/accuracies (the means over the step's
    pairs of the loss's implicit rewards, before the update), dpo/logps/chosen, dpo/logps/rejected
    (mean summed log-probs, as TRL's DPOTrainer; its CPOTrainer logs SimPO's per-token means
    there), dpo/grad_norm (before clipping), dpo/lr and dpo/skipped_steps (count so far: a step
    whose loss or gradient norm is not finite makes no update). With cfg.lora the adapters are
    merged at the end. No pairs: nothing is trained. The model is left in eval mode.
    Raises RlpostError on a bad config, or a pair with an empty prompt or continuation or with
    identical continuations."""
    cfg.validate()
    _check_pairs(pairs)
    t0 = time.perf_counter()
    if not pairs:
        policy.model.eval()
        return DPOResult(0)
    try:
        ref = None if cfg.loss == "simpo" else reference_logprobs(policy, pairs,
                                                                  cfg.micro_batch_pairs)
        with policy.lora(cfg.lora_config()) if cfg.lora else nullcontext():
            result = _epochs(policy, pairs, ref, cfg, tracker, step_offset, progress)
    finally:
        policy.model.eval()
    result.seconds = time.perf_counter() - t0
    return result


def _epochs(policy: Policy, pairs: Sequence[PreferencePair], ref: PairLogps | None,
            cfg: DPOConfig, tracker: Tracker | None, step_offset: int,
            progress: bool) -> DPOResult:
    """The optimizer steps over `cfg.epochs` shuffled passes."""
    per_epoch = -(-len(pairs) // cfg.batch_size)
    total_steps = per_epoch * cfg.epochs
    params = policy.trainable_parameters()
    opt, sched = learn.make_optimizer(params, cfg.lr, cfg.weight_decay, cfg.warmup_steps,
                                      cfg.schedule, total_steps)
    clip = cfg.max_grad_norm if cfg.max_grad_norm > 0 else math.inf
    bar = Progress(total_steps, desc="dpo") if progress else None
    out = DPOResult(0)
    policy.model.train()
    try:
        for epoch in range(cfg.epochs):
            order = list(range(len(pairs)))
            random.Random(derive_seed(cfg.seed, "dpo", epoch)).shuffle(order)
            for batch in _chunks(order, cfg.batch_size):
                opt.zero_grad(set_to_none=True)
                metrics = _accumulate(policy, pairs, ref, batch, cfg)
                lr = sched.get_last_lr()[0]
                step = learn.step(params, opt, clip, metrics["loss"])
                sched.step()
                out.steps += 1
                out.skipped += not step.stepped
                out.losses.append(metrics["loss"])
                out.margins.append(metrics["rewards/margins"])
                out.accuracies.append(metrics["rewards/accuracies"])
                metrics.update({"grad_norm": step.grad_norm, "lr": lr,
                                "skipped_steps": out.skipped})
                if tracker is not None:
                    tracker.log({f"dpo/{k}": v for k, v in metrics.items()},
                                step_offset + out.steps)
                if bar is not None:
                    bar.update(metrics)
    finally:
        if bar is not None:
            bar.close()
    return out


def _accumulate(policy: Policy, pairs: Sequence[PreferencePair], ref: PairLogps | None,
                batch: list[int], cfg: DPOConfig) -> dict[str, float]:
    """Forward/backward of one batch in micro-batches, ADDING to `.grad`; the loss and gradient
    equal the configured loss's mean over the batch. Returns the batch's metrics."""
    loss_sum = 0.0
    chosen_r, rejected_r, chosen_lp, rejected_lp = [], [], [], []
    for idx in _chunks(batch, cfg.micro_batch_pairs):
        with policy.autocast_ctx():
            lp = pair_logprobs(policy.model, [pairs[i] for i in idx],
                               policy.tokenizer.pad_token_id, policy.device)
        loss, rc, rr = _loss(cfg, lp, ref, idx)
        loss = loss * (len(idx) / len(batch))  # this micro-batch's share of the batch mean
        learn.backward(loss)
        loss_sum += float(loss.detach())
        chosen_r.append(rc)
        rejected_r.append(rr)
        chosen_lp.append(lp.chosen.detach())
        rejected_lp.append(lp.rejected.detach())
    rc, rr = torch.cat(chosen_r), torch.cat(rejected_r)
    return {"loss": loss_sum, "rewards/chosen": float(rc.mean()),
            "rewards/rejected": float(rr.mean()), "rewards/margins": float((rc - rr).mean()),
            "rewards/accuracies": float((rc > rr).float().mean()),
            "logps/chosen": float(torch.cat(chosen_lp).mean()),
            "logps/rejected": float(torch.cat(rejected_lp).mean())}
