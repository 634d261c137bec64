"""Rubric weights and components, and the rule rewards, on hand-built trajectories."""

from __future__ import annotations

import pytest

import math

from rlpost.errors import RlpostError
from rlpost.reward import (Rubric, completion_length, extract_answer, strict_think_answer_format,
                           think_answer_format)
from rlpost.types import Step, Trajectory


def _traj(*actions: str, rewards=None, components=None, tokens=None) -> Trajectory:
    rewards = rewards or [0.0] * len(actions)
    steps = []
    for i, (a, r) in enumerate(zip(actions, rewards)):
        info = {"reward_components": components} if components and i == len(actions) - 1 else {}
        steps.append(Step([1], [7] * (tokens[i] if tokens else 1), [], a, r, info))
    return Trajectory(task_id=0, group_id=0, steps=steps)


def _double(trajs):
    return [2.0 * len(t.steps) for t in trajs]


def _first_char_is_a(trajs):
    return [float(t.completion_text.startswith("a")) for t in trajs]


def test_rubric_total_is_the_weighted_sum_and_components_are_unweighted():
    trajs = [_traj("a", "b", rewards=[0.5, 0.25], components={"acc": 1.0, "fmt": 0.0}),
             _traj("x", rewards=[-1.0])]
    rubric = Rubric([_double, _first_char_is_a], [0.5, -3.0], env_weight=0.2)
    assert rubric.names == ["_double", "_first_char_is_a"]
    rubric(trajs)
    # env 0.75, double 4.0, first_a 1.0 -> 0.2*0.75 + 0.5*4 - 3*1
    assert trajs[0].reward == pytest.approx(0.15 + 2.0 - 3.0)
    assert trajs[0].components == {"env": 0.75, "env/acc": 1.0, "env/fmt": 0.0,
                                   "_double": 4.0, "_first_char_is_a": 1.0}
    # env -1, double 2, first_a 0 -> -0.2 + 1.0
    assert trajs[1].reward == pytest.approx(0.8)
    assert trajs[1].components == {"env": -1.0, "_double": 2.0, "_first_char_is_a": 0.0}


def test_rubric_defaults_and_weight_zero_is_a_metric_only():
    t = _traj("abc", rewards=[1.0], tokens=[5])
    Rubric([completion_length])([t])  # default weight 1 for every function
    assert t.reward == 6.0 and t.components["completion_length"] == 5.0
    Rubric([completion_length], [0.0])([t])
    assert t.reward == 1.0 and t.components["completion_length"] == 5.0
    Rubric()([t])
    assert t.reward == 1.0 and t.components == {"env": 1.0}
    with pytest.raises(ValueError, match="2 funcs but 1 weights"):
        Rubric([completion_length, _double], [1.0])


@pytest.mark.parametrize("text, ok", [
    ("<think>because</think><answer>cat</answer>", True),
    ("<think>a\nb</think>\n <answer>cat</answer>", True),  # newlines inside and between
    ("<think></think><answer></answer>", True),
    ("<think>x</think><answer>cat</answer> trailing", False),
    ("<think>x</think><answer>cat</answer>\n", False),
    ("so <think>x</think><answer>cat</answer>", False),
    (" <think>x</think><answer>cat</answer>", False),
    ("<answer>cat</answer>", False),
    ("<think>x</think>", False),
    ("<answer>cat</answer><think>x</think>", False),
    ("<think>x</think> text <answer>cat</answer>", False),
    ("<think>x<answer>cat</answer>", False),
    ("<think>x</think><answer>cat", False),
    ("", False),
])
def test_think_answer_format(text, ok):
    assert think_answer_format([_traj(text)]) == [1.0 if ok else 0.0]


# the bug case: duplicated and nested blocks pass the paper's regex, not the strict one
@pytest.mark.parametrize("text, paper, strict", [
    ("<think>x</think><answer>cat</answer>", True, True),
    ("<think>a\nb</think>\n <answer>c\nat</answer>", True, True),
    ("<think>x</think><answer>dog</answer><answer>cat</answer>", True, False),
    ("<think>x <answer>dog</answer></think><answer>cat</answer>", True, False),
    ("<think>x</think><answer>a</answer><think>y</think><answer>b</answer>", True, False),
    ("<think><think>x</think></think><answer>cat</answer>", True, False),
    ("<think>x</think><answer>cat</answer> trailing", False, False),
    ("<think>x</think><answer>cat <think></answer>", True, False),
    ("<think>x</think> y <answer>cat</answer>", False, False),
])
def test_strict_format_rejects_duplicated_and_nested_blocks(text, paper, strict):
    t = _traj(text)
    assert (think_answer_format([t]), strict_think_answer_format([t])) == (
        [float(paper)], [float(strict)])


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_rubric_rejects_non_finite_rewards_naming_the_source(bad):
    trajs = [_traj("a", rewards=[0.0]), _traj("b", rewards=[1.0])]

    def judge(ts):
        return [0.0, bad]

    with pytest.raises(RlpostError, match=r"reward judge is (nan|inf|-inf) for a trajectory of task 0"):
        Rubric([judge])(trajs)
    trajs[1].steps[0].reward = bad
    with pytest.raises(RlpostError, match="reward env is"):
        Rubric()(trajs)
    with pytest.raises(RlpostError, match="returned 1 values for 2 trajectories"):
        Rubric([lambda ts: [1.0]])(trajs)


def test_rubric_returns_the_totals():
    trajs = [_traj("a", rewards=[0.5]), _traj("b", rewards=[1.0])]
    assert Rubric([_first_char_is_a], [2.0])(trajs) == [2.5, 1.0]


def test_format_reward_reads_the_whole_multi_turn_completion():
    two_turns = _traj("<think>x</think>", "<answer>cat</answer>")
    assert two_turns.completion_text == "<think>x</think>\n<answer>cat</answer>"
    assert think_answer_format([two_turns]) == [1.0]  # the newline join matches \s*


@pytest.mark.parametrize("text, answer", [
    ("<think>t</think><answer> dog </answer>", "dog"),
    ("<answer>a</answer><answer>b</answer>", "a"),
    ("<answer>line\nbreak</answer>", "line\nbreak"),
    ("  no tags  ", "no tags"),
    ("<answer>unclosed", "<answer>unclosed"),
])
def test_extract_answer(text, answer):
    assert extract_answer(text) == answer


def test_completion_length_counts_tokens_over_turns():
    assert completion_length([_traj("a", "b", tokens=[3, 4]), _traj()]) == [7.0, 0.0]
