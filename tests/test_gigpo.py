"""GiGPO's step-level advantages (Feng et al. 2025, eqs. 5-8) on a hand-built group, through the
function the GRPO loop calls."""

from __future__ import annotations

import math

import pytest

from rlpost.algos.advantages import (
    assign_advantages,
    gigpo_step_advantages,
    step_returns,
)
from rlpost.types import Step, Trajectory


def test_step_returns_discount_backwards():
    assert step_returns([0.0, 0.0, 1.0], 0.5) == [0.25, 0.5, 1.0]
    assert step_returns([1.0, -1.0, 2.0], 1.0) == [2.0, 1.0, 2.0]
    assert step_returns([], 0.9) == []


def test_step_groups_normalise_within_equal_keys():
    adv = gigpo_step_advantages([1.0, 3.0, 5.0, 2.0], [("g", "s"), ("g", "s"), ("g", "t"),
                                                       ("h", "s")], eps=0.0)
    # (g, s): mean 2, std sqrt(2) -> -1/sqrt 2, +1/sqrt 2; singletons get 0
    assert adv == pytest.approx([-1 / math.sqrt(2), 1 / math.sqrt(2), 0.0, 0.0])
    assert gigpo_step_advantages([1.0, 3.0], ["a", "a"], scale=False) == [-1.0, 1.0]


def _traj(group, anchors, rewards, total=None):
    steps = [Step([1], [2], [], "a", r, anchor=a) for a, r in zip(anchors, rewards)]
    t = Trajectory(task_id=group, group_id=group, steps=steps)
    t.reward = sum(rewards) if total is None else total
    return t


def test_assign_advantages_gigpo_on_a_hand_built_group():
    """Two episodes of one task from state s0. Episode A goes s0 -> s1 -> success (reward 1 at
    the end); episode B goes s0 -> s1 -> s2 and fails. Both act from s0 and from s1, so those
    steps form step groups; B's step from s2 is alone."""
    a = _traj(0, ["s0", "s1"], [0.0, 1.0])
    b = _traj(0, ["s0", "s1", "s2"], [0.0, 0.0, 0.0])
    assign_advantages([a, b], "gigpo", eps=0.0, gamma=0.5, step_weight=0.5)
    # episode level: rewards 1, 0 -> +-1/sqrt(2) (unbiased std of [1, 0] is 1/sqrt(2))
    e = 1 / (1 / math.sqrt(2))
    assert (a.advantage, b.advantage) == pytest.approx((0.5 * e, -0.5 * e))
    # returns: A [0.5, 1.0], B [0, 0, 0]; step groups (0, s0): {0.5, 0} -> +-0.7071;
    # (0, s1): {1, 0} -> +-0.7071; (0, s2): {0} -> 0 (eps 1e-6 in the step std)
    s = 1 / math.sqrt(2)
    assert [x.advantage for x in a.steps] == pytest.approx([a.advantage + 0.5 * s] * 2, rel=1e-5)
    assert [x.advantage for x in b.steps] == pytest.approx(
        [b.advantage - 0.5 * s, b.advantage - 0.5 * s, b.advantage], rel=1e-5)


def test_grpo_gives_every_step_its_trajectory_advantage_and_gigpo_adds_the_rubric_at_the_end():
    a = _traj(0, ["s0", "s1"], [0.0, 0.0], total=2.0)  # the Rubric added 2 to a 0 env reward
    b = _traj(0, ["s0", "s1"], [0.0, 0.0], total=0.0)
    assign_advantages([a, b])
    assert [x.advantage for x in a.steps + b.steps] == pytest.approx(
        [a.advantage] * 2 + [b.advantage] * 2)
    assert a.advantage > 0 > b.advantage
    assign_advantages([a, b], "gigpo", eps=0.0, gamma=1.0)
    # returns A [2, 2] (the Rubric's 2 counted at the last step), B [0, 0]: both step groups
    # {2, 0} -> +-1/sqrt(2) added to the episode advantages (+-1/sqrt(2) as well)
    s = 1 / math.sqrt(2)
    assert [x.advantage for x in a.steps] == pytest.approx([2 * s, 2 * s], rel=1e-5)
    assert [x.advantage for x in b.steps] == pytest.approx([-2 * s, -2 * s], rel=1e-5)


def test_unknown_estimator_is_an_error():
    with pytest.raises(ValueError, match="unknown advantage estimator 'gae'"):
        assign_advantages([], "gae")
