"""Turning trajectories into training rows, micro-batching, and per-step rollout metrics.

A row is one env step (prompt -> action tokens), or, for a multi-turn trajectory whose chat is
append-only, the whole trajectory as one sequence: the first prompt, then everything after it
(actions and the env's turns between them), with a loss mask over the action spans and each
token's advantage. The packed row computes every token once instead of re-computing the
growing history at each step; the loss (with `losses.aggregate`'s per-span normalisers) and its
gradient are the per-step rows'.
"""

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
    loss_mask: list[bool] | None = None
    """[A] which of `action_ids` are trained (a packed trajectory: its action spans); None = all."""
    token_advantages: list[float] | None = None
    """[A] per-token advantages (a packed trajectory: each span its step's; PPO: GAE's);
    None = `advantage`."""
    old_values: torch.Tensor | None = None
    """[A] the critic's values of the states before the action tokens at rollout time (PPO)."""
    returns: torch.Tensor | None = None
    """[A] the value targets of the action tokens (PPO: GAE's returns)."""

    @property
    def trained(self) -> int:
        """Number of trained tokens."""
        return len(self.action_ids) if self.loss_mask is None else sum(self.loss_mask)

    @property
    def n_steps(self) -> int:
        """Env steps this row holds (the action spans: runs of the loss mask)."""
        if self.loss_mask is None:
            return 1
        return sum(m and (i == 0 or not self.loss_mask[i - 1]) for i, m in enumerate(self.loss_mask))

    def advantages(self) -> list[float]:
        """[A] the advantage of each token of `action_ids`."""
        return self.token_advantages or [self.advantage] * len(self.action_ids)


def prefix_breaks(traj: Trajectory) -> int:
    """Turns whose prompt does not extend the previous prompt plus its sampled action: the
    env's chat was re-rendered differently (a windowed history, a re-tokenized action), so the
    trajectory is not one append-only sequence."""
    breaks = 0
    for prev, nxt in zip(traj.steps, traj.steps[1:]):
        head = prev.prompt_ids + prev.action_ids
        breaks += nxt.prompt_ids[: len(head)] != head
    return breaks


def pack(traj: Trajectory) -> Row:
    """A trajectory without prefix breaks as one row: the first prompt, then the rest of the
    last step's sequence; action spans trained with their step's advantage and sampling
    logprobs, the env's turns between them masked out. Raises ValueError on a prefix break."""
    if prefix_breaks(traj):
        raise ValueError("pack: the trajectory's prompts are not append-only")
    first = traj.steps[0].prompt_ids
    last = traj.steps[-1]
    rest = last.prompt_ids[len(first):] + last.action_ids
    mask, adv, sample = [False] * len(rest), [0.0] * len(rest), [0.0] * len(rest)
    for s in traj.steps:
        start = len(s.prompt_ids) - len(first)
        for j in range(len(s.action_ids)):
            mask[start + j], adv[start + j] = True, s.advantage
            if len(s.sample_logprobs) == len(s.action_ids):
                sample[start + j] = s.sample_logprobs[j]
    has_sample = all(len(s.sample_logprobs) == len(s.action_ids) for s in traj.steps)
    return Row(first, rest, traj.steps[0].advantage, sample if has_sample else [],
               loss_mask=mask, token_advantages=adv)


def rows_from_trajectories(trajs: Sequence[Trajectory], pack_turns: bool = False) -> list[Row]:
    """Training rows: one per step with at least one action token, with the step's advantage;
    with `pack_turns`, a multi-turn trajectory without prefix breaks is one packed row."""
    rows = []
    for t in trajs:
        steps = [s for s in t.steps if s.action_ids]
        if pack_turns and len(steps) > 1 and len(steps) == len(t.steps) and not prefix_breaks(t):
            rows.append(pack(t))
            continue
        rows += [Row(s.prompt_ids, s.action_ids, s.advantage, s.sample_logprobs) for s in steps]
    return rows


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
        out["rollout/prefix_breaks"] = float(sum(prefix_breaks(t) for t in trajs))
        groups: dict[int, list[float]] = defaultdict(list)
        for t in trajs:
            groups[t.group_id].append(t.reward)
        out["reward/std"] = statistics.stdev(rewards) if n > 1 else 0.0
        out["rollout/groups_without_signal"] = sum(
            max(g) == min(g) for g in groups.values()) / len(groups)
    return out
