"""GuessNumberEnv: parsing, higher/lower replies, invalid turns, chat history, splits, replay."""

from collections import Counter

import pytest

from rlpost.env import make, turn_limit
from rlpost.errors import RlpostError
from rlpost.envs.guess_number import (GuessNumberConfig, GuessNumberEnv, parse_guess, reply_for,
                                      secret_for)


def _solve(env: GuessNumberEnv) -> list[str]:
    """Binary search by the env's replies; returns the actions played."""
    lo, hi, played = 1, env.cfg.high, []
    while True:
        guess = (lo + hi) // 2
        played.append(f"My guess: {guess}")
        _, reward, term, _, info = env.step(played[-1])
        if term:
            assert reward == 1.0 and info["success"]
            return played
        lo, hi = (guess + 1, hi) if info["reply"] == "higher" else (lo, guess - 1)


@pytest.mark.parametrize("text,expected", [
    ("8", 8), ("I guess 12.", 12), ("+3", 3), ("007", 7), ("16", 16), ("1", 1),
    ("between 3 and 9", 3), ("0", None), ("17", None), ("-4", None), ("", None),
    ("eight", None), ("9" * 5000, None), ("1" + "0" * 7, None), ("x\x00 5", 5),
])
def test_parse_guess(text, expected):
    assert parse_guess(text, 1, 16) == expected


def test_secrets_balanced_over_splits():
    env = GuessNumberEnv()
    train, test = env.tasks("train"), env.tasks("test")
    assert train == list(range(64)) and test == list(range(64, 96))
    assert Counter(secret_for(t, 16) for t in train) == {v: 4 for v in range(1, 17)}
    assert Counter(secret_for(t, 16) for t in test) == {v: 2 for v in range(1, 17)}
    with pytest.raises(ValueError):
        env.tasks("dev")


def test_replies_rewards_and_messages():
    env = GuessNumberEnv()
    task = next(t for t in env.tasks("train") if secret_for(t, 16) == 11)
    obs, info = env.reset(options={"task_id": task})
    assert obs["text"] == "Your first guess?" and info["task_id"] == task
    assert [m.role for m in env.messages()] == ["system", "user"]

    obs, r, term, trunc, info = env.step(" I think 8 ")
    assert (r, term, trunc, info["valid"], info["reply"]) == (0.0, False, False, True, "higher")
    assert obs["text"] == "The secret number is higher than 8. Your next guess?"
    assert obs["anchor"] == repr((task, (8,)))
    _, r, _, _, info = env.step("14")
    assert info["reply"] == "lower" == reply_for(14, 11) and r == 0.0

    obs, r, term, trunc, info = env.step("11")
    assert (r, term, trunc, info["success"], info["guesses"]) == (1.0, True, False, True, 3)
    assert info["reward_components"] == {"solved": 1.0}
    msgs = env.messages()
    assert [m.role for m in msgs] == ["system", "user"] + ["assistant", "user"] * 3
    assert [m.content for m in msgs[2::2]] == ["I think 8", "14", "11"]
    assert msgs[-1].content == "Correct! The secret number is 11."

    # after the end: inert
    obs2, r, term, _, info = env.step("11")
    assert (r, term, info["valid"], obs2) == (0.0, True, False, obs)


def test_invalid_turn_leaves_state_unchanged():
    env = GuessNumberEnv()
    env.reset(options={"task_id": 3})
    env.step("5")
    before = (env._obs(), [m.content for m in env.messages()])
    for bad in ("", "no idea", "42", "0", "-1", "<answer></answer>", "9" * 10000):
        obs, r, term, trunc, info = env.step(bad)
        assert (r, term, trunc, info["valid"]) == (-0.1, False, False, False)
        assert info["success"] is False
        assert (obs, [m.content for m in env.messages()]) == before


def test_binary_search_solves_every_task_within_max_turns():
    env = make("rlpost/GuessNumber-v0")
    assert turn_limit(env) == 6
    env = env.unwrapped
    for t in env.tasks("train")[:16] + env.tasks("test"):
        env.reset(options={"task_id": t})
        assert len(_solve(env)) <= 5


def test_replay_reaches_the_played_state():
    env = GuessNumberEnv()
    task = next(t for t in env.tasks("train") if secret_for(t, 16) == 7)
    env.reset(options={"task_id": task})
    actions = ["4", "junk", "12", "99"]
    for a in actions:
        played = env.step(a)[0]
    played_msgs = [m.content for m in env.messages()]
    obs, info = env.reset(options={"task_id": task, "replay": actions})
    assert obs == played and [m.content for m in env.messages()] == played_msgs
    assert info["valid"] is False    # the info of the last replayed step


def test_reset_without_task_and_config():
    env = GuessNumberEnv(GuessNumberConfig(high=4, n_train=8, n_test=4, invalid_penalty=-1.0))
    a, ia = env.reset(seed=5)
    b, ib = env.reset(seed=5)
    assert a == b and ia["task_id"] in env.tasks("train")
    assert env.step("5")[1] == -1.0 and "between 1 and 4" in env.messages()[0].content
    for bad in (dict(high=0), dict(high=10**12), dict(n_train=0)):
        with pytest.raises(RlpostError, match=r"^GuessNumberConfig needs 1 <= high <= 10\*\*6"):
            GuessNumberEnv(GuessNumberConfig(**bad))
    with pytest.raises(RlpostError, match="invalid_penalty must be finite"):
        GuessNumberEnv(invalid_penalty="nan")
