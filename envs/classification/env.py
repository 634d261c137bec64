"""`rlpost/Classification-v0`: single-turn few-shot classification with CLS-RL's prompts and
rewards (CLS-RL, arXiv 2503.16188; code minglllli/CLS-RL).

Task ids are indices into the dataset's examples; the train split holds `shots_per_class`
examples of each class (k-shot) and the test split `n_test` other examples, balanced over the
classes where the data allows. Both splits and each task's candidate order are fixed by
`split_seed`, so a task's prompt never changes.

Rewards (the env's own; the format reward is a separate `rlpost.reward.think_answer_format`):
- ``prompt_style="think"`` (CLS-RL): accuracy = 1 iff the ``<answer>`` content (the whole
  output when there is no tag), stripped and lower-cased, equals the label lower-cased.
- ``prompt_style="answer"`` (No-Thinking-CLS-RL): 1 iff the completion equals the label exactly
  (case-sensitive, no stripping, as the paper's code compares them).
An empty (whitespace-only) action is invalid and scores 0; there is no other penalty.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Literal

from rlpost.env import Env, Observation
from rlpost.envs.classification.data import load_dataset
from rlpost.reward import extract_answer
from rlpost.types import Message

THINK_SUFFIX = ("\n Please output the thinking process in <think> </think> and final answer in "
                "<answer> </answer> tags.")
ANSWER_SUFFIX = "\n Please directly output the answer."


@dataclass
class ClassificationConfig:
    """Which data and which prompt/reward variant."""

    dataset: str = "topics"
    """topics | sentiment | digits | iris | wine | breast_cancer."""
    prompt_style: Literal["think", "answer"] = "think"
    """think = CLS-RL (think/answer tags); answer = No-Thinking-CLS-RL (answer only)."""
    shots_per_class: int = 16
    """k: training examples per class (the train split)."""
    n_test: int = 200
    """Held-out examples (the test split), disjoint from train."""
    candidates: Literal["all", "cls_rl"] = "all"
    """Candidate list: all classes, or CLS-RL's rule (40% of classes clipped to [30, 100])."""
    split_seed: int = 0
    """Fixes the splits and every task's candidate order."""


def cls_rl_candidates(classes: list[str], label: str, rng: random.Random) -> list[str]:
    """CLS-RL's candidate list: k = 40% of the classes clipped to [30, 100] (all classes when
    there are fewer than 30), ground truth included, shuffled."""
    if len(classes) < 30:
        out = list(classes)
    else:
        k = min(max(round(0.4 * len(classes)), 30), 100, len(classes))
        others = [c for c in classes if c != label]
        out = rng.sample(others, k - 1) + [label]
    rng.shuffle(out)
    return out


def make_splits(labels: list[str], shots: int, n_test: int, seed: int) -> tuple[list[int], list[int]]:
    """k-shot train indices and balanced held-out test indices (round-robin over classes)."""
    rng = random.Random(seed)
    by_class: dict[str, list[int]] = {}
    for i, y in enumerate(labels):
        by_class.setdefault(y, []).append(i)
    for idx in by_class.values():
        rng.shuffle(idx)
    train = sorted(i for idx in by_class.values() for i in idx[:shots])
    pools = [idx[shots:] for idx in by_class.values()]
    test: list[int] = []
    while len(test) < n_test and any(pools):
        for pool in pools:
            if pool and len(test) < n_test:
                test.append(pool.pop())
    return train, sorted(test)


class ClassificationEnv(Env):
    max_turns = 1

    def __init__(self, config: ClassificationConfig | None = None):
        self.cfg = config or ClassificationConfig()
        self.data = load_dataset(self.cfg.dataset)
        labels = [e.label for e in self.data.examples]
        self._train, self._test = make_splits(labels, self.cfg.shots_per_class, self.cfg.n_test,
                                              self.cfg.split_seed)
        self.task_id: int | None = None
        self.done = True

    def tasks(self, split: str) -> list[int]:
        if split == "train":
            return list(self._train)
        if split == "test":
            return list(self._test)
        raise ValueError(f"unknown split {split!r}; use 'train' or 'test'")

    def prompt(self, task_id: int) -> str:
        ex = self.data.examples[task_id]
        rng = random.Random(self.cfg.split_seed * 1_000_003 + task_id)
        if self.cfg.candidates == "cls_rl":
            cands = cls_rl_candidates(list(self.data.classes), ex.label, rng)
        else:
            cands = list(self.data.classes)
            rng.shuffle(cands)
        suffix = THINK_SUFFIX if self.cfg.prompt_style == "think" else ANSWER_SUFFIX
        return (f"{self.data.question}\n{ex.text}\n"
                f"Please choose one from the list [{', '.join(cands)}].{suffix}")

    def _obs(self) -> Observation:
        text = "" if self.done or self.task_id is None else self.prompt(self.task_id)
        return {"text": text, "images": [], "anchor": self.task_id}

    def _info(self, **extra: Any) -> dict[str, Any]:
        label = None if self.task_id is None else self.data.examples[self.task_id].label
        return {"task_id": self.task_id, "label": label, **extra}

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[Observation, dict[str, Any]]:
        options = options or {}
        task = options.get("task_id")
        if task is None:
            task = random.Random(seed).choice(self._train)
        if not 0 <= int(task) < len(self.data.examples):
            raise ValueError(f"task_id {task} out of range for dataset {self.cfg.dataset!r}")
        self.task_id, self.done = int(task), False
        obs, info = self._obs(), self._info(valid=True, reward_components={})
        for action in options.get("replay", []):
            obs, _, term, trunc, info = self.step(action)
            if term or trunc:
                break
        return obs, info

    def messages(self) -> list[Message]:
        if self.task_id is None:
            raise RuntimeError("call reset() before messages()")
        return [Message("user", self.prompt(self.task_id))]

    def score(self, action: str) -> tuple[float, str]:
        """(accuracy, parsed prediction) of `action` for the current task."""
        label = self.data.examples[self.task_id].label
        if self.cfg.prompt_style == "think":
            pred = extract_answer(action)
            return float(pred.strip().lower() == label.lower()), pred
        return float(action == label), action

    def step(self, action: str) -> tuple[Observation, float, bool, bool, dict[str, Any]]:
        if self.done or self.task_id is None:
            info = self._info(valid=False, success=False, reward_components={"accuracy": 0.0})
            return self._obs(), 0.0, True, False, info
        valid = bool(action.strip())
        reward, pred = self.score(action) if valid else (0.0, "")
        self.done = True
        info = self._info(valid=valid, prediction=pred, success=reward == 1.0,
                          reward_components={"accuracy": reward})
        return self._obs(), reward, True, False, info
