"""WebShop env: pages and their text, the action grammar, invalid actions, replay, experts, search."""

from __future__ import annotations

import random

import pytest

from rlpost.envs.webshop.env import WebShopConfig, WebShopEnv, parse_action
from rlpost.envs.webshop.expert import WEAK_EXPERT, Expert, ExpertConfig, instruction_query
from rlpost.envs.webshop.search import BM25Index


@pytest.fixture(scope="module")
def env() -> WebShopEnv:
    return WebShopEnv()


def _goal_search(env: WebShopEnv, task: int):
    env.reset(options={"task_id": task})
    return env.step(f"search[{instruction_query(env.instruction)}]")


def test_splits_are_fixed_and_disjoint(env):
    test, val, train = env.tasks("test"), env.tasks("validation"), env.tasks("train")
    assert len(test) == 100 and len(val) == 100 and len(train) > 800
    assert not set(test) & set(train) and not set(val) & set(train)
    assert WebShopEnv().shop.goals[test[0]] == env.shop.goals[test[0]]  # same process cache
    with pytest.raises(Exception, match="unknown split"):
        env.tasks("dev")


def test_search_page_and_results_page_text(env):
    task = env.tasks("train")[0]
    obs, info = env.reset(options={"task_id": task})
    assert obs["text"] == f"WebShop [SEP] Instruction: [SEP] {env.instruction} [SEP] Search"
    assert info["available_actions"] == {"has_search_bar": True, "clickables": ["search"]}
    obs, reward, term, trunc, info = _goal_search(env, task)
    assert info["valid"] and reward == 0.0 and not term
    parts = obs["text"].split(" [SEP] ")
    assert parts[:3] == ["Instruction:", env.instruction, "Back to Search"]
    assert parts[3].startswith("Page 1 (Total results: ") and parts[4] == "Next >"
    assert len(parts) == 5 + 3 * 10  # ten results: ASIN, Title, Price
    assert parts[5].startswith("B0") and parts[7].startswith("$")
    clickables = info["available_actions"]["clickables"]
    assert "< prev" not in clickables and parts[5].lower() in clickables
    obs, *_ , info = env.step("click[Next >]")
    assert "Page 2 (Total results: " in obs["text"] and "< Prev [SEP] Next >" in obs["text"]
    assert "< prev" in info["available_actions"]["clickables"]


def test_item_page_options_subpages_and_back(env):
    for task in (t for t in env.tasks("train") if env.shop.goals[t]["goal_options"]):
        _goal_search(env, task)
        asin = env.shop.goals[task]["asin"]
        if asin in env.session.results[:10]:
            break
    else:
        raise AssertionError("no train task with options has its target on the first page")
    obs, *_ , info = env.step(f"click[{asin.lower()}]")
    product = env.shop.by_asin[asin]
    assert obs["text"].endswith("Description [SEP] Features [SEP] Reviews [SEP] Buy Now")
    assert f"Price: {product['Price']}" in obs["text"] and "Rating: N.A." in obs["text"]
    opt = env.shop.goals[task]["goal_options"][0]
    assert opt in info["available_actions"]["clickables"]
    env.step(f"click[{opt.upper()}]")  # clicks are case-insensitive
    assert opt in env.session.options.values()
    obs, *_ = env.step("click[Features]")
    assert obs["text"].endswith(" [SEP] ".join(product["BulletPoints"]))
    obs, *_ = env.step("click[< Prev]")
    assert env.session.page == "item" and opt in env.session.options.values()
    obs, *_ = env.step("click[< Prev]")
    assert env.session.page == "results" and env.session.options == {}
    obs, *_ = env.step("click[Back to Search]")
    assert env.session.page == "search" and obs["text"].startswith("WebShop [SEP]")


def test_invalid_actions_change_nothing(env):
    task = env.tasks("train")[1]
    obs0, _ = env.reset(options={"task_id": task})
    for bad in ["click[Buy Now]", "click[search]", "search[]", "buy", "", "click[b000000000]",
                "search[shoes", "jump[x]"]:
        obs, reward, term, trunc, info = env.step(bad)
        assert not info["valid"] and reward == 0.0 and not term, bad
        assert obs == obs0
    assert env.actions == []


def test_buy_ends_with_reward_components_and_inert_after(env):
    task = env.tasks("train")[2]
    ep = Expert().play(env, task)
    assert ep.success and ep.reward == 1.0 and ep.actions[-1] == "click[Buy Now]"
    obs, reward, term, trunc, info = env.step("click[Buy Now]")
    assert term and not info["valid"] and reward == 0.0
    env.reset(options={"task_id": task, "replay": ep.actions[:-1]})
    obs, reward, term, trunc, info = env.step("click[Buy Now]")
    assert term and reward == 1.0 and info["success"]
    comps = info["reward_components"]
    assert comps["r_type"] == 1.0 and comps["r_att"] == 1.0 and comps["r_price"] == 1.0
    assert obs["text"].startswith("Thank you for shopping with us!")


def test_truncation_at_the_turn_limit():
    from rlpost.env import make

    env = make("rlpost/WebShop-v0", max_turns=3)
    env.reset(options={"task_id": env.unwrapped.tasks("train")[0]})
    flags = [env.step("nonsense")[3] for _ in range(3)]
    assert flags == [False, False, True]
    env = make("rlpost/WebShop-v0")  # the registered limit
    env.reset(options={"task_id": env.unwrapped.tasks("train")[0]})
    assert [env.step("nonsense")[3] for _ in range(15)] == [False] * 14 + [True]


def test_replay_reaches_the_played_state(env):
    rng = random.Random(0)
    for task in env.tasks("train")[:20]:
        obs, info = env.reset(options={"task_id": task})
        played = []
        for _ in range(rng.randint(1, 8)):
            clickables = info["available_actions"]["clickables"]
            choices = [f"click[{c}]" for c in clickables if c not in ("search", "buy now")]
            action = rng.choice(choices + [f"search[{instruction_query(env.instruction)}]"])
            obs, _, term, _, info = env.step(action)
            played.append(action)
        replayed, rinfo = env.reset(options={"task_id": task, "replay": played})
        assert replayed == obs and rinfo["available_actions"] == info["available_actions"]


def test_experts(env):
    train = env.tasks("train")
    oracle = [Expert().play(env, t) for t in train[:40]]
    assert all(e.success for e in oracle)
    weak = [Expert(WEAK_EXPERT).play(env, t) for t in train[:300]]
    rate = sum(e.success for e in weak) / len(weak)
    assert 0.25 <= rate <= 0.5  # the paper's GPT-4 expert: ~36% of training tasks
    again = Expert(WEAK_EXPERT).play(env, train[5])
    assert again.actions == weak[5].actions  # reproducible per (seed, task)
    reseeded = [Expert(ExpertConfig(**{**vars(WEAK_EXPERT), "seed": 1})).play(env, t)
                for t in train[:60]]
    assert [e.actions for e in reseeded] != [e.actions for e in weak[:60]]


def test_parse_action_grammar():
    assert parse_action("search[red shoes]") == ("search", "red shoes")
    assert parse_action("Thought: I should buy.\nAction: click[Buy Now]") == ("click", "Buy Now")
    assert parse_action("  \nclick[b0abc]\nmore text") == ("click", "b0abc")
    assert parse_action("click[]") == ("click[]", None)
    assert parse_action("") == ("", None)


def test_messages_history_window():
    env = WebShopEnv(WebShopConfig(max_history=1))
    task = env.tasks("train")[0]
    ep = Expert().play(env, task)
    env.reset(options={"task_id": task, "replay": ep.actions[:2]})
    msgs = env.messages()
    assert [m.role for m in msgs] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert msgs[1].content == msgs[3].content == "[page omitted]"
    assert msgs[2].content == ep.actions[0] and msgs[5].content.startswith("Instruction:")


def test_bm25_matches_hand_computed_scores():
    import math

    docs = ["red running shoes", "blue shoes shoes", "green tea"]
    index = BM25Index(docs)
    hits = index.search("shoes")
    lengths, avg = [3, 3, 2], 8 / 3
    idf = math.log(1 + (3 - 2 + 0.5) / (2 + 0.5))

    def score(tf, dl):
        return idf * tf / (tf + 0.9 * (1 - 0.4 + 0.4 * dl / avg))

    assert [h.doc for h in hits] == [1, 0]
    assert math.isclose(hits[0].score, score(2, lengths[1]))
    assert math.isclose(hits[1].score, score(1, lengths[0]))
    assert index.search("the and of") == []  # stopwords only
    assert [h.doc for h in index.search("runs")] == [0]  # Porter stemming: run(s)/running


def test_search_finds_a_product_by_its_title(env):
    for p in env.shop.products[:30]:
        top = env.shop.search(p["Title"].lower().split(" "))
        assert p["asin"] in [q["asin"] for q in top[:3]]
