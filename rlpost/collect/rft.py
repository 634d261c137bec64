"""Rejection-sampling fine-tuning (RFT) pieces: play the expert, explore with the agent, evaluate.

RFT (Yuan et al. 2023; the agent-tuning form used by EEF) behaviour-clones the expert's
successful episodes, then repeats: explore every training task from its start state with the
current agent, keep the successful episodes (the shortest per task), fine-tune. Exploration and
evaluation are batched lockstep rollouts through the generator (vLLM by default).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym

from rlpost.collect.episodes import Episode, from_trajectory
from rlpost.generate import GenParams, Generator
from rlpost.rollout import rollout
from rlpost.types import Message, Trajectory


@dataclass
class Agent:
    """What the collectors need to run the current policy in envs."""

    generator: Generator
    encode: Callable[[list[Message]], list[int]]
    envs: list[gym.Env]
    """Env instances with their turn limit, reused across calls; rollouts run in chunks of
    len(envs)."""
    max_tokens: int
    max_prompt_tokens: int | None = None

    def play(self, tasks: Sequence[Any], temperature: float, seed: int,
             prefixes: Sequence[Sequence[str]] | None = None) -> list[Trajectory]:
        """One episode per task (from its start, or after replaying its prefix)."""
        params = GenParams(max_tokens=self.max_tokens, temperature=temperature, stop=["\n"])
        out: list[Trajectory] = []
        n = len(self.envs)
        for start in range(0, len(tasks), n):
            chunk = list(tasks[start:start + n])
            pre = None if prefixes is None else list(prefixes[start:start + n])
            out += rollout(self.envs, chunk, 1, self.generator, self.encode, params,
                           seed=seed + start,
                           max_prompt_tokens=self.max_prompt_tokens, prefixes=pre)
        return out


def play_expert(env: gym.Env, expert: Any, tasks: Sequence[Any]) -> list[Episode]:
    """The scripted expert's episode on each task (`expert.play(env, task)`; `env` with its turn
    limit)."""
    episodes = []
    for task in tasks:
        e = expert.play(env, task)
        episodes.append(Episode(task, list(e.actions), e.reward, e.success, "expert"))
    return episodes


def explore(agent: Agent, tasks: Sequence[Any], samples: int, temperature: float,
            seed: int) -> list[Episode]:
    """`samples` sampled episodes per task from its start state."""
    tasks_rep = [t for t in tasks for _ in range(samples)]
    return [from_trajectory(t) for t in agent.play(tasks_rep, temperature, seed)]


@dataclass
class EvalResult:
    score: float
    """Mean final reward x 100 (WebShop's "score")."""
    success: float
    """Share of episodes with reward 1.0."""
    rewards: dict[Any, float]


def evaluate(agent: Agent, tasks: Sequence[Any], seed: int = 0) -> EvalResult:
    """Greedy episodes on `tasks`: score and success rate as the WebShop papers report them."""
    trajs = agent.play(tasks, temperature=0.0, seed=seed)
    rewards = {t.task_id: t.env_reward for t in trajs}
    n = max(len(trajs), 1)
    return EvalResult(100.0 * sum(rewards.values()) / n, sum(t.success for t in trajs) / n, rewards)
