"""The learner step: the one place that calls backward, clips gradients and steps the optimizer
(GRPO and SFT use it; PPO, DPO and a distributed backend enter here too).

- `make_optimizer`: AdamW and a LambdaLR schedule: linear warm-up over `warmup_steps`, then
  constant or cosine decay to 0 at `total_steps` (Loshchilov & Hutter 2017, SGDR, without
  restarts).
- `backward(loss)`: accumulates gradients into `.grad` (micro-batches add up).
- `step(params, opt, max_grad_norm)`: clips the global L2 norm, and steps the optimizer unless
  the norm is not finite, in which case the gradients are dropped and nothing changes (a NaN
  would otherwise spread to every weight and, at the next sync, into the generator).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch

Schedule = Literal["constant", "cosine"]


def lr_factor(step: int, warmup_steps: int, schedule: Schedule, total_steps: int) -> float:
    """Multiplier of the base LR at optimizer step `step` (0-based): (step + 1) / warmup_steps
    during warm-up; then 1 (constant) or 0.5 (1 + cos(pi * t / span)) with t the steps since
    warm-up and span = total_steps - warmup_steps (cosine)."""
    if warmup_steps and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "cosine":
        span = max(total_steps - warmup_steps, 1)
        return 0.5 * (1 + math.cos(math.pi * min(step - warmup_steps, span) / span))
    return 1.0


def make_optimizer(params: Sequence[torch.nn.Parameter], lr: float, weight_decay: float = 0.0,
                   warmup_steps: int = 0, schedule: Schedule = "constant",
                   total_steps: int = 0) -> tuple[torch.optim.Optimizer,
                                                  torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over `params` and its schedule (`lr_factor`); call `sched.step()` once per
    optimizer step of the schedule's unit."""
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_factor(s, warmup_steps, schedule, total_steps))
    return opt, sched


def backward(loss: torch.Tensor) -> None:
    """Add d loss / d params to `.grad`."""
    loss.backward()


@dataclass
class StepResult:
    grad_norm: float
    """Global L2 norm of the gradients before clipping (inf or nan when not finite)."""
    stepped: bool
    """False when the step was skipped (non-finite gradient or loss)."""


def step(params: Sequence[torch.nn.Parameter], opt: torch.optim.Optimizer,
         max_grad_norm: float, loss: float = 0.0) -> StepResult:
    """Clip the gradients of `params` to `max_grad_norm` (inf = no clipping), then step `opt`;
    with a non-finite gradient norm or `loss`, drop the gradients without stepping. The caller
    zeroes the gradients before accumulating the next step's (`opt.zero_grad`)."""
    grad_norm = float(torch.nn.utils.clip_grad_norm_(params, max_grad_norm))
    ok = math.isfinite(grad_norm) and math.isfinite(loss)
    if ok:
        opt.step()
    else:
        opt.zero_grad(set_to_none=True)
    return StepResult(grad_norm, ok)
