"""`ChatAdapter`: train on any gymnasium env with text observations and text actions.

A third-party env needs no rlpost base class and no `messages()`: the adapter (a gymnasium
`Wrapper`) keeps the episode's observations and actions and renders them as chat turns, the
full history or the last k turns. It also gives the env what rollouts need:

- tasks: a task is a reset seed. ``tasks("train")`` is seeds ``0 .. n_train-1``, ``tasks("test")``
  the ``n_test`` seeds from ``test_offset`` on, so a group of G copies reset with one task starts
  from one state (the env's reset must be deterministic in its seed, as gymnasium asks); a
  reset without ``task_id`` plays task = its seed, or, without a seed, a drawn train task;
- observations ``{"text": render(obs), "anchor": render(obs)}`` (equal text = same state: the
  grouping GiGPO uses for text envs, as verl-agent does);
- ``info`` with ``task_id``, ``valid`` (the env's own, else True), ``reward_components`` and, at
  the end, ``success`` (the env's own, else: terminated with a positive return);
- ``options["replay"]``: the actions are stepped after the reset; a turn limit inside the
  adapter (``gymnasium.make(..., max_episode_steps=k)``) counts from the state they reach.

The turn limit stays the env's `TimeLimit` (``gymnasium.make`` with ``max_episode_steps``).

    env = ChatAdapter(gymnasium.make("mygame/Game-v0"), system_prompt="You play Game.", history=4)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym

from rlpost.env import Observation, text_observation_space, time_limits
from rlpost.errors import RlpostError
from rlpost.types import Message

OMITTED = "[earlier turns omitted]"


class ChatAdapter(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Wraps `env` (text observations, text actions) as an rlpost env; see the module docstring.

    system_prompt: the first message (None = none). history: turns shown in the chat (None =
    all; k = the last k observations with the actions between them). render: observation ->
    text (default `str`). Raises RlpostError on history < 1 or n_train < 1.
    """

    def __init__(self, env: gym.Env, system_prompt: str | None = None, history: int | None = None,
                 render: Callable[[Any], str] = str, n_train: int = 1000, n_test: int = 100,
                 test_offset: int = 1_000_000):
        gym.utils.RecordConstructorArgs.__init__(
            self, system_prompt=system_prompt, history=history, render=render, n_train=n_train,
            n_test=n_test, test_offset=test_offset)  # gymnasium re-creates wrappers from these
        super().__init__(env)
        if history is not None and history < 1:
            raise RlpostError("ChatAdapter: history must be >= 1 or None")
        if n_train < 1 or n_test < 0:
            raise RlpostError("ChatAdapter: n_train must be >= 1 and n_test >= 0")
        self.observation_space = text_observation_space()
        self.system_prompt, self.history, self.render = system_prompt, history, render
        self.n_train, self.n_test, self.test_offset = n_train, n_test, test_offset
        self.task: Any = None
        self.texts: list[str] = []
        self.actions: list[str] = []
        self.total = 0.0

    def tasks(self, split: str) -> list[int]:
        if split == "train":
            return list(range(self.n_train))
        if split == "test":
            return list(range(self.test_offset, self.test_offset + self.n_test))
        raise RlpostError(f"unknown split {split!r}; use 'train' or 'test'")

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[Observation, dict[str, Any]]:
        options = dict(options or {})
        # the task is the reset seed: the given task, else the given seed, else a train task
        # drawn from the env's generator
        self.task = options.pop("task_id", seed)
        if self.task is None:
            self.task = int(self.env.np_random.integers(self.n_train))
        replay = options.pop("replay", [])
        obs, info = self.env.reset(seed=self.task, options=options or None)
        self.texts, self.actions, self.total = [self.render(obs)], [], 0.0
        info = {**self._info(info, False), "task": {"task_id": self.task, "seed": self.task}}
        task_record = info["task"]
        for action in replay:
            _, _, terminated, truncated, info = self.step(action)
            if terminated or truncated:
                break
        for limit in time_limits(self.env):  # the turn limit counts from the replayed state
            limit._elapsed_steps = 0
        return self._obs(), {**info, "task": task_record}

    def step(self, action: str) -> tuple[Observation, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.actions.append(action)
        self.texts.append(self.render(obs))
        self.total += float(reward)
        terminated, truncated = bool(terminated), bool(truncated)
        return (self._obs(), float(reward), terminated, truncated,
                self._info(info, terminated or truncated, terminated))

    def _obs(self) -> Observation:
        return {"text": self.texts[-1], "anchor": self.texts[-1]}

    def _info(self, info: dict[str, Any], ended: bool, terminated: bool = False) -> dict[str, Any]:
        out = {"valid": True, "reward_components": {}, **info, "task_id": self.task}
        if ended:
            out.setdefault("success", terminated and self.total > 0)
        return out

    def messages(self) -> list[Message]:
        """System prompt, then observation (user) and action (assistant) turns, ending with the
        latest observation; with `history` = k only the last k observations are shown."""
        if not self.texts:
            raise RlpostError("call reset() before messages()")
        first = 0 if self.history is None else max(0, len(self.texts) - self.history)
        msgs = [Message("system", self.system_prompt)] if self.system_prompt else []
        if first > 0:
            msgs.append(Message("user", OMITTED))
            msgs.append(Message("assistant", self.actions[first - 1]))
        for i in range(first, len(self.texts)):
            msgs.append(Message("user", self.texts[i]))
            if i < len(self.actions):
                msgs.append(Message("assistant", self.actions[i]))
        return msgs
