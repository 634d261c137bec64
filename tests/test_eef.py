"""EEF labelling on constructed success patterns, splicing, and SFT data built from episodes."""

from __future__ import annotations

import itertools

import pytest

from rlpost.algos.sft import tokenize_sample
from rlpost.collect.eef import Label, important_state, label_actions, splice, state_indices
from rlpost.collect.episodes import Episode, best_per_task, to_samples
from rlpost.envs.webshop.env import WebShopConfig, WebShopEnv
from rlpost.envs.webshop.expert import MAX_STEPS, Expert
from rlpost.generate import GenParams

B, H, N = Label.BENEFICIAL, Label.HARMFUL, Label.NEUTRAL


def test_state_indices_are_evenly_spaced_from_the_start():
    assert state_indices(1, 3) == [0] and state_indices(5, 0) == [] and state_indices(0, 0) == []
    assert state_indices(3, 3) == [0, 1, 2] and state_indices(5, -1) == []
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
    with pytest.raises(ValueError, match="^states and succ must have the same length$"):
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
    with pytest.raises(ValueError, match="^the continuation does not start with the expert "
                                         "prefix$"):
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


# --- failure exploration with a scripted agent ----------------------------------------------


class ScriptedRunner:
    """A runner that plays from each (task, prefix) the episodes of a script, one per call, in
    order."""

    def __init__(self, script):
        self.script, self.calls, self.served = script, [], {}

    def play(self, tasks, params, seed, group_size=1, prefixes=None):
        from rlpost.types import Step, Trajectory

        assert group_size == 1
        self.calls.append((list(tasks), params.temperature, seed, [list(p) for p in prefixes]))
        out = []
        for task, prefix in zip(tasks, prefixes):
            key = (task, len(prefix))
            n = self.served.get(key, 0)
            self.served[key] = n + 1
            actions, success = self.script[key][n]
            steps = [Step([1], [2], [], a, 0.0, {"valid": not a.startswith("bad")})
                     for a in actions]
            steps[-1].reward = 1.0 if success else 0.2
            out.append(Trajectory(task, 0, steps, success=success))
        return out


def test_explore_failures_keeps_the_shortest_success_after_the_expert_prefix():
    from rlpost.collect.eef import explore_failures

    expert = Episode(7, ["a0", "a1", "a2", "a3", "a4", "a5"], 0.3, False, "expert")
    hopeless = Episode(9, ["b0", "b1", "b2"], 0.0, False, "expert")
    script = {  # (task, prefix length) -> the two samples' (actions, success)
        (7, 0): [(["x"], False), (["y", "z"], False)],
        (7, 2): [(["p", "q", "buy"], True), (["bad", "r", "s", "buy"], True)],
        (7, 4): [(["s"], False), (["t"], False)],
        (9, 0): [(["u"], False)] * 2, (9, 1): [(["v"], False)] * 2,
        (9, 2): [(["w"], False)] * 2,
    }
    agent = ScriptedRunner(script)
    res = explore_failures(agent, [expert, hopeless], m=3, params=GenParams(temperature=0.7), seed=11, samples=2)
    assert len(agent.calls) == 1  # one batched rollout over every (episode, state, sample)
    tasks, temperature, seed, prefixes = agent.calls[0]
    assert (temperature, seed) == (0.7, 11) and tasks == [7] * 6 + [9] * 6
    assert prefixes == [[], [], ["a0", "a1"], ["a0", "a1"], ["a0", "a1", "a2", "a3"],
                        ["a0", "a1", "a2", "a3"], [], [], ["b0"], ["b0"], ["b0", "b1"],
                        ["b0", "b1"]]
    assert res[0].labels == [B, B, H, H, N, N]
    # the invalid action is dropped, so both successes have 3 valid actions: the first is kept
    assert res[0].episode.actions == ["a0", "a1", "p", "q", "buy"]
    assert res[0].episode.weights == [1.0] * 5 and res[0].episode.source == "eef"
    assert res[0].episode.success and res[0].episode.reward == 1.0
    assert res[1].labels == [N, N, N] and res[1].episode is None


def test_explore_failures_passes_pick_and_weights_to_the_splice():
    from rlpost.collect.eef import explore_failures

    expert = Episode(3, [f"a{i}" for i in range(10)], 0.1, False, "expert")
    outcome = {0: False, 2: True, 4: True, 6: False, 8: True}  # labels B B N N H H B B N N
    script = {(3, i): [([f"c{i}", "buy"], ok)] for i, ok in outcome.items()}
    res, = explore_failures(ScriptedRunner(script), [expert], m=5, params=GenParams(temperature=1.0), seed=0,
                            pick="latest", neutral_weight=0.5, harmful_weight=0.25)
    assert res.labels == [B, B, N, N, H, H, B, B, N, N]
    assert res.episode.actions == [f"a{i}" for i in range(8)] + ["c8", "buy"]
    assert res.episode.weights == [1, 1, 0.5, 0.5, 0.25, 0.25, 1, 1, 1, 1]
    script = {(3, i): [([f"c{i}", "buy"], ok)] for i, ok in outcome.items()}
    res, = explore_failures(ScriptedRunner(script), [expert], m=5, params=GenParams(temperature=1.0), seed=0)
    assert res.episode.actions == ["a0", "a1", "c2", "buy"] and res.episode.weights == [1] * 4
    script = {(3, i): [([f"c{i}", "buy"], ok)] for i, ok in outcome.items()}
    res, = explore_failures(ScriptedRunner(script), [expert], m=5, params=GenParams(temperature=1.0), seed=0,
                            pick="latest")  # default weights: neutral and harmful masked
    assert res.episode.weights == [1, 1, 0, 0, 0, 0, 1, 1, 1, 1]


def test_splice_weights_neutral_and_harmful_prefix_actions():
    expert = Episode(1, [f"a{i}" for i in range(8)], 0.0, False, "expert")
    states, succ = [0, 2, 4, 6], [True, True, False, True]  # N N H H B B, solved from 6
    cont = Episode(1, [f"a{i}" for i in range(6)] + ["z"], 1.0, True)
    r = splice(expert, states, succ, [cont, cont, None, cont], neutral_weight=0.5,
               harmful_weight=0.25)
    assert r.labels == [N, N, H, H, B, B, N, N] and r.episode.task_id == 1
    assert r.episode.weights == [0.5, 0.5, 0.25, 0.25, 1.0, 1.0, 1.0]
    masked = splice(expert, states, succ, [cont, cont, None, cont])  # the defaults mask them
    assert masked.episode.weights == [0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="^succ says the agent succeeded where no continuation "
                                         "is given$"):
        splice(expert, states, succ, [cont, cont, None, None])


def test_splice_picks_the_earliest_important_state_by_default():
    expert = Episode(1, [f"a{i}" for i in range(6)], 0.0, False, "expert")
    early = Episode(1, ["a0", "a1", "x", "buy"], 1.0, True)
    late = Episode(1, ["a0", "a1", "a2", "a3", "y"], 1.0, True)
    r = splice(expert, [0, 2, 4], [False, True, True], [None, early, late])
    assert r.episode.actions == early.actions
    r = splice(expert, [0, 2, 4], [False, True, True], [None, early, late], pick="latest")
    assert r.episode.actions == late.actions and r.episode.weights == [1, 1, 0, 0, 1]


def test_explore_failures_prefers_a_shorter_later_sample():
    from rlpost.collect.eef import explore_failures

    expert = Episode(7, ["a0", "a1", "a2", "a3"], 0.3, False, "expert")
    script = {(7, 0): [(["x"], False)] * 3, (7, 2): [(["p", "q", "r", "buy"], True),
                                                      (["p", "buy"], True), (["z", "buy"], True)]}
    res = explore_failures(ScriptedRunner(script), [expert], m=2, params=GenParams(temperature=1.0), seed=0,
                           samples=3, harmful_weight=0.5)
    assert res[0].episode.actions == ["a0", "a1", "p", "buy"]


def test_a_spliced_episode_becomes_sft_data_with_harmful_actions_masked(tokenizer):
    """A real WebShop splice: the weak expert's failed episode, its harmful middle masked, and a
    successful continuation (the oracle's, from the state the prefix reaches)."""
    from rlpost.envs.webshop.expert import WEAK_EXPERT

    env = WebShopEnv()
    cut = 1  # after the weak expert's search; the oracle takes over from its results page
    for task in env.tasks("train")[:60]:
        failed = Expert(WEAK_EXPERT).play(env, task)
        if failed.success or len(failed.actions) < 3:
            continue
        if _oracle_from(env, task, failed.actions[:cut]) == 1.0:
            break
    else:
        raise AssertionError("no failed weak-expert episode the oracle recovers from")
    cont = Episode(failed.task_id, list(env.actions), 1.0, True)
    expert = Episode(failed.task_id, failed.actions, failed.reward, False, "expert")
    r = splice(expert, [0, cut, cut + 1], [False, True, False], [None, cont, None])
    assert r.labels[:cut + 1] == [B, H] and r.episode.actions == cont.actions
    assert r.episode.actions[:cut] == failed.actions[:cut]
    assert r.episode.weights == [1.0] * len(cont.actions)
    # mask the second action as if it were harmful: it stays in context, out of the loss
    weights = [1.0, 0.0] + [1.0] * (len(cont.actions) - 2)
    masked = Episode(task, cont.actions, 1.0, True, "eef", weights)
    sample, = to_samples(env, [masked])
    ids, w = tokenize_sample(tokenizer, sample, max_len=8192)
    kept = tokenizer.decode([i for i, x in zip(ids, w) if x > 0])
    acts = masked.actions
    assert kept == "".join(a + "<|im_end|>" for i, a in enumerate(acts) if i != 1)


def _oracle_from(env, task, prefix) -> float:
    """Replay `prefix`, then let the oracle act from there; returns the final reward."""
    from rlpost.envs.webshop.expert import instruction_query

    env.reset(options={"task_id": task, "replay": list(prefix)})
    oracle, goal = Expert(), env.goal
    query = instruction_query(goal["instruction_text"])
    for _ in range(MAX_STEPS):
        action = oracle._next(env, goal, query, set(), False, True)
        if action == "search-again":
            return 0.0
        _, reward, term, trunc, _ = env.step(action)
        if term or trunc:
            return reward
    return 0.0
