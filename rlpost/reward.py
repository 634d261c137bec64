"""Reward functions and the weighted `Rubric` that combines them with the env's own reward.

A `RewardFn` maps a batch of trajectories to one float each and has a `__name__` saying what it
rewards. Learned reward models and LLM judges are RewardFns too. In a `Rubric`, weight 0 makes a
function a metric only: it is logged under ``reward/<name>`` but does not enter the total.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from rlpost.types import Trajectory


class RewardFn(Protocol):
    __name__: str

    def __call__(self, trajs: list[Trajectory]) -> list[float]: ...


@dataclass
class Rubric:
    """total = env_weight * env reward + sum_i weights[i] * funcs[i](trajs)."""

    funcs: Sequence[RewardFn] = ()
    weights: Sequence[float] = ()
    env_weight: float = 1.0
    names: list[str] = field(init=False)

    def __post_init__(self) -> None:
        if not self.weights:
            self.weights = [1.0] * len(self.funcs)
        if len(self.weights) != len(self.funcs):
            raise ValueError(f"Rubric: {len(self.funcs)} funcs but {len(self.weights)} weights")
        self.names = [f.__name__ for f in self.funcs]

    def __call__(self, trajs: list[Trajectory]) -> None:
        """Fill `reward` and `components` of each trajectory in place."""
        scores = [list(map(float, f(trajs))) for f in self.funcs]
        for i, t in enumerate(trajs):
            comps = {"env": t.env_reward}
            for key, value in t.final_info.get("reward_components", {}).items():
                comps[f"env/{key}"] = float(value)
            total = self.env_weight * t.env_reward
            for name, w, s in zip(self.names, self.weights, scores):
                comps[name] = s[i]
                total += w * s[i]
            t.components, t.reward = comps, total


# --- common rule rewards -------------------------------------------------------------------

THINK_ANSWER_RE = re.compile(r"<think>.*?</think>\s*<answer>.*?</answer>", re.DOTALL)
ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


def think_answer_format(trajs: list[Trajectory]) -> list[float]:
    """1 iff the completion is exactly ``<think>...</think> <answer>...</answer>`` (R1-V/CLS-RL)."""
    return [1.0 if THINK_ANSWER_RE.fullmatch(t.completion_text) else 0.0 for t in trajs]


def extract_answer(text: str) -> str:
    """Content of the first ``<answer>`` tag, stripped; the whole text when there is no tag."""
    m = ANSWER_RE.search(text)
    return (m.group(1) if m else text).strip()


def completion_length(trajs: list[Trajectory]) -> list[float]:
    """Number of generated tokens (use with weight 0 as a metric, or negative as a penalty)."""
    return [float(t.num_action_tokens) for t in trajs]
