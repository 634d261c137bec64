"""`rlpost/GuessNumber-v0`: a small multi-turn env for testing multi-turn rollouts.

The env holds a secret whole number in [1, `high`] (16 by default), fixed by the task id. Each
turn the agent answers in free text; the first integer in it is the guess (`parse_guess`).

- A guess in range is valid: the env replies "higher" or "lower" (or "correct"), the guess
  joins the history. Reward 1.0 when it is the secret (the episode terminates, success),
  0.0 otherwise.
- A turn without an integer, or with one out of range, is invalid: ``info["valid"] = False``,
  the state (history, messages, observation) is unchanged, reward `invalid_penalty` (-0.1).
- The env never ends an episode by itself except on success: the length limit is the
  registered turn limit (6; binary search over 16 values needs at most 5).
- Stepping after success never raises: reward 0.0, valid False, terminated True.

Tasks: ids ``0 .. n_train-1`` train, ``n_train .. n_train+n_test-1`` test. The secret of task
``t`` is ``perm[t % high]`` for a fixed seeded permutation of 1..high, so every block of `high`
consecutive ids holds each secret once: with the defaults (64 / 32 ids) both splits are
balanced over all 16 secrets.

History becomes chat as: system prompt, "Your first guess?", then per valid guess the
agent's own text (stripped) as an assistant message and the env's reply as a user message.
"""

from __future__ import annotations

import random
import re
import math
from dataclasses import dataclass
from typing import Any

from rlpost.env import Env, Observation, env_config
from rlpost.errors import RlpostError
from rlpost.types import Message

_INT_RE = re.compile(r"[-+]?\d+")
MAX_DIGITS = 6
"""Longer digit runs are never in range; they are rejected before int() (which caps digits)."""


@dataclass
class GuessNumberConfig:
    """Size of the game, its splits and its penalty."""

    high: int = 16
    """Secrets are whole numbers in [1, high]."""
    n_train: int = 64
    """Train task ids: 0 .. n_train - 1."""
    n_test: int = 32
    """Test task ids: the next n_test ids."""
    invalid_penalty: float = -0.1
    """Reward of a turn without a parseable in-range guess (state unchanged)."""

    def validate(self) -> None:
        """Raise RlpostError on a game no env can be built for."""
        if not 1 <= self.high <= 10**6 or self.n_train < 1 or self.n_test < 0:
            raise RlpostError("GuessNumberConfig needs 1 <= high <= 10**6, n_train >= 1, "
                              "n_test >= 0")
        if not math.isfinite(self.invalid_penalty):
            raise RlpostError("GuessNumberConfig: invalid_penalty must be finite")


@dataclass(frozen=True)
class Turn:
    """One valid guess: the agent's text, the parsed guess and the env's reply."""

    text: str
    guess: int
    reply: str
    """"higher" (the secret is higher), "lower" or "correct"."""


def parse_guess(text: str, low: int, high: int) -> int | None:
    """The first integer in `text` if it lies in [low, high], else None."""
    m = _INT_RE.search(text)
    if m is None or len(m.group().lstrip("+-")) > MAX_DIGITS:
        return None
    value = int(m.group())
    return value if low <= value <= high else None


def secret_for(task_id: int, high: int) -> int:
    """The secret of `task_id`: a fixed seeded permutation of 1..high, indexed cyclically."""
    perm = random.Random(f"guess-number:{high}").sample(range(1, high + 1), high)
    return perm[task_id % high]


def reply_for(guess: int, secret: int) -> str:
    """'correct', or where the secret lies relative to the guess."""
    if guess == secret:
        return "correct"
    return "higher" if secret > guess else "lower"


class GuessNumberEnv(Env):
    """Guess the secret number with higher/lower hints; see the module docstring."""

    def __init__(self, config: GuessNumberConfig | None = None, **overrides: Any):
        super().__init__()
        self.cfg = env_config(GuessNumberConfig, config, overrides)
        self.system = (f"I am thinking of a whole number between 1 and {self.cfg.high}. Find it "
                       "in as few guesses as possible. Each turn, answer with a single number; "
                       "I will tell you whether the secret number is higher or lower.")
        self.task_id: int | None = None
        self.secret = 0
        self.history: list[Turn] = []
        self.done = True

    def tasks(self, split: str) -> list[int]:
        """Task ids of ``"train"`` or ``"test"`` (disjoint ranges)."""
        if split == "train":
            return list(range(self.cfg.n_train))
        if split == "test":
            return list(range(self.cfg.n_train, self.cfg.n_train + self.cfg.n_test))
        raise ValueError(f"unknown split {split!r}; use 'train' or 'test'")

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[Observation, dict[str, Any]]:
        """Start task ``options["task_id"]`` (else a train task drawn with `seed`), then apply
        ``options["replay"]`` until the episode ends."""
        super().reset(seed=seed)
        self.task_id, replay = self.reset_options(options, self.cfg.n_train + self.cfg.n_test)
        self.secret = secret_for(self.task_id, self.cfg.high)
        self.history, self.done = [], False
        obs = self._obs()
        info: dict[str, Any] = {"task_id": self.task_id, "valid": True, "reward_components": {}}
        for action in replay:
            obs, _, terminated, truncated, info = self.step(action)
            if terminated or truncated:
                break
        task_record = {"task_id": self.task_id, "secret": self.secret, "high": self.cfg.high}
        return obs, {**info, "task": task_record}

    def _reply_text(self, turn: Turn) -> str:
        if turn.reply == "correct":
            return f"Correct! The secret number is {turn.guess}."
        return f"The secret number is {turn.reply} than {turn.guess}. Your next guess?"

    def _obs(self) -> Observation:
        text = self._reply_text(self.history[-1]) if self.history else "Your first guess?"
        anchor = repr((self.task_id, tuple(t.guess for t in self.history)))
        return {"text": text, "anchor": anchor}

    def messages(self) -> list[Message]:
        """System prompt, first question, then (agent text, env reply) per valid guess."""
        if self.task_id is None:
            raise RuntimeError("call reset() before messages()")
        msgs = [Message("system", self.system), Message("user", "Your first guess?")]
        for turn in self.history:
            msgs += [Message("assistant", turn.text), Message("user", self._reply_text(turn))]
        return msgs

    def step(self, action: str) -> tuple[Observation, float, bool, bool, dict[str, Any]]:
        """Apply one guess; see the module docstring for rewards and validity."""
        info: dict[str, Any] = {"task_id": self.task_id, "guesses": len(self.history)}
        if self.done:
            solved = bool(self.history) and self.history[-1].reply == "correct"
            info.update(valid=False, success=solved, reward_components={"solved": 0.0})
            return self._obs(), 0.0, True, False, info
        text = self.action_text(action)
        guess = parse_guess(text, 1, self.cfg.high)
        if guess is None:
            info.update(valid=False, success=False, reward_components={"solved": 0.0})
            return self._obs(), float(self.cfg.invalid_penalty), False, False, info
        turn = Turn(text.strip(), guess, reply_for(guess, self.secret))
        self.history.append(turn)
        solved = turn.reply == "correct"
        self.done = solved
        info.update(valid=True, success=solved, guess=guess, reply=turn.reply,
                    guesses=len(self.history), reward_components={"solved": float(solved)})
        return self._obs(), float(solved), solved, False, info
