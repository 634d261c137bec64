"""Episodes as action lists, and how they become SFT conversations.

Collectors keep what an episode did (its valid actions, in order) and which actions to learn
from (a loss weight per action). The conversation the policy saw is rebuilt by replaying the
actions in the env (``reset(options={"task_id", "replay"})``), so expert episodes, agent
rollouts and spliced EEF episodes all become SFT data the same way, with the env's own chat
format: exactly what the policy is prompted with at rollout time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym

from rlpost.algos.sft import SFTSample
from rlpost.env import chat
from rlpost.types import Message, Trajectory


@dataclass
class Episode:
    task_id: Any
    actions: list[str]
    """Valid actions in order (invalid ones changed nothing and are not replayed)."""
    reward: float
    success: bool
    source: str = "agent"
    """Who acted: expert, agent, or eef (an expert prefix spliced with an agent continuation)."""
    weights: list[float] | None = None
    """Loss weight per action; None = every action weighted 1."""

    def action_weights(self) -> list[float]:
        return list(self.weights) if self.weights is not None else [1.0] * len(self.actions)


def from_trajectory(t: Trajectory, prefix: Sequence[str] = ()) -> Episode:
    """The agent's episode (its valid actions), after the replayed `prefix` if there was one."""
    actions = list(prefix) + [s.action_text.strip() for s in t.steps if s.info.get("valid", True)]
    return Episode(t.task_id, actions, float(t.env_reward), t.success)


def best_per_task(episodes: Iterable[Episode]) -> list[Episode]:
    """The shortest successful episode of each task (the first one on ties), in task order."""
    best: dict[Any, Episode] = {}
    for e in episodes:
        if e.success and (e.task_id not in best or len(e.actions) < len(best[e.task_id].actions)):
            best[e.task_id] = e
    return [best[k] for k in sorted(best, key=repr)]


def replay_messages(env: gym.Env, task_id: Any, actions: Sequence[str]) -> list[Message]:
    """The chat the policy is shown after playing `actions` from the task's start."""
    env.reset(options={"task_id": task_id, "replay": list(actions)})
    return chat(env)


def to_samples(env: gym.Env, episodes: Iterable[Episode], full_history: bool = True) -> list[SFTSample]:
    """SFT conversations: one per episode when the env shows the full history (each turn's
    prompt is a prefix of the final chat), else one per weighted action (prompt as shown then)."""
    samples = []
    for e in episodes:
        weights = e.action_weights()
        if full_history:
            msgs = replay_messages(env, e.task_id, e.actions)
            n_assistant = sum(m.role == "assistant" for m in msgs)
            if n_assistant != len(e.actions):
                raise ValueError(f"task {e.task_id!r}: {len(e.actions)} actions replayed to "
                                 f"{n_assistant} turns; an action is no longer valid")
            while msgs and msgs[-1].role != "assistant":
                msgs.pop()
            samples.append(SFTSample(msgs, weights))
            continue
        for i, (action, w) in enumerate(zip(e.actions, weights)):
            if w == 0:
                continue
            msgs = replay_messages(env, e.task_id, e.actions[:i])
            samples.append(SFTSample(msgs + [Message("assistant", action)], [0.0] * i + [w]))
    return samples
