"""`rlpost/ToolUseMultiTurn-v0`: the executor is safe and agrees with bfcl-eval's execution, the
scoring agrees with bfcl-eval's multi-turn checker, and every shipped entry's ground truth
played through the env scores 1 (but the three that cannot, each for a stated reason)."""

from __future__ import annotations

import builtins
import copy
import os
import random
import socket
import subprocess
import uuid
from collections import Counter

import gymnasium as gym
import pytest
import rlpost.envs  # noqa: F401  (registers the envs)
from rlpost.envs.tooluse.calls import Call, format_calls, parse_calls
from rlpost.envs.tooluse.data import is_test
from rlpost.envs.tooluse.env import PYTHON_HINT, tool_schema
from rlpost.envs.tooluse.multi_turn.data import (
    ADDED_FUNCTIONS_MESSAGE,
    CATEGORIES,
    class_docs,
    entry_docs,
    ground_truth_calls,
    load_category,
    load_entries,
    parse_ground_truth,
)
from rlpost.envs.tooluse.multi_turn.env import (
    ToolUseMultiTurnConfig,
    ToolUseMultiTurnEnv,
    replay_actions,
)
from rlpost.envs.tooluse.multi_turn.executor import (
    ERROR,
    Executor,
    canonical,
    stringify,
)
from rlpost.envs.tooluse.multi_turn.scoring import missing_results, state_differences

from rlpost.env import MAX_ACTION_CHARS
from rlpost.errors import RlpostError

UNPLAYABLE = {
    # its ground truth calls tail in turn 1, a function held out until turn 3; bfcl runs any
    # public method, we only the offered ones
    "multi_turn_miss_func_49": "turn 1",
    # a ground-truth post_tweet of about 6,700 characters: longer than the action space (4,096)
    "multi_turn_long_context_8": "turn 2",
    "multi_turn_long_context_18": "turn 2",
}


@pytest.fixture(scope="module")
def env() -> ToolUseMultiTurnEnv:
    return ToolUseMultiTurnEnv()


def task_of(env: ToolUseMultiTurnEnv, entry_id: str) -> int:
    return next(i for i, e in enumerate(env.entries) if e.id == entry_id)


def call_text(call: Call) -> str:
    return format_calls([call])[1:-1]


def play(env: ToolUseMultiTurnEnv, task: int, actions: list[str]) -> list[tuple]:
    env.reset(options={"task_id": task})
    return [env.step(a) for a in actions]


# --- the ground truth through the env ------------------------------------------------------


def test_every_shipped_ground_truth_scores_one_but_three_unplayable_entries(env):
    passed, failed = Counter(), {}
    for task, entry in enumerate(env.entries):
        steps = play(env, task, replay_actions(ground_truth_calls(entry)))
        _, reward, term, trunc, info = steps[-1]
        assert term and not trunc
        assert [s[1] for s in steps[:-1]] == [0.0] * (len(steps) - 1)
        ended = [s[4] for s in steps if s[4]["turn_ended"]]
        assert len(ended) == len(entry.turns) and ended[-1]["turn_passed"] == info["turn_passed"]
        if info["success"]:
            assert reward == 1.0 and info["turn_passed"] == [True] * len(entry.turns)
            assert [i["turn_reward"] for i in ended] == [1.0] * len(entry.turns)
            assert info["reward_components"] == {"turns_passed": 1.0, "all_turns": 1.0}
            passed[entry.category] += 1
        else:
            assert reward == 0.0
            failed[entry.id] = next(i["turn_failure"] for i in ended if i["turn_reward"] == 0.0)
    assert passed == {"multi_turn_base": 200, "multi_turn_miss_func": 199,
                      "multi_turn_miss_param": 200, "multi_turn_long_context": 198}
    assert set(failed) == set(UNPLAYABLE)
    for entry_id, reason in failed.items():
        assert reason.startswith(UNPLAYABLE[entry_id]), reason
    assert "not among the model's" in failed["multi_turn_miss_func_49"]


def test_ground_truth_with_positional_arguments_becomes_keyword_calls():
    owners = {"cd": "GorillaFileSystem", "post_tweet": "TwitterAPI"}
    assert parse_ground_truth("cd('x')", owners) == Call("cd", {"folder": "x"})
    assert parse_ground_truth("post_tweet('hi', tags=['#a'])", owners) == Call(
        "post_tweet", {"content": "hi", "tags": ["#a"]})
    with pytest.raises(RlpostError, match="not a plain call"):
        parse_ground_truth("os.system('ls')", owners)
    with pytest.raises(RlpostError, match="does not parse"):
        parse_ground_truth("cd(folder=__import__('os'))", owners)


# --- agreement with bfcl-eval ---------------------------------------------------------------


def test_results_and_states_equal_bfcls_own_execution_for_every_ground_truth_call():
    from bfcl_eval.eval_checker.multi_turn_eval.multi_turn_utils import (
        execute_multi_turn_func_call,
    )
    from rlpost.envs.tooluse.multi_turn.executor import MAX_STATE_NODES

    name = f"rlpost_{uuid.uuid4().hex[:8]}"  # bfcl caches instances in its globals by name
    n, largest = 0, 0
    for entry in load_entries(CATEGORIES):
        ours = Executor(entry.involved_classes, entry.initial_config, entry.long_context)
        for strings, calls in zip(entry.ground_truth, ground_truth_calls(entry)):
            theirs, instances = execute_multi_turn_func_call(
                strings, entry.initial_config, list(entry.involved_classes), name, entry.id,
                long_context=entry.long_context)
            assert ours.execute(calls) == theirs, entry.id
            assert state_differences(ours.instances, instances) == [], entry.id
            n += len(calls)
            largest = max(largest, ours.state_nodes())
            assert ours.state_error == "", entry.id
    assert n == 4625
    assert 500 < largest < 700 < MAX_STATE_NODES // 100  # the module docstring's numbers


def _perturbations(entry, rng: random.Random) -> list[tuple[str, list[list[Call]]]]:
    gt = ground_truth_calls(entry)
    turns = [t for t, calls in enumerate(gt) if calls]
    t = rng.choice(turns)
    dropped = copy.deepcopy(gt)
    dropped[t].pop(rng.randrange(len(dropped[t])))
    wrong = copy.deepcopy(gt)
    i = rng.randrange(len(wrong[t]))
    args = dict(wrong[t][i].arguments)
    if args:
        key = rng.choice(sorted(args))
        v = args[key]
        args[key] = (v + "x" if isinstance(v, str) else not v if isinstance(v, bool)
                     else v + 1 if isinstance(v, (int, float)) else [])
    wrong[t][i] = Call(wrong[t][i].name, args)
    silent = copy.deepcopy(gt)
    silent[t] = []
    extra = copy.deepcopy(gt)
    extra[t] = extra[t] + extra[t][-1:]
    return [("truth", gt), ("dropped", dropped), ("wrong", wrong), ("silent", silent),
            ("extra", extra)]


def test_episode_verdicts_equal_bfcls_multi_turn_checker_on_perturbed_answers(env):
    """The ground truth and four perturbations of it (a call dropped, an argument changed, a
    turn without calls, a call repeated) of every 8th entry: our success equals the verdict of
    bfcl-eval's own checker on the same calls."""
    from bfcl_eval.eval_checker.multi_turn_eval.multi_turn_checker import (
        multi_turn_checker,
    )

    rng = random.Random(0)
    verdicts = Counter()
    sample = [t for t, e in enumerate(env.entries) if t % 8 == 0 and e.id not in UNPLAYABLE]
    for task in sample:
        entry = env.entries[task]
        for kind, turns in _perturbations(entry, rng):
            _, _, term, _, info = play(env, task, replay_actions(turns))[-1]
            assert term
            decoded = [[[call_text(c) for c in calls]] if calls else [] for calls in turns]
            record = entry.record()
            theirs = multi_turn_checker(decoded, entry.ground_truth, record, entry.category,
                                        f"rlpost_{uuid.uuid4().hex[:8]}")
            assert info["success"] == theirs["valid"], (entry.id, kind, info["turn_passed"])
            verdicts[kind, info["success"]] += 1
    assert verdicts["truth", True] == len(sample) == 99
    assert verdicts["dropped", False] > 80 and verdicts["silent", False] > 80
    assert verdicts["wrong", False] > 50 and verdicts["extra", False] > 20


# --- scoring in the env ---------------------------------------------------------------------


def test_a_dropped_call_or_a_wrong_argument_fails_its_turn(env):
    task = task_of(env, "multi_turn_base_0")
    gt = ground_truth_calls(env.entries[task])
    dropped = [gt[0][:-1]] + gt[1:]
    *_, (_, reward, term, _, info) = play(env, task, replay_actions(dropped))
    assert term and reward == 0.0 and not info["success"]
    assert info["turn_passed"][0] is False
    wrong = copy.deepcopy(gt)
    wrong[0][1] = Call("mkdir", {"dir_name": "tmp"})
    steps = play(env, task, replay_actions(wrong))
    first_end = next(s[4] for s in steps if s[4]["turn_ended"])
    assert first_end["turn_reward"] == 0.0
    assert "state differs" in first_end["turn_failure"]
    assert "GorillaFileSystem.root" in first_end["turn_failure"]
    assert steps[-1][1] == 0.0 and not steps[-1][4]["success"]


def test_turn_rewards_pay_per_passed_turn_when_asked():
    env = ToolUseMultiTurnEnv(reward="turns", categories=("multi_turn_base",))
    task = task_of(env, "multi_turn_base_1")
    entry = env.entries[task]
    gt = ground_truth_calls(entry)
    assert entry.ground_truth[0] == ["ls(a=True)"]  # reads only
    gt[0] = []  # a text reply where the turn needs a call: only that turn fails
    steps = play(env, task, replay_actions(gt))
    n = len(entry.turns)
    passed = [False] + [True] * (n - 1)
    assert steps[-1][4]["turn_passed"] == passed and not steps[-1][4]["success"]
    assert sum(s[1] for s in steps) == pytest.approx((n - 1) / n)
    assert [s[1] > 0 for s in steps if s[4]["turn_ended"]] == passed
    assert "no function call" in steps[0][4]["turn_failure"]
    episode = ToolUseMultiTurnEnv(categories=("multi_turn_base",))
    assert sum(s[1] for s in play(episode, task, replay_actions(gt))) == 0.0


def test_force_quit_after_too_many_call_steps_fails_the_episode():
    env = ToolUseMultiTurnEnv(max_steps_per_turn=2, categories=("multi_turn_base",))
    task = task_of(env, "multi_turn_base_0")
    steps = play(env, task, ["[ls()]", "[ls()]"])
    assert not any(s[2] for s in steps)
    _, reward, term, _, info = env.step("[ls()]")
    assert term and reward == 0.0 and not info["success"]
    assert info["turn_passed"] == [False] and "forced to quit" in info["turn_failure"]
    _, reward, term, _, info = env.step("[ls()]")  # inert afterwards
    assert (reward, term, info["valid"]) == (0.0, True, False)


def test_every_info_carries_success_and_the_components_so_far_so_a_cut_episode_ends_with_them():
    env = gym.make("rlpost/ToolUseMultiTurn-v0", categories="multi_turn_base",
                   max_episode_steps=3)
    task = task_of(env.unwrapped, "multi_turn_base_0")
    n = len(env.unwrapped.entries[task].turns)
    gt = ground_truth_calls(env.unwrapped.entries[task])
    _, info = env.reset(options={"task_id": task})
    assert info["success"] is False
    assert info["reward_components"] == {"turns_passed": 0.0, "all_turns": 0.0}
    infos = [env.step(a)[4] for a in [format_calls(gt[0]), "Done."]]
    _, _, term, trunc, info = env.step("[ls()]")  # the turn limit cuts the episode here
    assert trunc and not term
    assert [i["success"] for i in infos + [info]] == [False] * 3
    assert infos[0]["reward_components"] == {"turns_passed": 0.0, "all_turns": 0.0}
    assert info["reward_components"] == {"turns_passed": 1 / n, "all_turns": 0.0}
    info = env.step("")[4]  # invalid, inert: same keys
    assert info["success"] is False and info["reward_components"]["turns_passed"] == 1 / n


def test_results_are_cut_for_the_model_but_scored_whole():
    env = ToolUseMultiTurnEnv(max_result_chars=100, categories=("multi_turn_long_context",))
    task = task_of(env, "multi_turn_long_context_0")
    steps = play(env, task, replay_actions(ground_truth_calls(env.entries[task])))
    assert steps[-1][4]["success"]
    tool = [m.content for m in env.messages() if m.role == "tool"]
    assert any(m.endswith("more characters cut]") and len(m) < 150 for m in tool)
    assert max(len(r) for r in env.model_results) > 1000


# --- the episode loop -----------------------------------------------------------------------


def test_calls_get_tool_messages_and_text_ends_the_turn(env):
    task = task_of(env, "multi_turn_base_0")
    env.reset(options={"task_id": task})
    first_user = env.messages()[1].content
    obs, reward, term, _, info = env.step("[cd(folder='document'), ls()]")
    assert (reward, term, info["valid"], info["turn_ended"], info["calls"]) == (
        0.0, False, True, False, 2)
    roles = [m.role for m in env.messages()]
    assert roles == ["system", "user", "assistant", "tool", "tool"]
    assert obs["text"] == "\n".join(m.content for m in env.messages()[-2:])
    assert '"current_working_directory": "document"' in obs["text"]
    obs, _, _, _, info = env.step("[cd('temp')]")  # positional: not a call list, so text
    assert info["turn_ended"] and "positional" in info["parse_error"]
    assert info["turn"] == 0 and env.turn == 1
    assert obs["text"] == env.entries[task].turns[1][0]["content"] != first_user
    _, _, _, _, info = env.step("[]")  # an empty call list is a text reply too
    assert info["turn_ended"] and info["calls"] == 0 and env.turn == 2


@pytest.mark.parametrize("text,error", [
    ("Done.", ""),
    ("I created the folder (and the file) for you.", ""),
    ("Which directory do you mean?", ""),
    ("[cd('temp')]", "positional"),
    ("cd(folder=)", "not a Python call list"),
    ('{"name": "cd", "arguments": ', "not valid JSON"),
    ("```\n[cd(folder=x)]\n```", "literals"),
    ('Sure. <tool_call>{"name": "ls", "arguments": 5}</tool_call>', "must be an object"),
])
def test_prose_ends_the_turn_without_a_parse_error_but_a_broken_call_has_one(env, text, error):
    env.reset(options={"task_id": 0})
    info = env.step(text)[4]
    assert info["valid"] and info["turn_ended"] and info["calls"] == 0 and env.turn == 1
    assert (info["parse_error"] == "") if not error else (error in info["parse_error"])


def test_empty_and_non_text_actions_are_invalid_and_change_nothing(env):
    env.reset(options={"task_id": 0, "replay": ["[ls()]"]})
    before = ([(m.role, m.content) for m in env.messages()], env._obs(), env.steps_in_turn)
    for action in ("", "   \n", None, 3, ["[ls()]"], "[ls()]" + " " * MAX_ACTION_CHARS):
        obs, reward, term, trunc, info = env.step(action)
        assert (reward, term, trunc, info["valid"]) == (0.0, False, False, False)
        after = ([(m.role, m.content) for m in env.messages()], obs, env.steps_in_turn)
        assert after == before


def test_held_out_functions_arrive_at_their_turn(env):
    task = task_of(env, "multi_turn_miss_func_0")
    entry = env.entries[task]
    assert entry.missed_function == {3: ("sort",)}
    env.reset(options={"task_id": task})
    names = [t["function"]["name"] for t in env.messages()[0].tools]
    assert "sort" not in names and "mv" in names
    obs, *_ = env.step("[sort(file_name='final_report.pdf')]")
    assert obs["text"] == ERROR + "unknown function 'sort'"
    for _ in range(3):
        env.step("Done.")
    assert env.turn == 3
    user = env.messages()[-1]
    sort_doc = next(d for d in class_docs("GorillaFileSystem") if d["name"] == "sort")
    assert user.role == "user" and user.content == ADDED_FUNCTIONS_MESSAGE
    assert user.tools == [tool_schema(sort_doc)]
    assert env.messages()[0].tools == [tool_schema(d) for d in entry_docs(entry)[0]]
    env.step("[cd(folder='document')]")
    obs, *_ = env.step("[sort(file_name='final_report.pdf')]")
    assert obs["text"].startswith('{"sorted_content"')


def test_anchor_names_the_state_whatever_the_order_of_calls(env):
    task = task_of(env, "multi_turn_base_0")
    a, _ = env.reset(options={"task_id": task})
    b, *_ = env.step("[ls()]")  # reads only
    assert b["anchor"] == a["anchor"]
    c, *_ = env.step("[mkdir(dir_name='x'), mkdir(dir_name='y')]")
    d, _ = env.reset(options={"task_id": task, "replay": ["[mkdir(dir_name='y')]",
                                                          "[mkdir(dir_name='x')]"]})
    assert c["anchor"] == d["anchor"] != a["anchor"]
    e, *_ = env.step("Done.")  # next turn, same state
    assert e["anchor"] != d["anchor"] and e["anchor"].split("|")[2] == d["anchor"].split("|")[2]


def test_reset_info_carries_a_copy_of_the_entry(env):
    task = task_of(env, "multi_turn_miss_func_0")
    _, info = env.reset(options={"task_id": task})
    record = info["task"]
    entry = env.entries[task]
    assert record["task_id"] == task and record["id"] == entry.id
    assert record["ground_truth"] == entry.ground_truth
    assert record["initial_config"] == entry.initial_config
    assert record["missed_function"] == {"3": ["sort"]}
    assert record["involved_classes"] == ["TwitterAPI", "GorillaFileSystem"]
    record["initial_config"].clear()
    assert env.reset(options={"task_id": task})[1]["task"]["initial_config"]


def test_splits_are_fixed_by_entry_id(env):
    train, test = env.tasks("train"), env.tasks("test")
    assert sorted(train + test) == list(range(800)) and not set(train) & set(test)
    assert all(is_test(env.entries[i].id, 0.3) for i in test)
    assert 200 < len(test) < 280
    other = ToolUseMultiTurnEnv(categories=("multi_turn_miss_param", "multi_turn_base"))
    assert {other.entries[i].id for i in other.tasks("test")} <= {
        env.entries[i].id for i in test}
    with pytest.raises(ValueError, match="unknown split 'val'; use 'train' or 'test'"):
        env.tasks("val")


def test_repeated_categories_count_once_at_their_first_place():
    env = gym.make("rlpost/ToolUseMultiTurn-v0",
                   categories="multi_turn_miss_param,multi_turn_base,multi_turn_miss_param")
    entries = env.unwrapped.entries
    assert len(entries) == 400
    assert entries[0].category == "multi_turn_miss_param"
    assert entries[200].category == "multi_turn_base"
    assert sorted(env.unwrapped.tasks("train") + env.unwrapped.tasks("test")) == list(range(400))
    same = ToolUseMultiTurnEnv(categories=("multi_turn_base", "multi_turn_base"))
    assert [e.id for e in same.entries] == [e.id for e in load_category("multi_turn_base")]


@pytest.mark.parametrize("kwargs,match", [
    ({"categories": "multi_turn_nope"}, "unknown category 'multi_turn_nope'; choose from "),
    ({"categories": ()}, "categories must name one or more categories"),
    ({"test_fraction": 0}, r"test_fraction must be in \(0, 1\), got 0"),
    ({"max_steps_per_turn": 0}, "max_steps_per_turn and max_calls_per_turn must be >= 1"),
    ({"max_result_chars": 10}, "max_result_chars must be >= 100"),
    ({"reward": "dense"}, "reward: 'dense' is not one of episode, turns"),
])
def test_bad_config_values_are_one_line_errors(kwargs, match):
    with pytest.raises(RlpostError, match="^ToolUseMultiTurnConfig: " + match) as e:
        gym.make("rlpost/ToolUseMultiTurn-v0", **kwargs)
    assert "\n" not in str(e.value)
    env = gym.make("rlpost/ToolUseMultiTurn-v0", categories="multi_turn_base", reward="turns")
    assert env.unwrapped.config == ToolUseMultiTurnConfig(categories=("multi_turn_base",),
                                                          reward="turns")


def test_tool_schemas_are_json_schema_functions():
    doc = next(d for d in class_docs("MathAPI") if d["name"] == "mean")
    schema = tool_schema(doc)
    assert schema["type"] == "function" and schema["function"]["name"] == "mean"
    assert schema["function"]["description"] == doc["description"] + PYTHON_HINT
    params = schema["function"]["parameters"]
    assert params["type"] == "object" and params["required"] == ["numbers"]
    assert params["properties"]["numbers"] == {
        "type": "array", "items": {"type": "number"},
        "description": doc["parameters"]["properties"]["numbers"]["description"]}
    assert "response" not in schema["function"] and doc["parameters"]["type"] == "dict"


# --- executor safety ------------------------------------------------------------------------


def _executor(max_calls: int | None = None) -> Executor:
    entry = next(e for e in load_category("multi_turn_base") if e.id == "multi_turn_base_15")
    assert entry.involved_classes == ("GorillaFileSystem", "MathAPI")
    return Executor(entry.involved_classes, entry.initial_config, False, max_calls)


def _snapshot(ex: Executor) -> tuple:
    fs = ex.instances["GorillaFileSystem"]
    return repr(canonical(ex.state())), fs.pwd(), ex.fingerprint()


def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


HOSTILE = [
    (Call("rm_everything", {}), "unknown function 'rm_everything'"),
    (Call("os.system", {"command": "touch /tmp/pwned"}), "is not a function name"),
    (Call("GorillaFileSystem.rm", {"file_name": "x"}), "is not a function name"),
    (Call("_load_scenario", {"scenario": {}}), "is not a function name"),
    (Call("_navigate_to_directory", {"path": "/"}), "is not a function name"),
    (Call("__init__", {}), "is not a function name"),
    (Call("__class__", {}), "is not a function name"),
    (Call("post_tweet", {"content": "hi"}), "unknown function 'post_tweet'"),  # not involved
    (Call("cd", {}), "cd() missing a required argument: 'folder'"),
    (Call("cd", {"folder": "x", "force": True}), "unexpected keyword argument 'force'"),
    (Call("cd", {"self": 1, "folder": "x"}), "unexpected keyword argument 'self'"),
    (Call("cd", {"folder": "x", "a b": 1}), "unexpected keyword argument 'a b'"),
    (Call("echo", {"content": "x" * 20_000, "file_name": "a.txt"}), "arguments too large"),
    (Call("touch", {"file_name": _nested(40)}), "nested deeper than 16"),
    (Call("mean", {"numbers": _nested(100_000)}), "nested deeper than 16"),
    (Call("power", {"base": 10, "exponent": 10**9}), "result too large"),
    (Call("logarithm", {"value": 2, "base": 10, "precision": 10**7}), "precision must be"),
    (Call("logarithm", {"value": 2, "base": 3, "precision": "200000"}), "precision must be"),
    (Call("logarithm", {"value": 2, "base": 3, "precision": 1e6}), "precision must be"),
    (Call("logarithm", {"value": 2, "base": 3, "precision": " 1_000_001 "}), "precision must be"),
    (Call("logarithm", {"value": "1e" + "9" * 2000, "base": 3, "precision": 10}),
     "value as a string must be at most 100 characters"),
    (Call("logarithm", {"value": 2, "base": "1.5e-" + "9" * 4000, "precision": 10}),
     "base as a string must be at most 100 characters"),
    (Call("square_root", {"number": 2, "precision": 10**7}), "precision must be"),
    (Call("round_number", {"number": 5, "decimal_places": -10**8}), "decimal_places must"),
    (Call("cd", {"folder": 5}), "'int' object has no attribute 'rstrip'"),  # raised inside
    (Call("mkdir", {"dir_name": ["a"]}), "unhashable type: 'list'"),  # raised inside
]


@pytest.mark.parametrize("call,message", HOSTILE,
                         ids=[f"{i}-{c.name[:20]}" for i, (c, _) in enumerate(HOSTILE)])
def test_hostile_calls_get_a_one_line_error_and_change_nothing(call, message):
    ex = _executor()
    before = _snapshot(ex)
    result = ex.run(call)
    assert result.startswith(ERROR) and message in result, result
    assert "\n" not in result and len(result) < 300
    assert _snapshot(ex) == before


def test_math_calls_in_every_accepted_form_run_as_in_bfcl_when_cheap():
    import decimal

    import mpmath
    from bfcl_eval.eval_checker.multi_turn_eval.func_source_code.math_api import MathAPI

    cases = [("logarithm", {"value": 2, "base": 3, "precision": "1000"}),
             ("logarithm", {"value": "1e99", "base": "2", "precision": 1000.0}),
             ("logarithm", {"value": 8, "base": 2, "precision": "1e3"}),  # int() refuses it
             ("logarithm", {"value": 8, "base": 2, "precision": -10**9}),  # mpmath takes >= 1
             ("square_root", {"number": 2, "precision": 1000}),
             ("square_root", {"number": 2, "precision": "1000000"}),  # decimal: ints only
             ("square_root", {"number": 2, "precision": 1e6}),
             ("round_number", {"number": 2.5, "decimal_places": 1000}),
             ("round_number", {"number": 2, "decimal_places": 1e9}),  # round: ints only
             ("power", {"base": 2, "exponent": 499_999}),  # 1,000,000 bits: the most
             ("power", {"base": 2.0, "exponent": 10**9}),  # a float overflows at once
             ("power", {"base": 10, "exponent": -10**9}),  # a float too
             ("power", {"base": -1, "exponent": 10**12})]
    ex = _executor()
    for name, args in cases:
        ours = ex.run(Call(name, args))
        ex.new_turn()
        assert not ours.startswith(f"{ERROR}{name}:"), (name, args, ours)  # not refused
        prec = mpmath.mp.prec
        with decimal.localcontext():  # bfcl's call sets both precisions and leaves them set
            try:
                expected = stringify(getattr(MathAPI(), name)(**args))
            except Exception as e:  # noqa: BLE001 - raised inside, reported as bfcl does
                expected = ERROR + str(e)
            finally:
                mpmath.mp.prec = prec
        assert ours == expected, (name, args)


def test_calls_not_offered_to_the_model_do_not_run():
    ex = _executor()
    before = _snapshot(ex)
    assert ex.run(Call("mkdir", {"dir_name": "x"}), offered={"ls"}) == (
        ERROR + "unknown function 'mkdir'")
    assert _snapshot(ex) == before
    assert ex.run(Call("mkdir", {"dir_name": "x"}), offered={"mkdir"}) == "None"
    assert _snapshot(ex) != before


def test_errors_raised_inside_methods_read_as_bfcls():
    from bfcl_eval.eval_checker.multi_turn_eval.multi_turn_utils import (
        execute_multi_turn_func_call,
    )

    entry = next(e for e in load_category("multi_turn_base") if e.id == "multi_turn_base_15")
    strings = ["cd(folder=5)", "mkdir(dir_name=['a'])", "mean(numbers=['a', 1])",
               "divide(a=1, b=0)", "wc(file_name='nope')"]
    theirs, _ = execute_multi_turn_func_call(strings, entry.initial_config,
                                             list(entry.involved_classes),
                                             f"rlpost_{uuid.uuid4().hex[:8]}", entry.id)
    ex = _executor()
    assert ex.execute([parse_calls(s)[0] for s in strings]) == theirs


def test_the_call_budget_of_a_turn():
    ex = _executor(max_calls=3)
    results = ex.execute([Call("mkdir", {"dir_name": f"d{i}"}) for i in range(4)])
    assert results[:3] == ["None"] * 3 and results[3].startswith(ERROR + "call budget spent")
    assert ex.run(Call("ls", {})).startswith(ERROR + "call budget spent")
    assert "d3" not in ex.instances["GorillaFileSystem"]._current_dir.contents
    ex.new_turn()
    assert ex.run(Call("mkdir", {"dir_name": "d3"})) == "None"
    assert "d3" in ex.run(Call("ls", {}))


def test_no_call_touches_the_real_file_system_processes_or_network(monkeypatch, tmp_path):
    entries = load_entries(CATEGORIES)
    plans = [(e, ground_truth_calls(e)) for e in entries]  # data read before the lock-down

    def refuse(*args, **kwargs):
        raise AssertionError("REAL-SYSTEM-ACCESS")

    monkeypatch.chdir(tmp_path)
    for target, attr in [(builtins, "open"), (os, "open"), (os, "system"), (os, "remove"),
                         (os, "mkdir"), (subprocess, "Popen"), (socket, "socket")]:
        monkeypatch.setattr(target, attr, refuse)
    for entry, turns in plans:
        ex = Executor(entry.involved_classes, entry.initial_config, entry.long_context)
        hostile = [Call("rm", {"file_name": "/"}), Call("cd", {"folder": "/"}),
                   Call("touch", {"file_name": "/tmp/x"})]
        for calls in turns + [hostile]:
            assert not any("REAL-SYSTEM-ACCESS" in r for r in ex.execute(calls)), entry.id
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_a_directory_that_contains_itself_stops_every_later_call():
    ex, other = _executor(), _executor()
    for e in (ex, other):
        assert e.run(Call("mkdir", {"dir_name": "loop"})) == "None"
    assert ex.state_error == ""
    assert "copied" in ex.run(Call("cp", {"source": "loop", "destination": "loop"}))
    assert "contains itself" in ex.state_error
    # du / find would recurse through the loop (twice over after a second cp: without end)
    for call in (Call("du", {}), Call("find", {}), Call("ls", {})):
        assert ex.run(call) == (f"{ERROR}state too large ({ex.state_error}); no call runs any "
                                "more")
    assert ex.fingerprint() == "state-too-large" != other.fingerprint()
    assert state_differences(ex.instances, other.instances) == ["GorillaFileSystem.root"]
    assert canonical(ex.state())  # a finite picture all the same


def test_missing_results_is_an_order_free_sub_multiset():
    assert missing_results(["a", "b", "a"], ["b", "a", "x", "a"]) == []
    assert missing_results(["a", "a"], ["a", "b"]) == ["a"]
    assert missing_results([], []) == []


# --- state size ---------------------------------------------------------------------------


DOUBLE = ("[cp(source='a', destination='b'), mkdir(dir_name='c'), mv(source='a', destination='c'), "
          "mv(source='b', destination='c'), mv(source='c', destination='a')]")
"""One step that doubles the paths under directory a (bfcl's cp shares the copied contents)."""


def test_state_size_counts_every_path_and_refuses_a_state_that_contains_itself():
    from rlpost.envs.tooluse.multi_turn.executor import StateTooLarge, state_size

    leaf: list = [1, 2]
    shared = {"x": leaf, "y": leaf}
    assert state_size(leaf) == 3 and state_size(shared) == 1 + 2 * (1 + 3)
    assert state_size([shared] * 3) == 1 + 3 * 9 and state_size("text") == 1
    deep = chain = []
    for _ in range(5000):  # deeper than Python's recursion limit
        chain.append([])
        chain = chain[0]
    assert state_size(deep) == 5001
    with pytest.raises(StateTooLarge, match="more than 26 nodes"):
        state_size([shared] * 3, max_nodes=26)
    loop: list = [1]
    loop.append([loop])
    with pytest.raises(StateTooLarge, match="contains itself"):
        state_size({"a": loop})
    dag: list = [0]
    for _ in range(200):  # 2**200 paths: counted in 200 steps, refused at once
        dag = [dag, dag]
    with pytest.raises(StateTooLarge, match="more than"):
        state_size(dag)
    ex = _executor()
    ex.execute(parse_calls("[mkdir(dir_name='a'), cd(folder='a'), touch(file_name='f'), "
                           "echo(content='hi', file_name='f'), cd(folder='..'), "
                           "cp(source='a', destination='b')]"))
    state = ex.state()
    n = state_size(state)
    assert n == ex.state_nodes() > 20
    assert canonical(state, max_nodes=n) == canonical(state, max_nodes=None)  # canonical
    with pytest.raises(StateTooLarge):  # visits exactly the nodes state_size counts
        canonical(state, max_nodes=n - 1)


def test_a_state_over_budget_stops_the_calls_after_the_one_that_made_it():
    ex = Executor(("GorillaFileSystem",), {"GorillaFileSystem": {"root": {"r": {
        "type": "directory", "contents": {}}}}}, False, max_state_nodes=300)
    ex.execute(parse_calls("[mkdir(dir_name='a'), cd(folder='a'), touch(file_name='f'), "
                           "cd(folder='..')]"))
    sizes = []
    while not ex.state_error:
        results = ex.execute(parse_calls(DOUBLE))
        sizes.append(ex.state_nodes())
    assert ex.state_error == "more than 300 nodes" and len(sizes) >= 3
    assert sizes[-1] <= 300  # as last measured below the budget
    assert results[-1].startswith(ERROR + "state too large (more than 300 nodes)")
    assert ex.run(Call("find", {})).startswith(ERROR + "state too large")


def test_a_state_whose_paths_double_every_step_ends_the_episode_in_bounded_time():
    import time

    env = gym.make("rlpost/ToolUseMultiTurn-v0", categories="multi_turn_base")
    env.reset(options={"task_id": 0})
    env.step("[mkdir(dir_name='a'), cd(folder='a'), touch(file_name='f'), cd(folder='..')]")
    start, times, info = time.perf_counter(), [], {}
    for _ in range(16):  # unbounded, round 16 alone would take 4 s and round 30 a day
        t = time.perf_counter()
        obs, reward, term, trunc, info = env.step(DOUBLE)
        times.append(time.perf_counter() - t)
        if term:
            break
    assert term and not trunc and reward == 0.0 and info["success"] is False
    from rlpost.envs.tooluse.multi_turn.env import MAX_SCORED_RESULT_CHARS
    from rlpost.envs.tooluse.multi_turn.executor import MAX_STATE_NODES

    assert info["turn_failure"] == f"turn 0: state too large (more than {MAX_STATE_NODES} nodes)"
    assert info["turn_passed"] == [False] and obs["anchor"].endswith("|state-too-large")
    assert len(times) == 14 and time.perf_counter() - start < 5.0, times
    assert env.step("[find(path='a')]")[4]["valid"] is False  # the episode is over
    # a large find before the end: shown cut, kept for scoring cut (no ground truth is as long)
    env.reset(options={"task_id": 0, "replay": [
        "[mkdir(dir_name='a'), cd(folder='a'), touch(file_name='f'), cd(folder='..')]"]
        + [DOUBLE] * 10})
    obs, *_ = env.step("[find(path='a')]")
    assert obs["text"].endswith("more characters cut]")
    kept = env.unwrapped.model_results[-1]
    assert MAX_SCORED_RESULT_CHARS < len(kept) < MAX_SCORED_RESULT_CHARS + 50
