"""rlpost envs are gymnasium envs: registered under the rlpost namespace with their turn limit,
made by gymnasium.make with config keyword arguments, and passing gymnasium's own checker."""

from __future__ import annotations

import warnings

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from rlpost.envs.webshop.env import WebShopConfig

from rlpost.env import TextSpace, env_config, make, registered, turn_limit
from rlpost.errors import RlpostError

LIMITS = {"rlpost/Classification-v0": 1, "rlpost/GuessNumber-v0": 6, "rlpost/WebShop-v0": 15,
          "rlpost/ToolUse-v0": 1, "rlpost/ToolUseMultiTurn-v0": 32}


def test_registered_in_gymnasiums_registry_with_their_turn_limits():
    assert set(LIMITS) <= set(registered())
    for env_id, limit in LIMITS.items():
        assert gym.registry[env_id].max_episode_steps == limit
        assert turn_limit(make(env_id)) == limit
        assert turn_limit(make(env_id, max_turns=limit + 2)) == limit + 2


@pytest.mark.parametrize("env_id", sorted(LIMITS))
def test_gymnasiums_checker_passes_without_warnings(env_id):
    """On the bare env, as gymnasium advises (the TimeLimit wrapper would only add its own
    "different from the unwrapped version" warning); every other warning fails the test."""
    env = gym.make(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gym_check_env(env.unwrapped)


def test_gymnasium_make_takes_config_keyword_arguments():
    import rlpost.envs  # noqa: F401  (registers the envs, as a user does)

    env = gym.make("rlpost/WebShop-v0", max_history=1, n_test=50)
    assert env.unwrapped.config == WebShopConfig(max_history=1, n_test=50)
    obs, info = env.reset(seed=3)
    assert isinstance(obs["text"], str) and info["task_id"] in env.unwrapped.tasks("train")
    # a whole config and overrides of it
    env = gym.make("rlpost/GuessNumber-v0", high=8)
    assert env.unwrapped.cfg.high == 8 and "between 1 and 8" in env.unwrapped.system
    with pytest.raises(RlpostError, match="WebShopConfig has no field max_steps"):
        gym.make("rlpost/WebShop-v0", max_steps=3)
    with pytest.raises(RlpostError, match="env.n_test must be >= 1"):
        gym.make("rlpost/WebShop-v0", n_test=0)


def test_env_config_applies_overrides_to_a_copy():
    base = WebShopConfig(n_test=7)
    out = env_config(WebShopConfig, base, {"max_history": 2})
    assert out == WebShopConfig(n_test=7, max_history=2) and base.max_history is None
    assert env_config(WebShopConfig, base, {}) is base


def test_env_keyword_arguments_are_converted_to_their_types_and_validated():
    """gymnasium.make's keywords are untyped: each is converted as the CLI converts it, and a
    value no env can use is a one-line error naming the config (not a TypeError mid-step)."""
    from rlpost.envs.classification import ClassificationConfig
    from rlpost.envs.guess_number import GuessNumberConfig

    assert env_config(WebShopConfig, None, {"max_history": "2"}).max_history == 2
    assert env_config(WebShopConfig, None, {"max_history": "none"}).max_history is None
    with pytest.raises(RlpostError, match="^WebShopConfig: max_history: expected int, got 'x'$"):
        gym.make("rlpost/WebShop-v0", max_history="x")
    with pytest.raises(RlpostError, match="^prompt_style: 'both' is not one of think, answer$"
                       .replace("^", "^ClassificationConfig: ")):
        env_config(ClassificationConfig, None, {"prompt_style": "both"})
    with pytest.raises(RlpostError, match="demos >= 0"):
        gym.make("rlpost/Classification-v0", demos=-1)
    with pytest.raises(RlpostError, match="^GuessNumberConfig needs 1 <= high"):
        env_config(GuessNumberConfig, None, {"high": 0})
    with pytest.raises(RlpostError, match="^config must be a WebShopConfig, got GuessNumberConfig$"):
        gym.make("rlpost/WebShop-v0", config=GuessNumberConfig())


def test_unknown_env_and_namespace():
    with pytest.raises(RlpostError, match="unknown env 'rlpost/Nope-v0'; registered: "):
        make("rlpost/Nope-v0")
    from rlpost.env import register

    with pytest.raises(ValueError, match="namespace"):
        register("Other-v0", "x:Y", max_turns=1)


def test_reset_without_a_task_draws_it_from_the_seed():
    env = make("rlpost/GuessNumber-v0").unwrapped
    tasks = [env.reset(seed=s)[1]["task_id"] for s in range(30)]
    assert tasks == [env.reset(seed=s)[1]["task_id"] for s in range(30)]
    assert len(set(tasks)) > 10 and set(tasks) <= set(env.tasks("train"))


def test_text_space_holds_any_string_up_to_its_length():
    space = TextSpace(5)
    assert space.contains("é中 \x00") and space.contains("")
    assert not space.contains("x" * 6) and not space.contains(3)
    assert isinstance(space.sample(), str)


def test_reset_info_carries_the_task_record_with_its_ground_truth():
    env = make("rlpost/Classification-v0").unwrapped
    task = env.tasks("test")[2]
    _, info = env.reset(options={"task_id": task})
    ex = env.data.examples[task]
    assert info["task"] == {"task_id": task, "dataset": env.cfg.dataset, "label": ex.label,
                            "record": ex.text, "candidates": env.candidates(task)}
    env = make("rlpost/WebShop-v0").unwrapped
    task = env.tasks("test")[0]
    _, info = env.reset(options={"task_id": task, "replay": ["search[x]"]})
    goal = env.shop.goals[task]
    assert (info["task"]["asin"], info["task"]["instruction"]) == (goal["asin"],
                                                                  goal["instruction_text"])
    env = make("rlpost/GuessNumber-v0").unwrapped
    _, info = env.reset(options={"task_id": 3, "replay": ["1"]})
    assert info["task"] == {"task_id": 3, "secret": env.secret, "high": 16}


def test_non_text_actions_are_invalid_never_exceptions():
    """A user's bug report: WebShop raised TypeError on None / int actions."""
    for env_id in LIMITS:
        env = make(env_id)
        env.reset(seed=0)
        for action in (None, 3, b"click[x]", ["search[x]"]):
            *_, info = env.step(action)
            assert info["valid"] is False, (env_id, action)
    env = make("rlpost/WebShop-v0").unwrapped
    task = env.tasks("train")[0]
    env.reset(options={"task_id": task, "replay": ["search[shoes]", None]})
    assert env.actions == ["search[shoes]"]


@pytest.mark.parametrize("env_id", sorted(LIMITS))
def test_an_action_longer_than_the_action_space_is_invalid(env_id):
    """An action that would be valid but for its length (beyond the action space's 4096
    characters) gets the env's invalid-action treatment, and none of it is copied into info."""
    from rlpost.env import MAX_ACTION_CHARS

    env = make(env_id)
    _, info = env.reset(seed=0)
    pad = " " * MAX_ACTION_CHARS
    action = {"rlpost/GuessNumber-v0": lambda: "1" + pad,
              "rlpost/WebShop-v0": lambda: "search[" + "shoe " * (MAX_ACTION_CHARS // 5) + "]",
              "rlpost/ToolUse-v0": lambda: "[]" + pad,
              "rlpost/ToolUseMultiTurn-v0": lambda: "[ls(a=True)]" + pad,
              "rlpost/Classification-v0": lambda: f"<think>x</think><answer>"
                                                  f"{info['task']['label']}</answer>{pad}"}[env_id]()
    assert len(action) > MAX_ACTION_CHARS and env.action_space.contains(action.strip()[:4000])
    *_, info = env.step(action)
    assert info["valid"] is False and len(repr(info)) < MAX_ACTION_CHARS


@pytest.mark.parametrize("env_id", sorted(LIMITS))
def test_task_ids_and_replays_are_checked_the_same_in_every_env(env_id):
    import numpy as np

    env = make(env_id).unwrapped
    n = len(env.tasks("train")) + len(env.tasks("test"))
    for bad in (-1, 10**9, "3", True, 2.0):
        with pytest.raises(RlpostError, match=r"^\w+Env: task_id must be an int in \[0, "):
            env.reset(options={"task_id": bad})
    assert env.reset(options={"task_id": np.int64(3)})[1]["task_id"] == 3 and n > 3
    with pytest.raises(RlpostError, match=r"options\['replay'\] must be a list of actions, got str"):
        env.reset(options={"task_id": 3, "replay": "search[x]"})
