"""Exploring Expert Failures (EEF; Lan et al. 2025, arXiv 2504.13145): what to learn from a
failed expert episode, given where the current agent succeeds when started inside it.

The agent is simulated from M evenly spaced states s_i of a failed expert episode (the state
before expert action i, reached by replaying the expert's first i actions). For consecutive
simulated states i < j:

- agent fails from s_i, succeeds from s_j: expert actions i..j-1 are BENEFICIAL (they move the
  agent from an unsolvable to a solvable state) and are trained on;
- agent succeeds from s_i, fails from s_j: they are HARMFUL and masked out of the loss;
- otherwise NEUTRAL (weight `neutral_weight`, 0 by default as in the paper's mask).

The important state j* is a simulated state the agent solves whose expert prefix holds a
beneficial action (`pick`: the earliest such state, or the latest). The kept episode is the
expert prefix up to j* (weighted by label) followed by the agent's successful continuation from
s_j* (weight 1): recovery after masked harmful actions is learned, the harmful actions are not.
Uncertain details of the paper (M, how states are spaced, which state is important) are the
arguments here and config fields of the `eef` recipe.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Literal

from rlpost.collect.episodes import Episode, from_trajectory
from rlpost.generate import GenParams
from rlpost.runner import Runner


class Label(IntEnum):
    NEUTRAL = 0
    BENEFICIAL = 1
    HARMFUL = 2


def state_indices(n_actions: int, m: int) -> list[int]:
    """M evenly spaced states among s_0 .. s_{n-1} (the state before each action), s_0 first:
    floor(k n / M) for k < M, or every state when M >= n (none when n or M is 0)."""
    if m >= n_actions:
        return list(range(n_actions))
    return [(k * n_actions) // m for k in range(m)]


def label_actions(n_actions: int, states: Sequence[int], succ: Sequence[bool]) -> list[Label]:
    """Per expert action, its label from the agent's success pattern at `states` (pure).

    states: increasing state indices; succ[k]: did the agent succeed from states[k].
    """
    if len(states) != len(succ):
        raise ValueError("states and succ must have the same length")
    labels = [Label.NEUTRAL] * n_actions
    for k in range(len(states) - 1):
        i, j = states[k], states[k + 1]
        if not succ[k] and succ[k + 1]:
            labels[i:j] = [Label.BENEFICIAL] * (j - i)
        elif succ[k] and not succ[k + 1]:
            labels[i:j] = [Label.HARMFUL] * (j - i)
    return labels


def important_state(states: Sequence[int], succ: Sequence[bool], labels: Sequence[Label],
                    pick: Literal["earliest", "latest"] = "earliest") -> int | None:
    """Position k in `states` of the important state, or None when there is none."""
    ks = [k for k in range(len(states))
          if succ[k] and any(lab == Label.BENEFICIAL for lab in labels[: states[k]])]
    if not ks:
        return None
    return ks[0] if pick == "earliest" else ks[-1]


@dataclass
class EEFResult:
    """What one failed expert episode contributes."""

    labels: list[Label]
    episode: Episode | None
    """The spliced episode to train on, or None when no important state was found."""


def splice(expert: Episode, states: Sequence[int], succ: Sequence[bool],
           continuations: Sequence[Episode | None], pick: Literal["earliest", "latest"] = "earliest",
           neutral_weight: float = 0.0, harmful_weight: float = 0.0) -> EEFResult:
    """Label `expert`'s actions and build the episode EEF keeps from it.

    continuations[k]: the agent's successful episode from states[k] (its actions include the
    replayed expert prefix), None where it failed. `succ` must agree with it.
    """
    labels = label_actions(len(expert.actions), states, succ)
    k = important_state(states, succ, labels, pick)
    if k is None:
        return EEFResult(labels, None)
    cont = continuations[k]
    if cont is None:
        raise ValueError("succ says the agent succeeded where no continuation is given")
    cut = states[k]
    if cont.actions[:cut] != expert.actions[:cut]:
        raise ValueError("the continuation does not start with the expert prefix")
    weight_of = {Label.BENEFICIAL: 1.0, Label.HARMFUL: harmful_weight, Label.NEUTRAL: neutral_weight}
    weights = [weight_of[lab] for lab in labels[:cut]] + [1.0] * (len(cont.actions) - cut)
    episode = Episode(expert.task_id, list(cont.actions), cont.reward, cont.success, "eef", weights)
    return EEFResult(labels, episode)


def explore_failures(runner: Runner, failed: Sequence[Episode], m: int, params: GenParams,
                     seed: int, pick: Literal["earliest", "latest"] = "earliest",
                     neutral_weight: float = 0.0, harmful_weight: float = 0.0,
                     samples: int = 1) -> list[EEFResult]:
    """Simulate the agent `samples` times from each of M states of each failed expert episode
    (one batched request to the runner, sampled with `params`); a state counts as solved when
    any simulation succeeds (its shortest success is the continuation). Returns what EEF keeps
    of each."""
    jobs = [(k, i) for k, e in enumerate(failed) for i in state_indices(len(e.actions), m)
            for _ in range(samples)]
    trajs = runner.play([failed[k].task_id for k, _ in jobs], params, seed,
                        prefixes=[failed[k].actions[:i] for k, i in jobs])
    best: dict[tuple[int, int], Episode | None] = dict.fromkeys(jobs)  # in state order
    for (k, i), t in zip(jobs, trajs):
        e = from_trajectory(t, failed[k].actions[:i])
        old = best[(k, i)]
        if e.success and (old is None or len(e.actions) < len(old.actions)):
            best[(k, i)] = e
    results = []
    for k, expert in enumerate(failed):
        states = [i for (kk, i) in best if kk == k]
        conts = [best[(k, i)] for i in states]
        succ = [c is not None for c in conts]
        results.append(splice(expert, states, succ, conts, pick, neutral_weight, harmful_weight))
    return results
