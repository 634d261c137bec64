"""Reward functions and the weighted `Rubric` that combines them with the env's own reward.

A `RewardFn` maps a batch of trajectories to one float each and has a `__name__` saying what it
rewards. Learned reward models and LLM judges are RewardFns too. In a `Rubric`, weight 0 makes a
function a metric only: it is logged under ``reward/<name>`` but does not enter the total.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from rlpost.errors import RlpostError
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

    def __call__(self, trajs: list[Trajectory]) -> list[float]:
        """Fill `reward` and `components` of each trajectory in place; returns the totals.

        Raises RlpostError naming the source when the env or a reward function gives a value
        that is not finite (NaN in one reward makes the whole group's advantages NaN) or a
        function returns the wrong number of values."""
        scores = [list(map(float, f(trajs))) for f in self.funcs]
        for name, s in zip(self.names, scores):
            if len(s) != len(trajs):
                raise RlpostError(f"reward function {name} returned {len(s)} values for "
                                  f"{len(trajs)} trajectories")
            _check_finite(name, s, trajs)
        _check_finite("env", [t.env_reward for t in trajs], trajs)
        for i, t in enumerate(trajs):
            comps = {"env": t.env_reward}
            for key, value in t.final_info.get("reward_components", {}).items():
                comps[f"env/{key}"] = float(value)
            total = self.env_weight * t.env_reward
            for name, w, s in zip(self.names, self.weights, scores):
                comps[name] = s[i]
                total += w * s[i]
            t.components, t.reward = comps, total
        return [t.reward for t in trajs]


def _check_finite(name: str, values: list[float], trajs: list[Trajectory]) -> None:
    for v, t in zip(values, trajs):
        if not math.isfinite(v):
            raise RlpostError(f"reward {name} is {v} for a trajectory of task {t.task_id!r}; "
                              "rewards must be finite numbers")


# --- common rule rewards -------------------------------------------------------------------

THINK_ANSWER_RE = re.compile(r"<think>.*?</think>\s*<answer>.*?</answer>", re.DOTALL)
STRICT_THINK_ANSWER_RE = re.compile(
    r"<think>((?!</?think>|</?answer>).)*</think>\s*<answer>((?!</?think>|</?answer>).)*</answer>",
    re.DOTALL)
ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


def think_answer_format(trajs: list[Trajectory]) -> list[float]:
    """1 iff the whole completion matches R1-V's format regex (CLS-RL's reward,
    ``<think>.*?</think>\\s*<answer>.*?</answer>`` with DOTALL, full match), the paper-faithful
    check. Its lazy groups still stretch to make a full match, so it also accepts two answer
    blocks, and an answer inside the think block (which `extract_answer` then grades): see
    `strict_think_answer_format`."""
    return [1.0 if THINK_ANSWER_RE.fullmatch(t.completion_text) else 0.0 for t in trajs]


def strict_think_answer_format(trajs: list[Trajectory]) -> list[float]:
    """1 iff the completion is exactly one think block then one answer block, neither holding a
    think or answer tag: what `think_answer_format` is meant to check."""
    return [1.0 if STRICT_THINK_ANSWER_RE.fullmatch(t.completion_text) else 0.0 for t in trajs]


def extract_answer(text: str) -> str:
    """Content of the first ``<answer>`` tag, stripped; the whole text when there is no tag."""
    m = ANSWER_RE.search(text)
    return (m.group(1) if m else text).strip()


def completion_length(trajs: list[Trajectory]) -> list[float]:
    """Number of generated tokens (use with weight 0 as a metric, or negative as a penalty)."""
    return [float(t.num_action_tokens) for t in trajs]
