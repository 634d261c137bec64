"""Rejection-sampling fine-tuning (RFT) pieces: play the expert, explore with the agent.

RFT (Yuan et al. 2023; the agent-tuning form used by EEF) behaviour-clones the expert's
successful episodes, then repeats: explore every training task from its start state with the
current agent, keep the successful episodes (the shortest per task), fine-tune. Exploration and
evaluation are batched lockstep rollouts through the runner (`rlpost.runner.Runner`); the
iteration loop is the `rft` recipe's (`rlpost.recipes.rft.RFT`), which EEF extends.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym

from rlpost.collect.episodes import Episode, from_trajectory
from rlpost.generate import GenParams
from rlpost.runner import Runner


def play_expert(env: gym.Env, expert: Any, tasks: Sequence[Any]) -> list[Episode]:
    """The scripted expert's episode on each task (`expert.play(env, task)`; `env` with its turn
    limit)."""
    episodes = []
    for task in tasks:
        e = expert.play(env, task)
        episodes.append(Episode(task, list(e.actions), e.reward, e.success, "expert"))
    return episodes


def explore(runner: Runner, tasks: Sequence[Any], samples: int, params: GenParams,
            seed: int) -> list[Episode]:
    """`samples` sampled episodes per task from its start state (a group of `samples` per
    task: the copies share the task's reset)."""
    return [from_trajectory(t) for t in runner.play(tasks, params, seed, group_size=samples)]
