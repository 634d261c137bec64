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
)
from rlpost.envs.tooluse.multi_turn.executor import ERROR, Executor, canonical
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


def actions_for(turns: list[list[Call]]) -> list[str]:
    """One step per turn with its calls (split where an action would be too long), then a text
    reply that ends the turn."""
    out = []
    for calls in turns:
        chunk: list[Call] = []
        for c in calls:
            if chunk and len(format_calls(chunk + [c])) > MAX_ACTION_CHARS:
                out.append(format_calls(chunk))
                chunk = []
            chunk.append(c)
        if chunk:
            out.append(format_calls(chunk))
        out.append("Done.")
    return out


def play(env: ToolUseMultiTurnEnv, task: int, actions: list[str]) -> list[tuple]:
    env.reset(options={"task_id": task})
    return [env.step(a) for a in actions]


# --- the ground truth through the env ------------------------------------------------------


def test_every_shipped_ground_truth_scores_one_but_three_unplayable_entries(env):
    passed, failed = Counter(), {}
    for task, entry in enumerate(env.entries):
        steps = play(env, task, actions_for(ground_truth_calls(entry)))
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

    name = f"rlpost_{uuid.uuid4().hex[:8]}"  # bfcl caches instances in its globals by name
    n = 0
    for entry in load_entries(CATEGORIES):
        ours = Executor(entry.involved_classes, entry.initial_config, entry.long_context)
        for strings, calls in zip(entry.ground_truth, ground_truth_calls(entry)):
            theirs, instances = execute_multi_turn_func_call(
                strings, entry.initial_config, list(entry.involved_classes), name, entry.id,
                long_context=entry.long_context)
            assert ours.execute(calls) == theirs, entry.id
            assert state_differences(ours.instances, instances) == [], entry.id
            n += len(calls)
    assert n == 4625


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
            _, _, term, _, info = play(env, task, actions_for(turns))[-1]
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
    *_, (_, reward, term, _, info) = play(env, task, actions_for(dropped))
    assert term and reward == 0.0 and not info["success"]
    assert info["turn_passed"][0] is False
    wrong = copy.deepcopy(gt)
    wrong[0][1] = Call("mkdir", {"dir_name": "tmp"})
    steps = play(env, task, actions_for(wrong))
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
    steps = play(env, task, actions_for(gt))
    n = len(entry.turns)
    passed = [False] + [True] * (n - 1)
    assert steps[-1][4]["turn_passed"] == passed and not steps[-1][4]["success"]
    assert sum(s[1] for s in steps) == pytest.approx((n - 1) / n)
    assert [s[1] > 0 for s in steps if s[4]["turn_ended"]] == passed
    assert "no function call" in steps[0][4]["turn_failure"]
    episode = ToolUseMultiTurnEnv(categories=("multi_turn_base",))
    assert sum(s[1] for s in play(episode, task, actions_for(gt))) == 0.0


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


def test_results_are_cut_for_the_model_but_scored_whole():
    env = ToolUseMultiTurnEnv(max_result_chars=100, categories=("multi_turn_long_context",))
    task = task_of(env, "multi_turn_long_context_0")
    steps = play(env, task, actions_for(ground_truth_calls(env.entries[task])))
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
    with pytest.raises(RlpostError, match="unknown split 'val'"):
        env.tasks("val")


@pytest.mark.parametrize("kwargs,match", [
    ({"categories": "multi_turn_nope"}, "unknown 'multi_turn_nope'"),
    ({"categories": "multi_turn_base,multi_turn_base"}, "distinct"),
    ({"test_fraction": 0}, "test_fraction must be in"),
    ({"max_steps_per_turn": 0}, "must be >= 1"),
    ({"max_result_chars": 10}, "max_result_chars must be >= 100"),
    ({"reward": "dense"}, "'dense' is not one of episode, turns"),
])
def test_bad_config_values_are_one_line_errors(kwargs, match):
    with pytest.raises(RlpostError, match=match) as e:
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
    (Call("square_root", {"number": 2, "precision": 10**7}), "precision must be"),
    (Call("round_number", {"number": 5, "decimal_places": -10**8}), "decimal_places must"),
    (Call("cd", {"folder": 5}), "'int' object has no attribute 'rstrip'"),  # raised inside
    (Call("mkdir", {"dir_name": ["a"]}), "unhashable type: 'list'"),  # raised inside
]


@pytest.mark.parametrize("call,message", HOSTILE, ids=[c.name[:20] for c, _ in HOSTILE])
def test_hostile_calls_get_a_one_line_error_and_change_nothing(call, message):
    ex = _executor()
    before = _snapshot(ex)
    result = ex.run(call)
    assert result.startswith(ERROR) and message in result, result
    assert "\n" not in result and len(result) < 300
    assert _snapshot(ex) == before


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


def test_a_directory_that_contains_itself_breaks_nothing():
    ex, other = _executor(), _executor()
    for e in (ex, other):
        assert e.run(Call("mkdir", {"dir_name": "loop"})) == "None"
    assert "copied" in ex.run(Call("cp", {"source": "loop", "destination": "loop"}))
    assert ex.run(Call("du", {})).startswith(ERROR + "maximum recursion depth")
    assert len(ex.fingerprint()) == 16 and ex.fingerprint() != other.fingerprint()
    assert state_differences(ex.instances, other.instances) == ["GorillaFileSystem.root"]


def test_missing_results_is_an_order_free_sub_multiset():
    assert missing_results(["a", "b", "a"], ["b", "a", "x", "a"]) == []
    assert missing_results(["a", "a"], ["a", "b"]) == ["a"]
    assert missing_results([], []) == []
