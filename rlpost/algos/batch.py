"""Turning trajectories into training rows, micro-batching, and per-step rollout metrics."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from rlpost.types import Trajectory


@dataclass
class Row:
    """One training row: a prompt and the action tokens sampled for it (one env step)."""

    prompt_ids: list[int]
    action_ids: list[int]
    advantage: float
    """This step's advantage (broadcast over its action tokens by the loss)."""
    sample_logprobs: list[float]
    """[A] the generator's logprobs of `action_ids` (logprob gap, importance-sampling correction)."""
    old_logp: torch.Tensor | None = None
    """[A] behaviour-policy logprobs of `action_ids` for the ratio; None = filled by the update."""
    ref_logp: torch.Tensor | None = None
    """[A] reference-policy logprobs (KL term); filled by the update when beta > 0."""


def rows_from_trajectories(trajs: Sequence[Trajectory]) -> list[Row]:
    """One row per step with at least one action token, with the step's advantage."""
    return [
        Row(s.prompt_ids, s.action_ids, s.advantage, s.sample_logprobs)
        for t in trajs
        for s in t.steps
        if s.action_ids
    ]


def micro_batches(rows: Sequence[Row], size: int) -> Iterator[list[Row]]:
    """Chunks of at most `size` rows. Rows sampled from the same prompt stay together (their
    prompt is then computed once); the other rows go longest first, so that rows of similar
    length share padding."""
    by_prompt: dict[tuple[int, ...], list[Row]] = defaultdict(list)
    for r in rows:
        by_prompt[tuple(r.prompt_ids)].append(r)
    singles = []
    for group in by_prompt.values():
        if len(group) == 1:
            singles += group
            continue
        for i in range(0, len(group), size):
            chunk = group[i : i + size]
            if len(chunk) == 1:
                singles += chunk
            else:
                yield chunk
    singles.sort(key=lambda r: len(r.prompt_ids) + len(r.action_ids), reverse=True)
    for i in range(0, len(singles), size):
        yield singles[i : i + size]


def step_metrics(trajs: Sequence[Trajectory], prefix: str = "rollout") -> dict[str, float]:
    """Means over a batch: reward and its components, success, turns, tokens, truncation."""
    n = len(trajs)
    if n == 0:
        return {}
    out: dict[str, float] = {}
    comps: dict[str, list[float]] = defaultdict(list)
    for t in trajs:
        for k, v in t.components.items():
            comps[k].append(v)
    rewards = [t.reward for t in trajs]
    reward_prefix = "reward" if prefix == "rollout" else prefix
    out[f"{reward_prefix}/total"] = statistics.fmean(rewards)
    for k, v in comps.items():
        out[f"{reward_prefix}/{k}"] = sum(v) / len(v)
    steps = [s for t in trajs for s in t.steps]
    out[f"{prefix}/success"] = sum(t.success for t in trajs) / n
    out[f"{prefix}/turns"] = len(steps) / n
    out[f"{prefix}/completion_tokens"] = sum(len(s.action_ids) for s in steps) / max(len(steps), 1)
    out[f"{prefix}/hit_max_tokens"] = sum(s.finish_reason == "length" for s in steps) / max(len(steps), 1)
    out[f"{prefix}/truncated"] = sum(t.truncated for t in trajs) / n
    out[f"{prefix}/invalid_actions"] = sum(not s.info.get("valid", True) for s in steps) / max(len(steps), 1)
    if prefix == "rollout":
        out["rollout/tokens"] = float(sum(len(s.action_ids) for s in steps))
        groups: dict[int, list[float]] = defaultdict(list)
        for t in trajs:
            groups[t.group_id].append(t.reward)
        out["reward/std"] = statistics.stdev(rewards) if n > 1 else 0.0
        out["rollout/groups_without_signal"] = sum(
            max(g) == min(g) for g in groups.values()) / len(groups)
    return out
