"""Environment contract (gymnasium), registration under the ``rlpost`` namespace, `check_env`.

Every rlpost env is a `gymnasium.Env` registered in gymnasium's registry as
``rlpost/<Name>-v<k>`` with its turn limit (gymnasium's ``max_episode_steps``: the one place the
limit lives). ``gymnasium.make("rlpost/WebShop-v0", max_history=1)`` (after ``import
rlpost.envs``) or `rlpost.env.make` returns it wrapped in gymnasium's `TimeLimit`. Contract:

- ``reset(seed=None, options=None) -> (obs, info)``; ``options`` may carry ``task_id`` (without
  one, a train task is drawn from ``self.np_random``, seeded by ``seed``) and ``replay`` (a
  list of actions re-applied deterministically after the reset; the turn limit counts from the
  state they reach).
- ``step(action: str) -> (obs, reward, terminated, truncated, info)``. The action is the model's
  raw text; the env parses it. A malformed action never raises: ``info["valid"] = False``, the
  state is unchanged, and the env's own penalty applies (a single-turn env ends the episode
  with its penalty instead, since its one step is the whole episode).
- ``obs = {"text": str, "anchor": str}``: what the env shows, and a name of the underlying
  state (equal anchors = the same state: GiGPO's step groups, search). Images travel in the
  chat (`Message.images`), not in obs.
- ``info`` always has ``valid``, ``task_id`` and ``reward_components``; ``success`` at the end;
  reset's ``info["task"]`` is the task's record with its ground truth (for reward models and
  judges, which read it from `Trajectory.task`).
- ``messages()`` returns the chat the policy sees for its next turn: the env owns its system
  prompt and how history becomes messages (this, not obs, is the policy's input).
- ``tasks(split)`` lists the task ids of a split (``"train"``, ``"test"``).

Config: each env takes its config dataclass (``config=``) and/or keyword overrides of its
fields (gymnasium's ``make(id, **kwargs)`` convention), checked by `env_config`.
"""

from __future__ import annotations

import dataclasses
import numbers
import random
import string
import typing
from collections.abc import Sequence
from typing import Any, ClassVar, TypedDict, TypeVar

import gymnasium as gym
from gymnasium import spaces

from rlpost.errors import RlpostError
from rlpost.types import Message

NAMESPACE = "rlpost"


class Observation(TypedDict):
    text: str
    anchor: str


class TextSpace(spaces.Text):
    """Any string of at most `max_length` characters (gymnasium's Text space restricts the
    characters to a charset; model text and web pages use all of Unicode). `sample()` draws
    alphanumeric strings, as Text does."""

    def __init__(self, max_length: int, min_length: int = 0):
        super().__init__(max_length, min_length=min_length)

    def contains(self, x: Any) -> bool:
        return isinstance(x, str) and self.min_length <= len(x) <= self.max_length


MAX_OBS_CHARS = 1 << 20
MAX_ACTION_CHARS = 1 << 12


def text_observation_space() -> spaces.Dict:
    return spaces.Dict({"text": TextSpace(MAX_OBS_CHARS), "anchor": TextSpace(MAX_OBS_CHARS)})


class Env(gym.Env):
    """Base class: subclasses implement `reset` (calling ``super().reset(seed=seed)``), `step`,
    `messages` and `tasks`; spaces and metadata are set here."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self) -> None:
        self.observation_space = text_observation_space()
        self.action_space = TextSpace(MAX_ACTION_CHARS)

    def messages(self) -> list[Message]:
        raise NotImplementedError

    def action_text(self, action: Any) -> str:
        """The action when it is in the action space (text of at most `MAX_ACTION_CHARS`
        characters), else "": every env parses "" as an invalid action, so a non-text or
        oversized action gets the env's penalty, never an exception."""
        return action if self.action_space.contains(action) else ""

    def tasks(self, split: str) -> list[Any]:
        raise NotImplementedError

    def draw_task(self) -> Any:
        """A train task drawn with `self.np_random` (call after ``super().reset(seed=...)``)."""
        train = self.tasks("train")
        return train[int(self.np_random.integers(len(train)))]

    def reset_options(self, options: dict[str, Any] | None, n_tasks: int) -> tuple[int, list[Any]]:
        """(task id, replay actions) of reset's `options`: ``task_id`` (else a drawn train
        task) must be an integer index in [0, n_tasks) (NumPy integers too, bools not);
        ``replay`` a list of actions. Raises RlpostError otherwise, the same in every env."""
        options = options or {}
        task = options.get("task_id")
        if task is None:
            task = self.draw_task()
        if (isinstance(task, bool) or not isinstance(task, numbers.Integral)
                or not 0 <= task < n_tasks):
            raise RlpostError(f"{type(self).__name__}: task_id must be an int in [0, {n_tasks}), "
                              f"got {task!r}")
        replay = options.get("replay", [])
        if isinstance(replay, (str, bytes)) or not isinstance(replay, (list, tuple)):
            raise RlpostError(f"{type(self).__name__}: options['replay'] must be a list of "
                              f"actions, got {type(replay).__name__}")
        return int(task), list(replay)


C = TypeVar("C")


def env_config(cls: type[C], config: C | None, overrides: dict[str, Any]) -> C:
    """`config` (or the defaults of `cls`) with `overrides` of its fields applied, each
    converted to its field's type (as the CLI converts), then the config's `validate()` when it
    has one. Raises RlpostError naming an unknown field or a value of the wrong type."""
    from rlpost.config import convert

    if config is not None and not isinstance(config, cls):
        raise RlpostError(f"config must be a {cls.__name__}, got {type(config).__name__}")
    base = config if config is not None else cls()
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(overrides) - set(hints))
    if unknown:
        raise RlpostError(f"{cls.__name__} has no field {', '.join(unknown)}; "
                          f"fields: {', '.join(sorted(hints))}")
    try:
        typed = {k: convert(hints[k], v, k) for k, v in overrides.items()}
    except RlpostError as e:
        raise RlpostError(f"{cls.__name__}: {str(e).lstrip('-')}") from None
    out = dataclasses.replace(base, **typed) if typed else base
    if hasattr(out, "validate"):
        out.validate()
    return out


def register(env_id: str, entry_point: str, max_turns: int) -> None:
    """Register `env_id` (``rlpost/<Name>-v<k>``) in gymnasium's registry with its entry point
    (``"module:Class"``, imported on first make) and its default turn limit."""
    if not env_id.startswith(NAMESPACE + "/"):
        raise ValueError(f"rlpost env ids live in the {NAMESPACE!r} namespace: {env_id!r}")
    gym.register(id=env_id, entry_point=entry_point, max_episode_steps=max_turns)


def _load_builtin_envs() -> None:
    import rlpost.envs  # noqa: F401  (registers the built-in envs)


def registered() -> list[str]:
    """Ids of the registered rlpost envs (built-in ones included)."""
    _load_builtin_envs()
    return sorted(k for k in gym.registry if k.startswith(NAMESPACE + "/"))


def make(env_id: str, config: Any = None, max_turns: int | None = None) -> gym.Env:
    """`gymnasium.make` of a registered env with its config dataclass (or None for the
    defaults); `max_turns` overrides the registered turn limit. Raises RlpostError on an
    unknown id."""
    if env_id not in registered():
        raise RlpostError(f"unknown env {env_id!r}; registered: {', '.join(registered())}")
    if max_turns is not None and max_turns < 1:  # gymnasium: 0 fails, < 0 drops the limit
        raise RlpostError(f"max_turns must be >= 1 (None = the registered limit), got {max_turns}")
    kwargs = {} if config is None else {"config": config}
    return gym.make(env_id, max_episode_steps=max_turns, **kwargs)


def time_limits(env: gym.Env) -> list[gym.wrappers.TimeLimit]:
    """The `TimeLimit` wrappers of `env`, outermost first (gymnasium counts their steps in
    `_elapsed_steps`)."""
    out = []
    while isinstance(env, gym.Wrapper):
        if isinstance(env, gym.wrappers.TimeLimit):
            out.append(env)
        env = env.env
    return out


def turn_limit(env: gym.Env) -> int | None:
    """The limit of the outermost `TimeLimit` wrapper of `env`; None when there is none."""
    limits = time_limits(env)
    return limits[0]._max_episode_steps if limits else None


def check_turn_limits(envs: Sequence[gym.Env], error: type[Exception] = RlpostError) -> None:
    """Raise `error` naming the first env without a turn limit (its episodes might not end)."""
    for env in envs:
        if turn_limit(env) is None:
            raise error(f"{env} has no turn limit: make it with rlpost.env.make or "
                        "gymnasium.make, or wrap it in gymnasium.wrappers.TimeLimit")


def chat(env: gym.Env) -> list[Message]:
    """The env's `messages()`, through any wrappers (a wrapper may provide them itself)."""
    return env.get_wrapper_attr("messages")()


def env_tasks(env: gym.Env, split: str) -> list[Any]:
    """The env's `tasks(split)`, through any wrappers."""
    return env.get_wrapper_attr("tasks")(split)


def _check_obs(obs: Any, where: str) -> None:
    assert isinstance(obs, dict), f"{where}: obs must be a dict, got {type(obs).__name__}"
    for key in ("text", "anchor"):
        assert isinstance(obs.get(key), str), f"{where}: obs[{key!r}] must be a str"


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


def check_env(env: gym.Env, n_random_actions: int = 200, seed: int = 0) -> None:
    """Assert that `env` (wrapped or not) honours rlpost's contract above; gymnasium's own
    checker (`gymnasium.utils.env_checker.check_env`) covers the gymnasium API. Raises
    AssertionError on a violation.

    Checks: task splits exist; reset is deterministic for a (seed, task); observations and info
    have the required keys; `messages()` is a non-empty chat; garbage actions never raise, are
    flagged invalid or handled as the env defines, and a replayed prefix reaches the same state.
    """
    rng = random.Random(seed)
    train, test = env_tasks(env, "train"), env_tasks(env, "test")
    assert train and test, "env must list train and test tasks"
    task = train[0]
    obs, info = env.reset(seed=seed, options={"task_id": task})
    _check_obs(obs, "reset")
    _check_info(info, "reset")
    assert info["task_id"] == task, "reset must honour options['task_id']"
    msgs = chat(env)
    assert msgs and all(isinstance(m, Message) for m in msgs), "messages() must be list[Message]"
    obs2, _ = env.reset(seed=seed, options={"task_id": task})
    assert obs2["text"] == obs["text"], "reset with the same seed and task must be deterministic"
    assert [m.content for m in chat(env)] == [m.content for m in msgs]

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
