"""Environment contract (gymnasium semantics), the env id registry, and `check_env`.

An env is registered as ``rlpost/<Name>-v<k>`` with a string entry point ``"module:Class"``; the
core never imports an env module directly. Contract:

- ``reset(seed=None, options=None) -> (obs, info)``; ``options`` may carry ``task_id`` and
  ``replay`` (a list of actions re-applied deterministically after the reset).
- ``step(action: str) -> (obs, reward, terminated, truncated, info)``. The action is the model's
  raw text; the env parses it. A malformed action never raises: ``info["valid"] = False``, the
  state is unchanged, and the env's own penalty applies (a single-turn env ends the episode
  with its penalty instead, since its one step is the whole episode).
- ``obs = {"text": str, "images": list, "anchor": hashable}``.
- ``info`` always has ``valid``, ``task_id`` and ``reward_components``; ``success`` at the end.
- ``messages()`` returns the chat the policy sees for its next turn: the env owns its system
  prompt and how history becomes messages.
- ``tasks(split)`` lists the task ids of a split (``"train"``, ``"test"``).
"""

from __future__ import annotations

import importlib
import random
import string
from dataclasses import dataclass
from typing import Any, ClassVar, TypedDict

from rlpost.errors import RlpostError
from rlpost.types import Message


class Observation(TypedDict):
    text: str
    images: list[Any]
    anchor: Any


class Env:
    """Base class: subclasses implement `reset`, `step`, `messages` and `tasks`."""

    max_turns: ClassVar[int] = 1
    """Default episode length limit used by rollouts when the caller gives none."""

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Observation, dict[str, Any]]:
        raise NotImplementedError

    def step(self, action: str) -> tuple[Observation, float, bool, bool, dict[str, Any]]:
        raise NotImplementedError

    def messages(self) -> list[Message]:
        raise NotImplementedError

    def tasks(self, split: str) -> list[Any]:
        raise NotImplementedError

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class EnvSpec:
    id: str
    entry_point: str


_REGISTRY: dict[str, EnvSpec] = {}


def register(env_id: str, entry_point: str) -> None:
    """Register `env_id` (``rlpost/<Name>-v<k>``) to a ``"module:Class"`` entry point."""
    _REGISTRY[env_id] = EnvSpec(env_id, entry_point)


def registered() -> list[str]:
    _load_builtin_envs()
    return sorted(_REGISTRY)


def _load_builtin_envs() -> None:
    importlib.import_module("rlpost.envs")


def env_class(env_id: str) -> type[Env]:
    if env_id not in _REGISTRY:
        _load_builtin_envs()
    if env_id not in _REGISTRY:
        raise RlpostError(f"unknown env {env_id!r}; registered: {', '.join(sorted(_REGISTRY))}")
    module, _, name = _REGISTRY[env_id].entry_point.partition(":")
    return getattr(importlib.import_module(module), name)


def make(env_id: str, config: Any = None) -> Env:
    """Instantiate a registered env; `config` is the env's own config dataclass (or None)."""
    cls = env_class(env_id)
    return cls() if config is None else cls(config)


def _check_obs(obs: Any, where: str) -> None:
    assert isinstance(obs, dict), f"{where}: obs must be a dict, got {type(obs).__name__}"
    for key in ("text", "images", "anchor"):
        assert key in obs, f"{where}: obs lacks {key!r}"
    assert isinstance(obs["text"], str), f"{where}: obs['text'] must be str"
    assert isinstance(obs["images"], list), f"{where}: obs['images'] must be a list"
    hash(obs["anchor"])


def _check_info(info: Any, where: str) -> None:
    assert isinstance(info, dict), f"{where}: info must be a dict"
    assert "task_id" in info, f"{where}: info lacks 'task_id'"


def _garbage(rng: random.Random) -> str:
    alphabet = string.printable + "<>[]{}()éß中\x00"
    kinds = [
        "",
        " ",
        "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 300))),
        "<answer>" * rng.randint(1, 5),
        "search[" + "x" * rng.randint(0, 50),
        "click[]",
        "\n" * rng.randint(1, 10),
    ]
    return rng.choice(kinds)


def check_env(env: Env, n_random_actions: int = 200, seed: int = 0) -> None:
    """Assert that `env` honours the contract above. Raises AssertionError on a violation.

    Checks: task splits exist; reset is deterministic for a (seed, task); observations and info
    have the required keys; `messages()` is a non-empty chat; garbage actions never raise, are
    flagged invalid or handled as the env defines, and a replayed prefix reaches the same state.
    """
    rng = random.Random(seed)
    train, test = env.tasks("train"), env.tasks("test")
    assert train and test, "env must list train and test tasks"
    task = train[0]
    obs, info = env.reset(seed=seed, options={"task_id": task})
    _check_obs(obs, "reset")
    _check_info(info, "reset")
    assert info["task_id"] == task, "reset must honour options['task_id']"
    msgs = env.messages()
    assert msgs and all(isinstance(m, Message) for m in msgs), "messages() must be list[Message]"
    obs2, _ = env.reset(seed=seed, options={"task_id": task})
    assert obs2["text"] == obs["text"], "reset with the same seed and task must be deterministic"
    assert [m.content for m in env.messages()] == [m.content for m in msgs]

    done, actions = False, []
    for i in range(n_random_actions):
        if done:
            obs, info = env.reset(seed=seed + i, options={"task_id": rng.choice(train)})
            actions, done = [], False
        action = _garbage(rng)
        obs, reward, terminated, truncated, info = env.step(action)
        _check_obs(obs, "step")
        _check_info(info, "step")
        assert isinstance(reward, float), f"reward must be float, got {type(reward).__name__}"
        assert isinstance(terminated, bool) and isinstance(truncated, bool)
        assert "valid" in info and "reward_components" in info, "step info lacks valid/components"
        if terminated:
            assert "success" in info, "terminal info must carry 'success'"
        actions.append(action)
        done = terminated or truncated

    # replay: re-applying a prefix reaches the state that playing it reached
    obs, info = env.reset(seed=seed, options={"task_id": task})
    prefix = [_garbage(rng) for _ in range(3)]
    played = obs
    for a in prefix:
        played, _, term, trunc, _ = env.step(a)
        if term or trunc:
            break
    else:
        replayed, _ = env.reset(seed=seed, options={"task_id": task, "replay": prefix})
        assert replayed["text"] == played["text"], "replay must reach the played state"
