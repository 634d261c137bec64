"""`rlpost/GuessNumber-v0`: a small multi-turn env (guess a secret number, told higher/lower).

The secret is in [1, 16], fixed by the task id. Each turn the agent answers with a number; the
first integer in its text is the guess. Reward 1.0 when it guesses the secret (episode ends);
a turn without an integer in range is invalid: state unchanged, reward -0.1. Six turns at most
(binary search needs four). Tasks 0..63 train, 64..95 test.
"""

from __future__ import annotations

import random
import re
from typing import Any

from rlpost.env import Env, Observation
from rlpost.types import Message

LOW, HIGH = 1, 16
INVALID_PENALTY = -0.1
SYSTEM = (f"I am thinking of a whole number between {LOW} and {HIGH}. Guess it. Answer with one "
          "number per turn; I will say whether the secret is higher or lower.")


class GuessNumberEnv(Env):
    max_turns = 6

    def __init__(self, config: None = None):
        self.task_id: int | None = None
        self.secret, self.history, self.done = 0, [], True

    def tasks(self, split: str) -> list[int]:
        if split == "train":
            return list(range(64))
        if split == "test":
            return list(range(64, 96))
        raise ValueError(f"unknown split {split!r}; use 'train' or 'test'")

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[Observation, dict[str, Any]]:
        options = options or {}
        task = options.get("task_id")
        self.task_id = int(task) if task is not None else random.Random(seed).randrange(64)
        self.secret = random.Random(self.task_id).randint(LOW, HIGH)
        self.history, self.done = [], False
        obs, info = self._obs(), {"task_id": self.task_id, "valid": True, "reward_components": {}}
        for action in options.get("replay", []):
            obs, _, term, trunc, info = self.step(action)
            if term or trunc:
                break
        return obs, info

    def _obs(self) -> Observation:
        text = " ".join(f"{g}:{r}" for g, r in self.history) or "start"
        return {"text": text, "images": [], "anchor": (self.task_id, tuple(self.history))}

    def messages(self) -> list[Message]:
        msgs = [Message("system", SYSTEM), Message("user", "Your first guess?")]
        for guess, reply in self.history:
            msgs += [Message("assistant", str(guess)), Message("user", f"{reply}. Next guess?")]
        return msgs

    def step(self, action: str) -> tuple[Observation, float, bool, bool, dict[str, Any]]:
        info: dict[str, Any] = {"task_id": self.task_id}
        if self.done:
            info.update(valid=False, success=False, reward_components={"solved": 0.0})
            return self._obs(), 0.0, True, False, info
        m = re.search(r"-?\d+", action)
        guess = int(m.group()) if m and len(m.group()) < 6 else None
        if guess is None or not LOW <= guess <= HIGH:
            info.update(valid=False, reward_components={"solved": 0.0})
            return self._obs(), INVALID_PENALTY, False, False, info
        reply = "correct" if guess == self.secret else ("higher" if self.secret > guess else "lower")
        self.history.append((guess, reply))
        solved = guess == self.secret
        self.done = solved
        info.update(valid=True, success=solved, guesses=len(self.history),
                    reward_components={"solved": float(solved)})
        return self._obs(), float(solved), solved, False, info
