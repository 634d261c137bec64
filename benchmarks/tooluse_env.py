"""Tool-use env throughput: `rlpost/ToolUse-v0` and `rlpost/ToolUseMultiTurn-v0` steps per
second, env construction time, and the executor and AST checker alone against bfcl-eval's own.

- ToolUse-v0: one episode = reset + one step, over every task of the default categories, once
  with the task's ground-truth answer (`rlpost.envs.tooluse.reference.reference_answer`) and once with a
  wrong one (an argument value changed, or an unexpected argument; a call on irrelevance
  tasks); steps/s = such episodes per second. Construction: the first `make` (cold: reads the
  BFCL files) and later ones (warm: cached data).
- ToolUseMultiTurn-v0: every entry's ground truth replayed through the env as the tests replay
  it (per turn one step with its calls, split where an action would be too long, then a text
  reply that ends the turn); steps/s counts `step` calls, the time includes the resets.
- Executor alone: the ground-truth calls of every multi-turn entry (parsed once beforehand) on
  a fresh `Executor` per entry; the same calls as strings through bfcl-eval's
  `execute_multi_turn_func_call` (eval on instances it keeps in its globals, a fresh name per
  repeat). Calls/s counts only the calls; instance setup per episode is reported apart
  (ours: `Executor(...)`; bfcl: its first call with an empty call list). Results must agree.
- AST check alone: `ast_check.check` vs bfcl-eval's `ast_checker` (with its format check, as
  its eval runner calls it; model config stubbed as in tests/test_tooluse_ast.py) on the same
  decoded ground-truth answers of the AST categories. Verdicts must agree.

Measures are medians over repeats, in one process on one core. ``peak_rss_envs_mb`` is the peak
RSS before torch (imported by the itool recipe for the reference answers) and bfcl's own
executor run; ``peak_rss_mb`` that of the whole run.

    python benchmarks/tooluse_env.py [--quick] [--out FILE]
"""

from __future__ import annotations

import argparse
import copy
import importlib
import resource
import statistics
import sys
import time
import types
from collections import defaultdict
from types import SimpleNamespace
from typing import Any

from _common import print_table, write_result


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def wrong_value(v: Any) -> Any:
    if isinstance(v, bool):
        return not v
    if isinstance(v, (int, float)):
        return v + 1
    if isinstance(v, str):
        return v + "zz"
    if isinstance(v, list):
        return v + v[:1] if v else ["zz"]
    return "zz"


def wrong_answer(task: dict[str, Any]) -> str:
    """An answer that should fail: a call on irrelevance tasks; otherwise the reference calls
    with the first argument's value changed (or an unexpected argument)."""
    from rlpost.envs.tooluse.ast_check import expects_no_call
    from rlpost.envs.tooluse.calls import Call, format_calls
    from rlpost.envs.tooluse.reference import reference_calls

    if expects_no_call(task["category"]):
        fns = task["functions"]
        return format_calls([Call(fns[0]["name"] if fns else "search", {})])
    calls = reference_calls(task["ground_truth"])
    first = calls[0]
    if first.arguments:
        k = next(iter(first.arguments))
        args = {**first.arguments, k: wrong_value(first.arguments[k])}
    else:
        args = {"zz": 1}
    return format_calls([Call(first.name, args)] + calls[1:])


def bfcl_ast():
    """bfcl-eval's ast_checker and format check, with its model config stubbed (as in
    tests/test_tooluse_ast.py); sys.modules restored afterwards."""
    stub_name = "bfcl_eval.constants.model_config"
    checker_name = "bfcl_eval.eval_checker.ast_eval.ast_checker"
    saved = {k: sys.modules.get(k) for k in (stub_name, checker_name)}
    stub = types.ModuleType(stub_name)
    stub.MODEL_CONFIG_MAPPING = defaultdict(lambda: SimpleNamespace(underscore_to_dot=False))
    sys.modules[stub_name] = stub
    sys.modules.pop(checker_name, None)
    try:
        checker = importlib.import_module(checker_name)
        from bfcl_eval.constants.enums import Language
        from bfcl_eval.utils import is_function_calling_format_output
        return checker.ast_checker, Language.PYTHON, is_function_calling_format_output
    finally:
        for k, v in saved.items():
            sys.modules.pop(k, None) if v is None else sys.modules.__setitem__(k, v)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="subsets of the tasks, fewer repeats")
    ap.add_argument("--out", default="benchmarks/results/tooluse_env.json")
    args = ap.parse_args()
    t_start = time.perf_counter()
    # every `stride`-th task / entry; repeats of each timed pass
    stride, reps, build_reps = (8, 3, 5) if args.quick else (1, 7, 20)

    for module in ("rlpost.envs.tooluse.env", "rlpost.envs.tooluse.multi_turn.env"):
        importlib.import_module(module)  # imported here: not part of the cold builds
    from rlpost.envs.tooluse.multi_turn.data import ground_truth_calls
    from rlpost.envs.tooluse.multi_turn.env import replay_actions
    from rlpost.envs.tooluse.multi_turn.executor import Executor

    from rlpost.env import make

    s: dict[str, float] = {}

    # --- construction ---------------------------------------------------------------------
    def build(env_id: str, key: str):
        """The env, its first (cold: data loading) and median warm construction times."""
        t0 = time.perf_counter()
        made = make(env_id)
        s[f"{key}_build_cold_s"] = time.perf_counter() - t0
        warm = []
        for _ in range(build_reps):
            t0 = time.perf_counter()
            make(env_id)
            warm.append(time.perf_counter() - t0)
        s[f"{key}_build_warm_ms"] = 1000 * statistics.median(warm)
        return made

    env = build("rlpost/ToolUse-v0", "tooluse")
    mt = build("rlpost/ToolUseMultiTurn-v0", "mt")

    # --- multi-turn env: ground-truth episodes --------------------------------------------
    entries = mt.unwrapped.entries
    mt_tasks = list(range(0, len(entries), stride))
    plays = {t: replay_actions(ground_truth_calls(entries[t])) for t in mt_tasks}
    rates, successes, unfinished = [], 0, 0
    n_steps = sum(len(a) for a in plays.values())
    for rep in range(reps):
        t0 = time.perf_counter()
        for t in mt_tasks:
            mt.reset(options={"task_id": t})
            for a in plays[t]:
                _, _, term, trunc, info = mt.step(a)
            if rep == 0:
                successes += info["success"]
                unfinished += trunc or not term
        rates.append(time.perf_counter() - t0)
    secs = statistics.median(rates)
    s |= {"mt_episodes": float(len(mt_tasks)), "mt_steps": float(n_steps),
          "mt_steps_per_s": n_steps / secs, "mt_episodes_per_s": len(mt_tasks) / secs,
          "mt_gt_success": successes / len(mt_tasks), "mt_unfinished": float(unfinished)}

    # --- our executor alone ---------------------------------------------------------------
    work = [(e, ground_truth_calls(e)) for e in (entries[t] for t in mt_tasks)]
    n_calls = sum(len(c) for _, turns in work for c in turns)
    ours_results = []
    call_s, setup_s = [], []
    for rep in range(reps):
        calls_t = setup_t = 0.0
        results = []
        for e, turns in work:
            t0 = time.perf_counter()
            ex = Executor(e.involved_classes, e.initial_config, e.long_context)
            t1 = time.perf_counter()
            setup_t += t1 - t0
            for calls in turns:
                t0 = time.perf_counter()
                ex.new_turn()
                r = ex.execute(calls)
                calls_t += time.perf_counter() - t0
                results.append(r)
        if rep == 0:
            ours_results = results
        call_s.append(calls_t)
        setup_s.append(setup_t)
    s |= {"exec_calls": float(n_calls), "exec_calls_per_s": n_calls / statistics.median(call_s),
          "exec_setup_ms_per_episode": 1000 * statistics.median(setup_s) / len(work)}
    s["peak_rss_envs_mb"] = rss_mb()

    # --- ToolUse-v0: reset + one step -----------------------------------------------------
    from rlpost.envs.tooluse.reference import reference_answer, reference_calls

    records = env.unwrapped.records
    tasks = list(range(0, len(records), stride))
    answers = {}
    for t in tasks:
        _, info = env.reset(options={"task_id": t})
        answers[t] = (reference_answer(info["task"]), wrong_answer(info["task"]))
    for kind, which in (("gt", 0), ("wrong", 1)):
        times, ok = [], 0
        for rep in range(reps):
            t0 = time.perf_counter()
            for t in tasks:
                env.reset(options={"task_id": t})
                _, _, _, _, info = env.step(answers[t][which])
                if rep == 0:
                    ok += info["success"]
            times.append(time.perf_counter() - t0)
        s[f"tooluse_{kind}_steps_per_s"] = len(tasks) / statistics.median(times)
        s[f"tooluse_{kind}_success"] = ok / len(tasks)
    s["tooluse_tasks"] = float(len(tasks))

    # --- AST checker alone: ours vs bfcl-eval's -------------------------------------------
    from rlpost.envs.tooluse.ast_check import AST_CATEGORIES, check

    ast_checker, python, is_format = bfcl_ast()
    items = [(r["functions"], [c.as_bfcl() for c in reference_calls(r["ground_truth"])],
              r["ground_truth"], r["category"])
             for r in records[::stride] if r["category"] in AST_CATEGORIES]
    before = copy.deepcopy(items)
    ours_v = [check(d, f, g, c).valid for f, d, g, c in items]
    theirs_v = [is_format(d) and ast_checker(f, d, g, python, c, "rlpost")["valid"]
                for f, d, g, c in items]
    assert items == before, "a checker changed its inputs"
    ours_t, theirs_t = [], []
    for _ in range(reps):
        t0 = time.perf_counter()
        for f, d, g, c in items:
            check(d, f, g, c)
        ours_t.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for f, d, g, c in items:
            if is_format(d):
                ast_checker(f, d, g, python, c, "rlpost")
        theirs_t.append(time.perf_counter() - t0)
    s |= {"ast_answers": float(len(items)),
          "ast_checks_per_s": len(items) / statistics.median(ours_t),
          "bfcl_ast_checks_per_s": len(items) / statistics.median(theirs_t),
          "ast_valid": sum(ours_v) / len(items),
          "ast_disagreements": float(sum(a != b for a, b in zip(ours_v, theirs_v)))}
    s["ast_ratio_ours_bfcl"] = s["ast_checks_per_s"] / s["bfcl_ast_checks_per_s"]

    # --- bfcl-eval's executor on the same calls -------------------------------------------
    from bfcl_eval.eval_checker.multi_turn_eval import multi_turn_utils as mtu

    call_s, setup_s, mismatches = [], [], 0
    for rep in range(reps):
        name = f"rlpostbench{rep}"
        calls_t = setup_t = 0.0
        i = 0
        for e, _ in work:
            cls = list(e.involved_classes)
            t0 = time.perf_counter()
            mtu.execute_multi_turn_func_call([], e.initial_config, cls, name, e.id,
                                             long_context=e.long_context)
            setup_t += time.perf_counter() - t0
            for strings in e.ground_truth:
                t0 = time.perf_counter()
                r, _ = mtu.execute_multi_turn_func_call(strings, e.initial_config, cls, name,
                                                        e.id, long_context=e.long_context)
                calls_t += time.perf_counter() - t0
                if rep == 0:
                    mismatches += r != ours_results[i]
                i += 1
        for k in [k for k in vars(mtu) if k.startswith(name + "_")]:
            del vars(mtu)[k]  # bfcl keeps every instance in its module globals
        call_s.append(calls_t)
        setup_s.append(setup_t)
    s |= {"bfcl_exec_calls_per_s": n_calls / statistics.median(call_s),
          "bfcl_exec_setup_ms_per_episode": 1000 * statistics.median(setup_s) / len(work),
          "exec_turn_mismatches": float(mismatches)}
    s["exec_ratio_ours_bfcl"] = s["exec_calls_per_s"] / s["bfcl_exec_calls_per_s"]

    s["peak_rss_mb"] = rss_mb()
    s["runtime_s"] = time.perf_counter() - t_start
    order = ["tooluse_build_cold_s", "tooluse_build_warm_ms", "tooluse_tasks",
             "tooluse_gt_steps_per_s", "tooluse_wrong_steps_per_s", "tooluse_gt_success",
             "tooluse_wrong_success", "mt_build_cold_s", "mt_build_warm_ms", "mt_episodes",
             "mt_steps", "mt_steps_per_s", "mt_episodes_per_s", "mt_gt_success", "mt_unfinished",
             "exec_calls", "exec_calls_per_s", "bfcl_exec_calls_per_s", "exec_ratio_ours_bfcl",
             "exec_setup_ms_per_episode", "bfcl_exec_setup_ms_per_episode",
             "exec_turn_mismatches", "ast_answers", "ast_checks_per_s", "bfcl_ast_checks_per_s",
             "ast_ratio_ours_bfcl", "ast_valid", "ast_disagreements", "peak_rss_envs_mb",
             "peak_rss_mb", "runtime_s"]
    summary = {k: float(s[k]) for k in order}
    print_table("Tool-use envs: throughput, construction, executor and AST checker vs bfcl-eval "
                "(1 process, 1 core)", list(summary.items()))
    write_result(args.out, "tooluse_env", summary,
                 {"stride": stride, "repeats": reps, "build_repeats": build_reps,
                  "quick": args.quick})


if __name__ == "__main__":
    sys.exit(main())
