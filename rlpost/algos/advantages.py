"""Advantage estimators, as pure functions.

- `group_advantages`: GRPO's group-relative advantage (Shao et al. 2024, DeepSeekMath, sec. 4.1.2),
  one per trajectory; Dr.GRPO (Liu et al. 2025) drops the std.
- `step_returns` and `gigpo_step_advantages`: GiGPO's step-level advantage (Feng et al. 2025,
  "Group-in-Group Policy Optimization for LLM Agent Training", sec. 4.2, eqs. 5-7; verl-agent's
  `gigpo/core_gigpo.py`): steps of one group that act from the same anchor state form a step
  group; each step's discounted return is normalised within its step group. The combined
  advantage of a step is A^E(trajectory) + omega * A^S(step) (eq. 8).
- `step_rewards`, `token_rewards`, `gae`, `whiten`, `explained_variance`: PPO's critic-based
  advantage (Schulman et al. 2016, "High-Dimensional
  Continuous Control Using Generalized Advantage Estimation", eqs. 11-16) over the action tokens
  of one trajectory, and the batch whitening of the advantages (TRL's `masked_whiten`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Hashable, Sequence

import torch

from rlpost.types import Trajectory


def group_advantages(rewards: torch.Tensor, group_ids: torch.Tensor, scale: bool = True,
                     eps: float = 1e-4) -> torch.Tensor:
    """rewards [N], group_ids [N] -> advantages [N]: (r_i - mean_g r) / (std_g r + eps) over the
    trajectories of a group (std unbiased, as TRL), or r_i - mean_g r with scale=False. A group
    of one gets advantage 0."""
    adv = torch.empty_like(rewards)
    for g in group_ids.unique():
        m = group_ids == g
        r = rewards[m]
        centred = r - r.mean()
        std = r.std() if r.numel() > 1 else torch.zeros((), dtype=r.dtype)
        adv[m] = centred / (std + eps) if scale else centred
    return adv


def step_returns(rewards: Sequence[float], gamma: float) -> list[float]:
    """Discounted return of every step of one trajectory: G_t = r_t + gamma * G_{t+1}
    (GiGPO eq. 5). rewards: [T] per-step rewards in step order -> [T]."""
    out, running = [0.0] * len(rewards), 0.0
    for t in range(len(rewards) - 1, -1, -1):
        running = rewards[t] + gamma * running
        out[t] = running
    return out


def gigpo_step_advantages(returns: Sequence[float], keys: Sequence[Hashable], scale: bool = True,
                          eps: float = 1e-6) -> list[float]:
    """Step-level advantages (GiGPO eqs. 6-7): steps with equal `keys` (the pair (group id, anchor
    state)) form a step group; A^S = (G - mean) / (std + eps) within it (std unbiased; 1 for a
    group of one, as verl-agent), or G - mean with scale=False. returns, keys: [S] -> [S]."""
    groups: dict[Hashable, list[int]] = defaultdict(list)
    for i, k in enumerate(keys):
        groups[k].append(i)
    out = [0.0] * len(returns)
    for idx in groups.values():
        g = torch.tensor([returns[i] for i in idx], dtype=torch.float64)
        centred = g - g.mean()
        std = g.std() if len(idx) > 1 else torch.ones((), dtype=g.dtype)
        values = centred / (std + eps) if scale else centred
        for i, v in zip(idx, values.tolist()):
            out[i] = v
    return out


def assign_advantages(trajs: Sequence[Trajectory], estimator: str = "grpo", scale: bool = True,
                      eps: float = 1e-4, gamma: float = 0.95, step_weight: float = 1.0) -> None:
    """Write each trajectory's group advantage to `t.advantage` and each step's to `s.advantage`:
    the trajectory's (estimator "grpo"), or the trajectory's plus `step_weight` times the
    step-level advantage of its (group, anchor) step group ("gigpo", discount `gamma`). The step
    rewards are the env's, with what the Rubric adds to the env reward counted at the last step,
    so an episode's undiscounted return is its total reward. Raises ValueError on an unknown
    estimator."""
    if estimator not in ("grpo", "gigpo"):
        raise ValueError(f"unknown advantage estimator {estimator!r}")
    adv = group_advantages(torch.tensor([t.reward for t in trajs], dtype=torch.float64),
                           torch.tensor([t.group_id for t in trajs]), scale, eps)
    for t, a in zip(trajs, adv.tolist()):
        t.advantage = a
        for s in t.steps:
            s.advantage = a
    if estimator == "grpo":
        return
    steps, keys, returns = [], [], []
    for t in trajs:
        rewards = [s.reward for s in t.steps]
        if rewards:
            rewards[-1] += t.reward - sum(rewards)
        returns += step_returns(rewards, gamma)
        steps += t.steps
        keys += [(t.group_id, s.anchor) for s in t.steps]
    for s, a in zip(steps, gigpo_step_advantages(returns, keys, scale)):
        s.advantage += step_weight * a


def gae(rewards: torch.Tensor, values: torch.Tensor, gamma: float, lam: float,
        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over one trajectory's T action tokens, in order
    (Schulman et al. 2016, eq. 16; DeepSpeed-Chat's `get_advantages_and_returns`):
    delta_t = r_t + gamma V_{t+1} - V_t, A_t = delta_t + gamma lam A_{t+1}, return R_t = A_t + V_t,
    with V_T = 0 (the episode ends after the last token).

    rewards, values: [T] (per-token rewards, e.g. the env's turn rewards on each turn's last
    token and a KL penalty on every token; the critic's V(s_t) of the state before token t).
    A multi-turn trajectory passes its action tokens only: the env's tokens between turns are
    skipped, so the last token of a turn bootstraps from the value of the next turn's first
    token, which has seen the env's answer (as verl's GAE over a response mask).
    Returns (advantages [T], returns [T]), no gradient. Raises ValueError when the shapes differ.
    """
    if rewards.shape != values.shape or rewards.dim() != 1:
        raise ValueError(f"gae: rewards {tuple(rewards.shape)} and values "
                         f"{tuple(values.shape)} must be the same 1-d shape")
    rewards, values = rewards.detach(), values.detach()
    adv = torch.zeros_like(rewards)
    running, next_value = 0.0, 0.0
    for t in range(rewards.shape[0] - 1, -1, -1):
        delta = rewards[t] + gamma * next_value - values[t]
        running = delta + gamma * lam * running
        adv[t] = running
        next_value = values[t]
    return adv, adv + values


def whiten(x: torch.Tensor, mask: torch.Tensor | None = None, eps: float = 1e-8) -> torch.Tensor:
    """(x - mean) / sqrt(var + eps) over the entries where `mask` is True (all when None), var
    unbiased, as TRL's `masked_whiten`; entries outside the mask are returned unchanged. With
    fewer than two entries the values are only centred. x, mask: the same shape."""
    m = torch.ones_like(x, dtype=torch.bool) if mask is None else mask
    vals = x[m]
    if vals.numel() == 0:
        return x.clone()
    centred = vals - vals.mean()
    out = x.clone()
    out[m] = centred * torch.rsqrt(vals.var() + eps) if vals.numel() > 1 else centred
    return out


def step_rewards(traj: Trajectory, clip: float | None) -> list[float]:
    """One reward per step of `traj` that has action tokens, in order: the env's step reward,
    plus (on the last such step) what the Rubric added to the env's total (`traj.reward -
    traj.env_reward`); a step without action tokens gives its reward to the step before it (or,
    when none, the next). Each is clipped to [-clip, clip] (DeepSpeed-Chat's
    `clip_reward_value`); clip None = not clipped."""
    acting = [k for k, s in enumerate(traj.steps) if s.action_ids]
    if not acting:
        return []
    out = {k: 0.0 for k in acting}
    for k, s in enumerate(traj.steps):
        home = max((j for j in acting if j <= k), default=acting[0])
        out[home] += s.reward
    out[acting[-1]] += traj.reward - traj.env_reward
    values = [out[k] for k in acting]
    return values if clip is None else [max(-clip, min(clip, v)) for v in values]


def token_rewards(rewards: Sequence[float], lengths: Sequence[int]) -> torch.Tensor:
    """Per-token rewards of a trajectory whose steps have `lengths` action tokens ([S] each):
    step k's reward on its last token, 0 elsewhere. Returns [sum(lengths)] float32. Raises
    ValueError when the lists differ in length or a step has no token."""
    if len(rewards) != len(lengths) or any(n < 1 for n in lengths):
        raise ValueError(f"token_rewards: {len(rewards)} rewards for steps of lengths "
                         f"{list(lengths)} (each step needs >= 1 token)")
    out = torch.zeros(sum(lengths), dtype=torch.float32)
    ends = torch.tensor(lengths).cumsum(0) - 1
    out[ends] = torch.tensor(list(rewards), dtype=torch.float32)
    return out


def explained_variance(values: torch.Tensor, returns: torch.Tensor) -> float:
    """1 - Var(returns - values) / Var(returns) over 1-d tensors (1: the critic predicts the
    returns; 0: no better than their mean; < 0: worse); nan when Var(returns) is 0."""
    var = float(returns.var()) if returns.numel() > 1 else 0.0
    if var == 0.0:
        return math.nan
    return 1.0 - float((returns - values).var()) / var
