"""`rlpost/Classification-v0`: single-turn few-shot classification with CLS-RL's prompts and
rewards (CLS-RL, arXiv 2503.16188; code minglllli/CLS-RL).

Task ids are global: the index of an example in its dataset (`data.load_examples`). The train
split holds `shots_per_class` examples of each class (k-shot) and the test split up to `n_test`
other examples, balanced over the classes where the data allows; the two id sets are disjoint,
so one id names one example whatever split it came from. The splits and each task's candidate
order are fixed by `split_seed`, so a task's prompt never changes.

Prompt (one user message, no system message)::

    {question}
    {record}
     Please choose one from list [c_1, c_2, ..., c_k].{suffix}

with CLS-RL's suffixes `THINK_SUFFIX` / `ANSWER_SUFFIX` (note the space after the newline).

Reward (the env's own accuracy; the format reward is `rlpost.reward.think_answer_format`,
added by the recipe through a Rubric):

- ``prompt_style="think"`` (CLS-RL): 1.0 iff the ``<answer>`` content (the whole output when
  there is no tag, as in CLS-RL), stripped and lower-cased, equals the label lower-cased.
- ``prompt_style="answer"`` (No-Thinking-CLS-RL): 1.0 iff the completion equals the label
  exactly: case-sensitive and not stripped, as the paper's code compares them. A trailing
  newline or space therefore scores 0; that is the paper's rule, kept on purpose.

Every step ends the episode (one answer per task). ``info["valid"]`` is False when there is no
answer to grade: an empty or whitespace-only completion, or (think style) an empty
``<answer></answer>`` tag. An invalid answer scores 0.0 like any wrong one; there is no extra
penalty. Stepping after the end never raises: reward 0.0, valid False, terminated True.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Literal

from rlpost.env import Env, Observation, env_config
from rlpost.envs.classification.data import DATASETS, Dataset, digit_image, load_dataset
from rlpost.envs.classification.splits import candidates_for, make_splits
from rlpost.errors import RlpostError
from rlpost.reward import extract_answer
from rlpost.types import Message

THINK_SUFFIX = ("\n Please output the thinking process in <think> </think> and final answer in "
                "<answer> </answer> tags.")
ANSWER_SUFFIX = "\n Please directly output the answer."
IMAGE_SIZE = 112
"""Side in pixels of digit images (14 x 8: whole 14-px patches for Qwen2-VL-style encoders)."""


@dataclass
class ClassificationConfig:
    """Which data, which splits and which prompt/reward variant."""

    dataset: str = "topics"
    """topics | sentiment | digits | iris | wine | breast_cancer."""
    prompt_style: Literal["think", "answer"] = "think"
    """think = CLS-RL (think/answer tags); answer = No-Thinking-CLS-RL (answer only)."""
    shots_per_class: int = 16
    """k: training examples per class (the train split)."""
    n_test: int = 200
    """Held-out examples (the test split), disjoint from train; fewer if the data runs out."""
    candidates: Literal["all", "cls_rl"] = "all"
    """Candidate list: all classes shuffled, or CLS-RL's rule (40% of the classes clipped to
    [30, 100], all when fewer than 30, ground truth included, shuffled)."""
    split_seed: int = 0
    """Fixes the splits, every task's candidate order and its demonstrations."""
    demos: int = 0
    """In-context demonstrations (earlier user/assistant turns, drawn from the train split) that
    show the answer format; 0 = the paper's plain prompt. Small models need 1-2 to ever hit
    the format, without which GRPO sees no reward signal."""
    images: bool = False
    """digits only: show the digit as a 112x112 image (obs["images"] and the user message)
    instead of the ASCII grid, for vision-language models."""

    def validate(self) -> None:
        """Raise RlpostError on a value no env can be built from."""
        if self.dataset not in DATASETS:
            raise RlpostError(f"unknown dataset {self.dataset!r}; "
                              f"choose from {', '.join(DATASETS)}")
        if self.prompt_style not in ("think", "answer"):
            raise RlpostError(f"prompt_style must be 'think' or 'answer', "
                              f"got {self.prompt_style!r}")
        if self.candidates not in ("all", "cls_rl"):
            raise RlpostError(f"candidates must be 'all' or 'cls_rl', got {self.candidates!r}")
        if self.shots_per_class < 1 or self.n_test < 0 or self.demos < 0:
            raise RlpostError("shots_per_class must be >= 1, n_test >= 0 and demos >= 0")
        if self.images and self.dataset != "digits":
            raise RlpostError("images=True needs dataset='digits' (the only image dataset)")


def build_prompt(question: str, record: str, candidates: list[str], style: str) -> str:
    """The user message: CLS-RL's problem (question, record, candidate list) plus its suffix."""
    suffix = THINK_SUFFIX if style == "think" else ANSWER_SUFFIX
    body = f"{question}\n{record}" if record else question
    return f"{body}\n Please choose one from list [{', '.join(candidates)}].{suffix}"


def grade(action: str, label: str, style: str) -> tuple[float, str, bool]:
    """(accuracy, prediction, valid) of one completion; see the module docstring for the rules."""
    if style == "think":
        pred = extract_answer(action)
        return float(pred.strip().lower() == label.lower()), pred, bool(pred.strip())
    return float(action == label), action, bool(action.strip())


class ClassificationEnv(Env):
    """Single-turn classification; see the module docstring for tasks, prompt and reward."""

    def __init__(self, config: ClassificationConfig | None = None, **overrides: Any):
        super().__init__()
        self.cfg = env_config(ClassificationConfig, config, overrides)
        self.data: Dataset = load_dataset(self.cfg.dataset)
        labels = [e.label for e in self.data.examples]
        self._train, self._test = make_splits(labels, self.cfg.shots_per_class, self.cfg.n_test,
                                              self.cfg.split_seed)
        self.task_id: int | None = None
        self.done = True
        self.success = False
        self._prompt = ""

    def tasks(self, split: str) -> list[int]:
        """Task ids (global example indices) of ``"train"`` or ``"test"``."""
        if split == "train":
            return list(self._train)
        if split == "test":
            return list(self._test)
        raise ValueError(f"unknown split {split!r}; use 'train' or 'test'")

    def candidates(self, task_id: int) -> list[str]:
        """The candidate class names shown for `task_id`, in prompt order."""
        label = self.data.examples[task_id].label
        return candidates_for(list(self.data.classes), label, self.cfg.candidates,
                              self.cfg.split_seed, task_id)

    def prompt(self, task_id: int) -> str:
        """The user message of `task_id` (stable across processes)."""
        ex = self.data.examples[task_id]
        if self.cfg.images:
            question, record = self.data.image_question, ""
        else:
            question, record = self.data.question, ex.text
        return build_prompt(question, record, self.candidates(task_id), self.cfg.prompt_style)

    def _images(self) -> list[Any]:
        if not self.cfg.images or self.task_id is None:
            return []
        return [digit_image(self.data.examples[self.task_id].pixels, IMAGE_SIZE)]

    def _obs(self) -> Observation:
        live = not self.done and self.task_id is not None
        return {"text": self._prompt if live else "", "anchor": str(self.task_id)}

    def _label(self) -> str | None:
        return None if self.task_id is None else self.data.examples[self.task_id].label

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[Observation, dict[str, Any]]:
        """Start task ``options["task_id"]`` (any example index), else a train task drawn with
        `seed`; then apply ``options["replay"]`` (the first action ends it)."""
        super().reset(seed=seed)
        self.task_id, replay = self.reset_options(options, len(self.data.examples))
        self.done, self.success = False, False
        self._prompt = self.prompt(self.task_id)
        obs: Observation = self._obs()
        info: dict[str, Any] = {"task_id": self.task_id, "label": self._label(), "valid": True,
                                "reward_components": {}}
        for action in replay:
            obs, _, terminated, truncated, info = self.step(action)
            if terminated or truncated:
                break
        ex = self.data.examples[self.task_id]
        task_record = {"task_id": self.task_id, "dataset": self.cfg.dataset, "label": ex.label,
                       "record": ex.text, "candidates": self.candidates(self.task_id)}
        return obs, {**info, "task": task_record}

    def demonstration(self, task_id: int) -> str:
        """The answer a demonstration shows for a train task, in the prompt style's format."""
        label = self.data.examples[task_id].label
        if self.cfg.prompt_style == "think":
            return f"<think> The record points to {label}. </think> <answer>{label}</answer>"
        return label

    def _demo_tasks(self) -> list[int]:
        """`demos` train tasks other than this one, of different labels while labels last."""
        rng = random.Random(f"demos:{self.cfg.split_seed}:{self.task_id}")
        pool = [t for t in self._train if t != self.task_id]
        rng.shuffle(pool)
        picked: list[int] = []
        for t in pool:
            seen = {self.data.examples[p].label for p in picked}
            if self.data.examples[t].label not in seen or len(seen) == len(self.data.classes):
                picked.append(t)
            if len(picked) == self.cfg.demos:
                break
        return picked

    def messages(self) -> list[Message]:
        """`demos` demonstration turns (train tasks other than this one), then one user message
        holding the prompt (and the digit image when `images`)."""
        if self.task_id is None:
            raise RuntimeError("call reset() before messages()")
        msgs = []
        if self.cfg.demos:
            for d in self._demo_tasks():
                images = [digit_image(self.data.examples[d].pixels, IMAGE_SIZE)] \
                    if self.cfg.images else []
                msgs += [Message("user", self.prompt(d), images=images),
                         Message("assistant", self.demonstration(d))]
        return msgs + [Message("user", self._prompt, images=self._images())]

    def step(self, action: str) -> tuple[Observation, float, bool, bool, dict[str, Any]]:
        """Grade the answer and end the episode."""
        label = self._label()
        if self.done or label is None:
            info = {"task_id": self.task_id, "label": label, "valid": False, "prediction": "",
                    "success": self.success, "reward_components": {"accuracy": 0.0}}
            return self._obs(), 0.0, True, False, info
        text = self.action_text(action)
        reward, pred, valid = grade(text, label, self.cfg.prompt_style)
        self.done, self.success = True, reward == 1.0
        info = {"task_id": self.task_id, "label": label, "valid": valid, "prediction": pred,
                "success": self.success, "reward_components": {"accuracy": reward}}
        return self._obs(), reward, True, False, info
