"""EEF labelling on constructed success patterns, splicing, and SFT data built from episodes."""

from __future__ import annotations

import itertools

import pytest

from rlpost.algos.sft import tokenize_sample
from rlpost.collect.eef import Label, important_state, label_actions, splice, state_indices
from rlpost.collect.episodes import Episode, best_per_task, to_samples
from rlpost.envs.webshop.env import WebShopConfig, WebShopEnv
from rlpost.envs.webshop.expert import Expert

B, H, N = Label.BENEFICIAL, Label.HARMFUL, Label.NEUTRAL


def test_state_indices_are_evenly_spaced_from_the_start():
    assert state_indices(10, 5) == [0, 2, 4, 6, 8]
    assert state_indices(4, 5) == [0, 1, 2, 3]
    assert state_indices(7, 3) == [0, 2, 4]
    assert state_indices(0, 5) == [] and state_indices(3, 1) == [0]


def test_label_actions_segments():
    states = [0, 2, 4, 6]
    assert label_actions(8, states, [False, True, True, True]) == [B, B] + [N] * 6
    assert label_actions(8, states, [True, True, False, False]) == [N, N, H, H] + [N] * 4
    assert label_actions(8, states, [False, True, False, True]) == [B, B, H, H, B, B, N, N]
    assert label_actions(8, states, [False] * 4) == [N] * 8
    assert label_actions(8, states, [True] * 4) == [N] * 8


def test_label_actions_exhaustive_against_the_rule():
    states = [0, 1, 3, 4]
    for succ in itertools.product([False, True], repeat=4):
        labels = label_actions(6, states, list(succ))
        for a in range(6):
            k = max(i for i, s in enumerate(states) if s <= a)
            if k == len(states) - 1:
                assert labels[a] == N  # after the last simulated state nothing is known
            elif not succ[k] and succ[k + 1]:
                assert labels[a] == B
            elif succ[k] and not succ[k + 1]:
                assert labels[a] == H
            else:
                assert labels[a] == N
    with pytest.raises(ValueError):
        label_actions(3, [0, 1], [True])


def test_important_state_needs_a_beneficial_prefix():
    states = [0, 2, 4]
    labels = label_actions(6, states, [False, True, True])
    assert important_state(states, [False, True, True], labels) == 1
    assert important_state(states, [False, True, True], labels, pick="latest") == 2
    solved_from_start = label_actions(6, states, [True, True, True])
    assert important_state(states, [True, True, True], solved_from_start) is None
    assert important_state(states, [False] * 3, label_actions(6, states, [False] * 3)) is None


def test_splice_masks_and_appends_the_agent_continuation():
    expert = Episode(7, ["a0", "a1", "a2", "a3", "a4", "a5"], 0.3, False, "expert")
    states, succ = [0, 2, 4], [False, True, False]
    cont = Episode(7, ["a0", "a1", "x2", "x3"], 1.0, True)
    r = splice(expert, states, succ, [None, cont, None])
    assert r.labels == [B, B, H, H, N, N]
    assert r.episode.actions == ["a0", "a1", "x2", "x3"] and r.episode.source == "eef"
    assert r.episode.weights == [1.0, 1.0, 1.0, 1.0]
    # recovery after a harmful segment: the harmful expert actions stay in context, weight 0
    succ2 = [False, True, False, True]
    cont2 = Episode(7, ["a0", "a1", "a2", "a3", "a4", "y"], 1.0, True)
    r2 = splice(expert, [0, 2, 4, 5], succ2, [None, None, None, cont2], pick="latest",
                harmful_weight=0.0, neutral_weight=0.5)
    assert r2.labels == [B, B, H, H, B, N]
    assert r2.episode.weights == [1.0, 1.0, 0.0, 0.0, 1.0, 1.0]
    assert splice(expert, states, [False] * 3, [None] * 3).episode is None
    with pytest.raises(ValueError, match="expert prefix"):
        splice(expert, states, succ, [None, Episode(7, ["zz", "a1", "x"], 1.0, True), None])


def test_best_per_task_keeps_the_shortest_success():
    eps = [Episode(1, ["a", "b", "c"], 1.0, True), Episode(1, ["a", "b"], 1.0, True),
           Episode(1, ["a"], 0.2, False), Episode(2, ["q"], 0.0, False)]
    assert [e.actions for e in best_per_task(eps)] == [["a", "b"]]


@pytest.fixture(scope="module")
def tokenizer(model_path):
    from rlpost.policy import load_tokenizer

    return load_tokenizer(model_path)


def test_sft_samples_train_on_actions_only(tokenizer):
    env = WebShopEnv()
    task = env.tasks("train")[3]
    ep = Expert().play(env, task)
    weights = [1.0] * len(ep.actions)
    weights[1] = 0.0  # e.g. a harmful expert action: in context, out of the loss
    sample, = to_samples(env, [Episode(task, ep.actions, 1.0, True, "expert", weights)])
    assert [m.content for m in sample.messages if m.role == "assistant"] == ep.actions
    assert sample.messages[-1].role == "assistant"
    ids, w = tokenize_sample(tokenizer, sample, max_len=4096)
    kept = tokenizer.decode([i for i, x in zip(ids, w) if x > 0])
    expected = "".join(a + "<|im_end|>" for i, a in enumerate(ep.actions) if weights[i] > 0)
    assert kept == expected
    assert "Instruction:" not in kept and "[SEP]" not in kept


def test_sft_samples_per_step_with_a_history_window():
    env = WebShopEnv(WebShopConfig(max_history=1))
    task = env.tasks("train")[3]
    ep = Expert().play(env, task)
    samples = to_samples(env, [Episode(task, ep.actions, 1.0, True)], full_history=False)
    assert len(samples) == len(ep.actions)
    for i, s in enumerate(samples):
        assert s.weights == [0.0] * i + [1.0] and s.messages[-1].content == ep.actions[i]
        assert sum(m.role == "assistant" for m in s.messages) == i + 1
