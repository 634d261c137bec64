"""`rlpost/ToolUse-v0`: BFCL's AST reward through the env, its prompt and tools, its splits,
and its answers to malformed, JSON and irrelevant outputs."""

from __future__ import annotations

import json

import gymnasium as gym
import pytest
from rlpost.envs.tooluse.ast_check import AST_CATEGORIES, check
from rlpost.envs.tooluse.calls import Call, format_calls
from rlpost.envs.tooluse.data import is_test
from rlpost.envs.tooluse.env import (
    DEFAULT_CATEGORIES,
    INSTRUCTIONS,
    PYTHON_HINT,
    ToolUseConfig,
    ToolUseEnv,
)

from rlpost.chat import TOOLS_HEADER, chat_dicts
from rlpost.env import make
from rlpost.errors import RlpostError


def _first(options):
    return next((o for o in options if o != ""), None)


def gt_calls(task: dict) -> list[Call]:
    """The ground truth as calls: each parameter's first possible value (dict answers hold
    lists of possible values per key); parameters with only "" left out."""
    calls = []
    for expected in task["ground_truth"]:
        (name, params), = expected.items()
        doc = next(f for f in task["functions"] if f["name"] == name)
        props = doc["parameters"]["properties"]
        args = {}
        for p, options in params.items():
            v = _first(options)
            if v is None:
                continue
            schema = props.get(p, {})
            if schema.get("type") == "dict" and isinstance(v, dict):
                v = {k: _first(o) for k, o in v.items() if _first(o) is not None}
            elif (schema.get("items") or {}).get("type") == "dict" and isinstance(v, list):
                v = [{k: _first(o) for k, o in d.items() if _first(o) is not None} for d in v]
            args[p] = v
        calls.append(Call(name, args))
    return calls


@pytest.fixture(scope="module")
def env() -> ToolUseEnv:
    return ToolUseEnv()


def _task_of(env: ToolUseEnv, category: str, n: int = 0) -> int:
    return [i for i, r in enumerate(env.records) if r["category"] == category][n]


def test_ground_truth_answers_score_one_in_every_category(env):
    """Every AST entry's ground truth, written in BFCL's Python format, is rewarded as the AST
    check judges it; all but the few entries whose ground truth BFCL itself rejects score 1."""
    scored = {c: [0, 0] for c in AST_CATEGORIES}
    for task in range(len(env.records)):
        rec = env.records[task]
        if rec["category"] not in AST_CATEGORIES:
            continue
        _, info = env.reset(options={"task_id": task})
        calls = gt_calls(info["task"])
        _, reward, term, trunc, info = env.step(format_calls(calls))
        want = check(calls, rec["functions"], rec["ground_truth"], rec["category"]).valid
        assert (reward, term, trunc, info["valid"]) == (float(want), True, False, True)
        assert info["success"] is want and (info["error_type"] == "") is want
        scored[rec["category"]][0] += want
        scored[rec["category"]][1] += 1
    for category, (ok, n) in scored.items():
        assert n > 0 and ok >= n - 8, (category, ok, n)


def test_a_perturbed_answer_scores_zero_with_bfcls_error_type(env):
    task = _task_of(env, "simple_python")
    _, info = env.reset(options={"task_id": task})
    calls = gt_calls(info["task"])
    (name, args), = calls[0].as_bfcl().items()
    for bad, error_type in [
        ([Call(name + "_v2", args)], "simple_function_checker:wrong_func_name"),
        ([Call(name, {**args, "zz": 1})], "simple_function_checker:unexpected_param"),
        (calls * 2, "simple_function_checker:wrong_count"),
        ([], "simple_function_checker:wrong_count"),
    ]:
        env.reset(options={"task_id": task})
        _, reward, _, _, info = env.step(format_calls(bad))
        assert (reward, info["valid"], info["success"]) == (0.0, True, False)
        assert info["error_type"] == error_type and info["calls"] == [c.as_bfcl() for c in bad]
    # a wrong value: simple_python_0 is calculate_triangle_area(base=10, height=5, ...)
    env.reset(options={"task_id": task})
    wrong = {k: (v + 1 if isinstance(v, int) and not isinstance(v, bool) else v)
             for k, v in args.items()}
    assert wrong != args
    _, reward, *_, info = env.step(format_calls([Call(name, wrong)]))
    assert reward == 0.0 and info["error_type"].startswith("value_error")


def test_json_and_tool_call_answers_are_graded_alike(env):
    task = _task_of(env, "parallel_multiple", 3)
    _, info = env.reset(options={"task_id": task})
    calls = gt_calls(info["task"])
    as_json = json.dumps([{"name": c.name, "arguments": c.arguments} for c in calls])
    tagged = "\n".join(f"<tool_call>{json.dumps({'name': c.name, 'arguments': c.arguments})}"
                       f"</tool_call>" for c in calls)
    for text in (format_calls(calls), as_json, tagged, f"```json\n{as_json}\n```",
                 format_calls(calls[::-1])):
        env.reset(options={"task_id": task})
        _, reward, *_, info = env.step(text)
        assert reward == 1.0 and info["success"], (text, info["error_type"])


@pytest.mark.parametrize("category", ["irrelevance", "live_irrelevance"])
def test_irrelevance_rewards_no_call(env, category):
    task = _task_of(env, category)
    fn = env.records[task]["functions"][0]
    call = format_calls([Call(fn["name"], {})])
    for text, reward, valid in [("None of these functions can answer that.", 1.0, True),
                                ("[]", 1.0, True), ("[f(x=", 1.0, True),
                                (call, 0.0, True), ("  \n", 0.0, False)]:
        env.reset(options={"task_id": task})
        _, r, term, _, info = env.step(text)
        assert (r, info["valid"], info["success"], term) == (reward, valid, reward == 1.0, True)
        assert (info["error_type"] == "") is (reward == 1.0)
    assert info["error_type"] == "ast_decoder:decoder_failed"


@pytest.mark.parametrize("action", ["", "hello", "[f(", "[get_weather(city=Paris)]", "{}",
                                    '[{"name": 3}]', "<tool_call>{</tool_call>", None, 42,
                                    "x" * 5000, "[" * 3000, "[f(a=" + "[" * 100 + "])]"])
def test_malformed_answers_never_raise_and_get_the_penalty(action):
    env = ToolUseEnv(invalid_penalty=-0.5, format_reward=0.1, categories=["simple_python"])
    env.reset(options={"task_id": 0})
    _, reward, term, trunc, info = env.step(action)
    assert (reward, term, trunc, info["valid"], info["success"]) == (-0.5, True, False, False,
                                                                    False)
    assert info["reward_components"] == {"accuracy": 0.0, "format": 0.0, "invalid": -0.5}
    assert info["error_type"] == "ast_decoder:decoder_failed" and info["calls"] is None
    # stepping after the end is inert
    _, reward, term, _, info = env.step("[]")
    assert (reward, term, info["valid"]) == (0.0, True, False)


def test_format_reward_is_added_to_valid_answers():
    env = ToolUseEnv(format_reward=0.25, categories=["simple_python"])
    _, info = env.reset(options={"task_id": 0})
    _, reward, *_, info = env.step(format_calls(gt_calls(info["task"])))
    assert reward == 1.25 and info["reward_components"] == {"accuracy": 1.0, "format": 0.25,
                                                            "invalid": 0.0}
    env.reset(options={"task_id": 0})
    assert env.step("[]")[1] == 0.25


def test_splits_are_disjoint_stable_and_follow_the_entry_id():
    a, b = ToolUseEnv(), ToolUseEnv(categories=["live_simple", "simple_python"])
    train, test = a.tasks("train"), a.tasks("test")
    assert not set(train) & set(test) and sorted(train + test) == list(range(len(a.records)))
    assert 0.25 < len(test) / len(a.records) < 0.35
    assert len(a.records) == 400 + 200 + 200 + 200 + 240 + 258 + 1053 + 16 + 24 + 884
    for env in (a, b):
        for split in ("train", "test"):
            ids = {env.records[t]["id"] for t in env.tasks(split)}
            assert all(is_test(i, 0.3) == (split == "test") for i in ids)
    ids_b = {b.records[t]["id"] for t in b.tasks("test")}
    assert ids_b == {a.records[t]["id"] for t in test} & {r["id"] for r in b.records}
    # sorted by category, then by the numbers of the id
    assert [r["id"] for r in b.records[:3]] == ["live_simple_0-0-0", "live_simple_1-1-0",
                                               "live_simple_2-2-0"]
    assert b.records[258]["id"] == "simple_python_0" and b.records[268]["id"] == "simple_python_10"
    c = ToolUseEnv(max_tasks_per_category=5)
    assert len(c.records) == 5 * len(DEFAULT_CATEGORIES)
    with pytest.raises(ValueError, match="unknown split"):
        a.tasks("dev")


def test_messages_carry_the_tools_in_json_schema_form(env):
    task = _task_of(env, "simple_python")
    obs, info = env.reset(options={"task_id": task})
    msgs = env.messages()
    assert [m.role for m in msgs] == ["system", "user"]
    assert msgs[0].content == INSTRUCTIONS and msgs[1].content == obs["text"]
    assert obs["text"] == info["task"]["question"][0]["content"] and obs["anchor"] == str(task)
    (tool,) = msgs[0].tools
    doc = info["task"]["functions"][0]
    assert tool["type"] == "function" and tool["function"]["name"] == doc["name"]
    assert tool["function"]["description"] == doc["description"] + PYTHON_HINT
    assert tool["function"]["parameters"]["type"] == "object"
    types = {s["type"] for t in env.tools(_task_of(env, "parallel_multiple", 5))
             for s in t["function"]["parameters"]["properties"].values()}
    assert not types & {"dict", "float", "tuple", "any"}
    # the chat renderer: tools= for templates with tool support, else JSON text in the system
    dicts, tools = chat_dicts(msgs, native_tools=True)
    assert tools == msgs[0].tools and dicts[0]["content"] == INSTRUCTIONS
    dicts, tools = chat_dicts(msgs, native_tools=False)
    assert not tools and TOOLS_HEADER in dicts[0]["content"] and doc["name"] in dicts[0]["content"]
    assert "[func_name1(params_name1=params_value1" in INSTRUCTIONS


def test_an_entrys_own_system_message_joins_ours(env):
    task = next(i for i, r in enumerate(env.records)
                if r["category"] == "live_simple" and r["question"][0]["role"] == "system")
    env.reset(options={"task_id": task})
    msgs, question = env.messages(), env.records[task]["question"]
    assert msgs[0].content == f"{INSTRUCTIONS}\n\n{question[0]['content']}"
    assert [(m.role, m.content) for m in msgs[1:]] == [(q["role"], q["content"])
                                                       for q in question[1:]]
    history = next(i for i, r in enumerate(env.records)
                   if any(m["role"] == "assistant" for m in r["question"]))
    env.reset(options={"task_id": history})
    assert "assistant" in [m.role for m in env.messages()]


def test_underscore_names_are_shown_and_expected():
    env = ToolUseEnv(underscore_names=True, categories=["live_simple"])
    task = next(i for i, r in enumerate(env.records) if "." in r["functions"][0]["name"])
    _, info = env.reset(options={"task_id": task})
    name = env.messages()[0].tools[0]["function"]["name"]
    assert "." not in name
    calls = gt_calls(info["task"])
    env.reset(options={"task_id": task})
    dotted_reward = env.step(format_calls(calls))[1]
    env.reset(options={"task_id": task})
    under = [Call(c.name.replace(".", "_"), c.arguments) for c in calls]
    assert (dotted_reward, env.step(format_calls(under))[1]) == (0.0, 1.0)


def test_reset_info_replay_and_task_record(env):
    task = _task_of(env, "multiple", 2)
    obs, info = env.reset(seed=1, options={"task_id": task})
    assert info["task_id"] == task and info["category"] == "multiple"
    rec = info["task"]
    assert set(rec) == {"task_id", "id", "category", "question", "functions", "ground_truth"}
    rec["functions"].clear()  # a copy: the env's data is untouched
    assert env.records[task]["functions"]
    answer = format_calls(gt_calls(env.task_record(task)))
    obs, info = env.reset(options={"task_id": task, "replay": [answer]})
    assert obs["text"] == "" and info["success"] and "task" in info
    assert env.step(answer)[1] == 0.0
    drawn = [env.reset(seed=s)[1]["task_id"] for s in range(5)]
    assert drawn == [env.reset(seed=s)[1]["task_id"] for s in range(5)]
    assert set(drawn) <= set(env.tasks("train"))


def test_config_is_checked_and_made_from_keywords():
    env = gym.make("rlpost/ToolUse-v0", categories="simple_python,irrelevance",
                   max_tasks_per_category="3")
    assert env.unwrapped.cfg == ToolUseConfig(categories=["simple_python", "irrelevance"],
                                              max_tasks_per_category=3)
    assert len(env.unwrapped.records) == 6
    for bad, match in [({"categories": ["simple_java"]}, "unknown or no categories"),
                       ({"categories": []}, "unknown or no categories"),
                       ({"test_fraction": 1.0}, "test_fraction"),
                       ({"max_tasks_per_category": 0}, "max_tasks_per_category"),
                       ({"invalid_penalty": float("nan")}, "finite")]:
        with pytest.raises(RlpostError, match=match):
            make("rlpost/ToolUse-v0", ToolUseConfig(**bad))
    with pytest.raises(RuntimeError, match="reset"):
        ToolUseEnv().messages()
