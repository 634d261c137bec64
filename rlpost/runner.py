"""The rollout runner: one pool of envs, played through the generator in chunks, and evaluation.

Every trainer and collector plays episodes the same way: GRPO's rollouts and evals, RFT's
exploration and evals, EEF's simulations from expert states. The runner owns the env instances
(reused across calls), splits a request into chunks the pool holds, seeds each chunk from the
caller's seed (`derive_seed`), and evaluates with greedy decoding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import gymnasium as gym

from rlpost.algos.batch import step_metrics
from rlpost.env import check_turn_limits, make
from rlpost.errors import RlpostError
from rlpost.generate import Generator, GenParams
from rlpost.reward import Rubric
from rlpost.rollout import rollout
from rlpost.seeds import derive_seed
from rlpost.types import Message, Trajectory


@dataclass
class Evaluation:
    """A greedy evaluation: the episodes and their means."""

    trajectories: list[Trajectory]
    metrics: dict[str, float]
    """`eval/success`, `eval/total` (reward), `eval/score` (100 x mean env reward: WebShop's
    score), turns, tokens, truncation, invalid actions, reward components."""


@dataclass
class Runner:
    """Plays tasks in a pool of envs through a generator.

    envs: env instances made with their turn limit (`rlpost.env.make`), reused across calls;
    a request of more episodes than the pool holds runs in chunks.
    encode: chat messages -> prompt token ids (`Policy.encode_chat`).
    max_prompt_tokens: longest prompt an episode plays on (None = the generator's context
    less `max_tokens`; see `rlpost.rollout.rollout`).
    """

    envs: list[gym.Env]
    generator: Generator
    encode: Callable[[list[Message]], list[int]]
    max_prompt_tokens: int | None = None

    def __post_init__(self) -> None:
        """Refuse, before any rollout, envs whose episodes would not end."""
        check_turn_limits(self.envs)

    @classmethod
    def make(cls, env_id: str, config: Any, n_envs: int, generator: Generator,
             encode: Callable[[list[Message]], list[int]], max_turns: int | None = None,
             max_prompt_tokens: int | None = None) -> Runner:
        """A pool of `n_envs` copies of `env_id` (`rlpost.env.make(env_id, config, max_turns)`).
        Raises RlpostError when n_envs < 1 or max_turns < 1."""
        if n_envs < 1:
            raise RlpostError(f"a runner needs at least one env, got n_envs={n_envs}")
        envs = [make(env_id, config, max_turns=max_turns) for _ in range(n_envs)]
        return cls(envs, generator, encode, max_prompt_tokens)

    def play(self, tasks: Sequence[Any], params: GenParams, seed: int, group_size: int = 1,
             prefixes: Sequence[Sequence[str]] | None = None) -> list[Trajectory]:
        """`group_size` episodes of every task, in (task, copy) order; `prefixes` (per task)
        are actions replayed after the reset (the episode starts where they lead).

        Tasks run in chunks of len(envs) // group_size; chunk c is seeded
        `derive_seed(seed, "chunk", c)`, so the result depends on the seed, the pool size and
        the weights, not on what ran before. Raises ValueError when group_size < 1, one group
        does not fit the pool, or `prefixes` does not give one per task."""
        if group_size < 1:
            raise ValueError(f"group_size must be >= 1, got {group_size}")
        if prefixes is not None and len(prefixes) != len(tasks):
            raise ValueError(f"{len(prefixes)} prefixes for {len(tasks)} tasks: give one per task")
        per_chunk = len(self.envs) // group_size
        if per_chunk < 1:
            raise ValueError(f"a group of {group_size} needs {group_size} envs; the pool has "
                             f"{len(self.envs)}")
        out: list[Trajectory] = []
        for c, start in enumerate(range(0, len(tasks), per_chunk)):
            chunk = list(tasks[start:start + per_chunk])
            pre = None if prefixes is None else list(prefixes[start:start + per_chunk])
            trajs = rollout(self.envs, chunk, group_size, self.generator, self.encode, params,
                            seed=derive_seed(seed, "chunk", c),
                            max_prompt_tokens=self.max_prompt_tokens, prefixes=pre)
            for t in trajs:  # group ids over the whole request, not the chunk
                t.group_id += c * per_chunk
            out += trajs
        return out

    def evaluate(self, tasks: Sequence[Any], params: GenParams, seed: int,
                 rubric: Rubric | None = None) -> Evaluation:
        """One greedy episode per task (`params` with temperature 0), scored by `rubric`
        (default: the env's reward alone). Raises RlpostError on a non-finite reward."""
        trajs = self.play(tasks, replace(params, temperature=0.0), seed)
        (rubric or Rubric())(trajs)
        metrics = step_metrics(trajs, prefix="eval")
        if trajs:
            metrics["eval/score"] = 100.0 * sum(t.env_reward for t in trajs) / len(trajs)
        return Evaluation(trajs, metrics)
