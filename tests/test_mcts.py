"""MCTS over response fragments (iTool): the pure parts against hand-computed values, and a
whole search on a tiny deterministic tree (a scripted generator) gives the expected pairs."""

from __future__ import annotations

import math

import pytest

from rlpost.collect.mcts import (
    MCTSConfig, Node, SearchTask, fast_reward, group_steps, preference_pairs, search,
    selection_score, split_fragments, word_overlap)
from rlpost.errors import RlpostError
from rlpost.generate import Completion

VOCAB = ["<p>", "f(", "a=", "1)]", "2)]", "3)]", "g(", "Sorry", " no"]
ID = {t: i for i, t in enumerate(VOCAB)}


def decode(ids):
    return "".join(VOCAB[i] for i in ids)


class Scripted:
    """Completions chosen by the text of the prompt after "<p>": each key has a list that is
    served in turn (cycling); every token's logprob is log(0.5)."""

    max_model_len = 64

    def __init__(self, script):
        self.script = {k: list(v) for k, v in script.items()}
        self.served = {k: 0 for k in script}
        self.calls = []
        self.params = []

    def generate(self, prompts, params):
        self.calls.append((len(prompts), params.max_tokens))
        self.params.append(params)
        out = []
        for p in prompts:
            key = decode(p[1:])
            options = self.script[key]
            text = options[self.served[key] % len(options)]
            self.served[key] += 1
            toks = text.split("|")
            ids = [ID[t] for t in toks]
            out.append(Completion(ids, [math.log(0.5)] * len(ids), "".join(toks), "stop"))
        return out


def test_word_overlap_and_fast_reward_by_hand():
    assert word_overlap("a b c", "b c d e") == 2 / 3
    assert word_overlap("", "a") == 0.0
    # ")]" in both: +0.1; overlap {x=1)]} / min(2, 1) = 1 -> +0.5
    assert fast_reward("[f( x=1)]", "x=1)]") == pytest.approx(0.6)
    # ")]" only in the reference: -0.1; no overlap -> -0.5
    assert fast_reward("[f(x=1)]", "f(") == pytest.approx(-0.6)
    assert fast_reward("[f(x=1)]", "  ") == 0.0
    assert fast_reward("", "Sorry") == pytest.approx(0.1)  # no call is right
    assert fast_reward("", "f(a=1)") == pytest.approx(-0.1)


def test_selection_score_by_hand():
    child = Node([1], "x", prior=0.5, value=2.0, visits=1)
    assert selection_score(child, 4, 1.0) == pytest.approx(1.0 + 0.5 * math.sqrt(math.log(4) / 2))
    assert selection_score(child, 0, 1.0) == pytest.approx(1.0)  # ln of at least one visit


def _ends(pieces):
    out, n = [], 0
    for p in pieces:
        n += len(p)
        out.append(n)
    return out


def test_split_fragments_after_each_delimiter():
    pieces = ["get", "_w", "(", "city", "=", "'Paris", "', ", "days", "=", "3)]"]
    assert split_fragments("".join(pieces), _ends(pieces)) == [3, 2, 2, 2, 1]
    assert split_fragments("Hello. World", [7, 12]) == [1, 1]
    assert split_fragments("ab=cd", [4, 5]) == [1, 1]  # the delimiter inside a token ends it
    assert split_fragments("", []) == []
    # no cut inside a character: the token after "=" ends mid-character (None)
    assert split_fragments("a=東京", [2, None, 3, 4]) == [1, 3]
    assert split_fragments("a=東京", [None, None, 3, 4]) == [3, 1]


def test_group_steps_merges_the_rest_at_max_depth():
    assert group_steps([3, 2, 2, 2, 1], 2, 0, 3) == [5, 4, 1]
    assert group_steps([3, 2, 2, 2, 1], 2, 0, 2) == [5, 5]
    assert group_steps([3, 2, 2, 2, 1], 2, 2, 3) == [10]
    assert group_steps([3, 2, 2, 2, 1], 1, 0, 9) == [3, 2, 2, 2, 1]


def test_pairs_follow_the_references_filters():
    root = Node([], "", 1.0)
    a = Node([ID["f("]], "f(", 1.0, value=1.0, parent=root)
    b = Node([ID["g("]], "g(", 1.0, value=0.95, parent=root)  # gap 0.05 < 0.1: no pair
    root.children = [a, b]
    good = Node([ID["1)]"]], "1)]", 1.0, value=0.5, parent=a)
    bad = Node([ID["2)]"]], "2)]", 1.0, value=-1.0, parent=a)
    a.children = [good, bad]
    pairs = preference_pairs(root, [ID["<p>"]], MCTSConfig(), {"task": 7})
    assert len(pairs) == 1
    p = pairs[0]
    assert (p.prompt_ids, p.chosen_ids, p.rejected_ids) == ([0, ID["f("]], [ID["1)]"]], [ID["2)]"]])
    assert (p.chosen_score, p.rejected_score) == (0.5, -1.0)
    assert p.info == {"task": 7, "prefix": "f(", "chosen": "1)]", "rejected": "2)]", "depth": 1}
    good.value = -0.4  # below accept_value -0.3
    assert preference_pairs(root, [0], MCTSConfig()) == []
    good.value, bad.text = 0.5, "1)]"  # identical words: overlap 1 > 0.95
    assert preference_pairs(root, [0], MCTSConfig()) == []


def test_search_on_a_tiny_tree_gives_the_value_pair():
    """num_actions 2, one fragment per node, every prior 0.5, reference "[f(a=1)]" (fast
    rewards: "f(" and "a=" -0.6, "1)]"/"2)]" -0.4, "Sorry no" -0.6); rollouts score "f(a=1)]"
    +1, anything else -1. By hand:

    1. root expanded: chains f(>a=>1)] and f(>a=>2)]; simulation: first "f(" > its "a=";
       rollout "1)]" -> +1 (a=, f(: V 0.4, N 1).
    2. root (2 children, not > 2) expanded again: g(>a=>1)], "Sorry no"; simulation to the
       same "a="; rollout "2)]" -> -1 (V -0.6, N 2).
    3. root has 4 > 2 children: "f(" scores -0.6/3 + 0.5 sqrt(ln 2 / 3) = 0.04 against -0.18
       for the unvisited ones; it has 1 child, so it is expanded (two more "a=" children);
       simulation "a=" > "1)]", which ends the answer: +1, no rollout call.
    4. root > "f(" (3 children) > "a=" (0.1 + 0.26 against -0.08), expanded with "2)]" and
       "3)]"; simulation ends at "1)]" (V 0.6): +1, so "1)]" has V 1.6.

    Only "a=" then has two different best/worst children: "1)]" (1.6) over "2)]" (-0.4). At the
    root and under "f(" the best and the worst are the same fragment and make no pair."""
    script = {
        "": ["f(|a=|1)]", "f(|a=|2)]", "g(|a=|1)]", "Sorry| no"],
        "f(": ["a=|1)]", "a=|2)]"],
        "f(a=": ["1)]", "2)]", "2)]", "3)]"],
    }
    gen = Scripted(script)
    task = SearchTask([ID["<p>"]], "[f(a=1)]", lambda text: 1.0 if text == "f(a=1)]" else -1.0,
                      {"task": 0})
    cfg = MCTSConfig(iterations=4, num_actions=2, fragments_per_step=1, max_depth=3,
                     simulation_steps=2, rollout_max_tokens=8)
    result = search(gen, decode, [task], cfg, seed=0)
    root = result.roots[0]
    assert [c.text for c in root.children] == ["f(", "f(", "g(", "Sorry no"]
    assert root.visits == 4 and root.value == pytest.approx(2.0)
    assert result.generate_calls == 6  # iterations 3 and 4 end on a finished answer
    assert [(p.info["prefix"], p.info["chosen"], p.info["rejected"]) for p in result.pairs] \
        == [("f(a=", "1)]", "2)]")]
    p = result.pairs[0]
    assert (p.chosen_score, p.rejected_score) == (pytest.approx(1.6), pytest.approx(-0.4))
    assert p.prompt_ids == [ID["<p>"], ID["f("], ID["a="]] and p.chosen_ids == [ID["1)]"]]
    assert p.info["task"] == 0 and p.info["depth"] == 2


def test_search_batches_the_tasks_into_one_call_per_phase():
    script = {"": ["f(|a=|1)]", "f(|a=|2)]"], "f(": ["a=|1)]"], "f(a=": ["1)]"]}
    gen = Scripted(script)
    tasks = [SearchTask([ID["<p>"]], "[f(a=1)]", lambda t: 1.0) for _ in range(3)]
    cfg = MCTSConfig(iterations=1, num_actions=2, fragments_per_step=1)
    search(gen, decode, tasks, cfg, seed=0)
    # rollouts get the room left (64 - 3 tokens), not rollout_max_tokens (128)
    assert gen.calls == [(6, 50), (3, 61)]


def test_a_finished_best_path_is_scored_again_instead_of_stalling():
    """Once the selection ends on a finished answer, later iterations still score and back it
    up (every iteration adds one visit to the root); the reference skipped the iteration, and
    its deterministic selection then skipped every later one."""
    script = {"": ["1)]", "2)]", "3)]"]}
    gen = Scripted(script)
    task = SearchTask([ID["<p>"]], "[f(a=1)]", lambda text: 1.0 if text == "1)]" else -1.0)
    cfg = MCTSConfig(iterations=9, num_actions=2, fragments_per_step=1)
    result = search(gen, decode, [task], cfg, seed=0)
    root = result.roots[0]
    assert root.visits == 9
    assert [c.text for c in root.children] == ["1)]", "2)]", "3)]", "1)]"]
    assert root.children[0].visits > 1  # the winner kept being chosen and scored
    assert gen.calls == [(2, 50), (2, 50)]  # two expansions, no rollout (all answers finished)


def test_multibyte_characters_survive_token_by_token_decoding():
    """Tokens are bytes here, so "東" takes three tokens; the fragment texts and the scored
    text are whole characters, and the right answer scores +1."""
    class Bytes:
        max_model_len = 64

        def generate(self, prompts, params):
            data = list("f(city='東京')]".encode())
            return [Completion(data, [0.0] * len(data), "", "stop") for _ in prompts]

    def decode_bytes(ids):
        return bytes(i for i in ids if i < 256).decode("utf-8", errors="replace")

    seen = []

    def score(text):
        seen.append(text)
        return 1.0 if text == "f(city='東京')]" else -1.0

    task = SearchTask([300], "[f(city='東京')]", score)
    cfg = MCTSConfig(iterations=1, num_actions=2, fragments_per_step=1, simulation_steps=3)
    result = search(Bytes(), decode_bytes, [task], cfg, seed=0)
    leaf = result.roots[0].children[0]
    while leaf.children:
        leaf = leaf.children[0]
    texts = [n.text for n in leaf.path()]
    assert "".join(texts) == "f(city='東京')]" and "\ufffd" not in "".join(texts)
    assert texts == ["f(", "city=", "'東京')]"]
    assert seen == ["f(city='東京')]"]


def test_a_non_finite_score_names_the_task():
    gen = Scripted({"": ["1)]", "2)]"]})
    task = SearchTask([ID["<p>"]], "", lambda text: float("nan"), {"task_id": 4})
    with pytest.raises(RlpostError, match=r"mcts: the score of task 0 \({'task_id': 4}\) is nan"):
        search(gen, decode, [task], MCTSConfig(iterations=1, num_actions=2), seed=0)


def test_each_tree_gets_its_own_samples_with_derived_seeds_and_the_temperature():
    from rlpost.seeds import derive_seed

    gen = Scripted({"": ["f(|a=|1)]", "f(|a=|2)]"], "Sorry": [" no"], "Sorry no": ["1)]"],
                    "f(": ["a=|1)]"], "f(a=": ["1)]"]})
    tasks = [SearchTask([ID["<p>"]], "", lambda t: 1.0),
             SearchTask([ID["<p>"], ID["Sorry"]], "", lambda t: 1.0)]
    cfg = MCTSConfig(iterations=2, num_actions=2, fragments_per_step=1, temperature=0.7)
    result = search(gen, decode, tasks, cfg, seed=5)
    assert [c.text for c in result.roots[0].children] == ["f(", "f(", "f(", "f("]
    assert [c.text for c in result.roots[1].children] == [" no"] * 4
    expand, rollout = gen.params[0], gen.params[1]
    assert (expand.temperature, expand.seed) == (0.7, derive_seed(5, "mcts-expand", 0))
    assert (rollout.temperature, rollout.seed) == (0.7, derive_seed(5, "mcts-rollout", 0))
    assert gen.params[2].seed == derive_seed(5, "mcts-expand", 1)


def test_a_node_is_expanded_only_when_a_whole_sample_fits():
    """prompt + path + max_tokens <= max_model_len (64): a 14-token prompt with max_tokens 50
    fits exactly; one more token and the tree is never expanded (only rolled out, when the
    prompt leaves room)."""
    for n, expanded in ((14, True), (15, False)):
        gen = Scripted({"<p>" * (n - 1): ["1)]", "2)]"]})
        task = SearchTask([ID["<p>"]] * n, "", lambda t: 1.0)
        result = search(gen, decode, [task], MCTSConfig(iterations=1, num_actions=2), seed=0)
        assert bool(result.roots[0].children) is expanded
        assert gen.calls[0][0] == (2 if expanded else 1)


@pytest.mark.parametrize("field, value, message", [
    ("iterations", 0, "iterations must be >= 1"),
    ("num_actions", 1, "num_actions must be >= 2"),
    ("temperature", 0.0, "temperature must be > 0"),
    ("max_tokens", 0, "max_tokens and rollout_max_tokens must be >= 1"),
    ("rollout_max_tokens", 0, "max_tokens and rollout_max_tokens must be >= 1"),
    ("fragments_per_step", 0, "fragments_per_step must be >= 1"),
    ("max_depth", 0, "max_depth must be >= 1"),
    ("exploration", -0.1, "exploration must be >= 0"),
    ("simulation_steps", -1, "simulation_steps must be >= 0"),
])
def test_invalid_config_is_one_line(field, value, message):
    with pytest.raises(RlpostError, match=f"^mcts: {message}"):
        MCTSConfig(**{field: value}).validate()
    edge = {"iterations": 1, "num_actions": 2, "temperature": 1e-6, "max_tokens": 1,
            "rollout_max_tokens": 1, "fragments_per_step": 1, "max_depth": 1,
            "exploration": 0.0, "simulation_steps": 0}[field]
    MCTSConfig(**{field: edge}).validate()  # the boundary itself is allowed
