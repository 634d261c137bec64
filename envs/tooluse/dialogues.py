"""Tool dialogues for TL-Training's MAE: a BFCL training entry as a conversation with tool
outputs, some with a realistic failed first attempt and the error a Python tool returns
(`rlpost.collect.mae` splits them and drops the failed turns).

Ours: the TL-Training reference (github.com/Junjie-Ye/TL-Training) trains on dialogues of other
tool sets with real outputs; BFCL's single-turn entries have no outputs, so we write them: the
error texts match the reference's MAE patterns (`rlpost.collect.mae.ERROR_PATTERNS`), a success
echoes the call. Tool outputs are ``"tool"`` messages (SmolLM2's template renders any role).
"""

from __future__ import annotations

import builtins
import json
import keyword
import random
from collections.abc import Sequence
from typing import Any

from rlpost.envs.tooluse.ast_check import check, expects_no_call
from rlpost.envs.tooluse.calls import Call, format_calls
from rlpost.envs.tooluse.reference import NO_CALL_ANSWER, reference_calls
from rlpost.types import Message

MISTAKES = ("unexpected_keyword", "missing_required", "undefined_function", "wrong_type")
"""The failed attempts `mistake` makes."""



def _short(name: str) -> str:
    """The name Python's errors give a function: its last dotted part."""
    return name.rsplit(".", 1)[-1]


def _json_type(value: Any) -> str:
    kinds = ((bool, "boolean"), (int, "integer"), (float, "float"), (str, "string"),
             (list, "array"), (dict, "dict"))
    return next((k for t, k in kinds if isinstance(value, t)), type(value).__name__)


def _retyped(value: Any) -> Any:
    """`value` as a wrong type: strings in a list, numbers and booleans as strings, lists and
    dicts as JSON strings; None when it has no such form."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return None


def mistake(kind: str, calls: list, functions: Sequence[dict], rng: random.Random
            ) -> tuple[list, str] | None:
    """One failed attempt at `calls` (`rlpost.envs.tooluse.calls.Call` list) of `kind` (see
    `MISTAKES`) on one call drawn with `rng`, and the error a Python tool would return for it
    (each matches one of `ERROR_PATTERNS`):

    - unexpected_keyword: an argument renamed to a name the function lacks (``unit`` ->
      ``units``): ``TypeError: f() got an unexpected keyword argument 'units'``;
    - missing_required: a required argument left out: ``TypeError: f() missing 1 required
      positional argument: 'x'``;
    - undefined_function: the name (its first dotted part) misspelt by one deleted or doubled
      character: ``NameError: name 'get_wether' is not defined``;
    - wrong_type: a value of the wrong type (`_retyped`): a JSON error body
      ``{"error": "Invalid value for parameter 'x' of f: expected integer, got string"}``.

    None when the kind applies to no call. Raises ValueError on an unknown kind."""
    if kind not in MISTAKES:
        raise ValueError(f"mae: unknown mistake {kind!r}; choose from {', '.join(MISTAKES)}")
    docs = {f["name"]: f for f in functions}
    props = {n: (d.get("parameters") or {}).get("properties", {}) for n, d in docs.items()}

    def options(j: int) -> list:
        c = calls[j]
        p = props.get(c.name, {})
        if kind == "unexpected_keyword":
            return list(c.arguments)
        if kind == "missing_required":
            req = (docs.get(c.name, {}).get("parameters") or {}).get("required", [])
            return [k for k in c.arguments if k in req]
        if kind == "wrong_type":
            return [k for k, v in c.arguments.items() if k in p and _retyped(v) is not None]
        return [c.name]  # undefined_function

    where = [(j, o) for j in range(len(calls)) for o in options(j)]
    if not where:
        return None
    j, key = rng.choice(where)
    c, out = calls[j], list(calls)
    if kind == "unexpected_keyword":
        bad = next((b for b in (key[:-1] if key.endswith("s") else key + "s", key + "_value",
                               key + "_name", key + "_1")
                   if b.isidentifier() and not keyword.iskeyword(b)
                   and b not in props.get(c.name, {}) and b not in c.arguments), None)
        if bad is None:
            return None
        out[j] = Call(c.name, {bad if k == key else k: v for k, v in c.arguments.items()})
        return out, f"TypeError: {_short(c.name)}() got an unexpected keyword argument '{bad}'"
    if kind == "missing_required":
        out[j] = Call(c.name, {k: v for k, v in c.arguments.items() if k != key})
        return out, (f"TypeError: {_short(c.name)}() missing 1 required positional argument: "
                     f"'{key}'")
    if kind == "wrong_type":
        value = _retyped(c.arguments[key])
        out[j] = Call(c.name, {**c.arguments, key: value})
        want = props[c.name][key].get("type", "any")
        return out, json.dumps({"error": f"Invalid value for parameter '{key}' of {c.name}: "
                                         f"expected {want}, got {_json_type(value)}"})
    head, dot, rest = c.name.partition(".")
    taken = {n.partition(".")[0] for n in [*docs, *(x.name for x in calls)]} | set(dir(builtins))
    variants = [head[:i] + head[i + 1:] for i in range(len(head))] + [
        head[:i] + head[i] + head[i:] for i in range(len(head))]
    variants = [v for v in dict.fromkeys(variants)
                if v.isidentifier() and not keyword.iskeyword(v) and v not in taken]
    if not variants:
        return None
    bad = rng.choice(variants)
    out[j] = Call(bad + dot + rest, dict(c.arguments))
    return out, f"NameError: name '{bad}' is not defined"


def success_output(calls: list) -> str:
    """A tool's deterministic successful output for `calls`: per call a JSON object echoing its
    function and arguments with ``"status": "success"`` (a list for several calls)."""
    results = [{"status": "success", "function": c.name, "arguments": c.arguments}
               for c in calls]
    return json.dumps(results[0] if len(results) == 1 else results, ensure_ascii=False)


def tool_dialogue(task: dict[str, Any], prompt: Sequence[Message], rng: random.Random,
                  fail_prob: float = 0.5) -> list[Message]:
    """A training dialogue for `task`, a ToolUse-v0 record (`load_category`): the `prompt`
    messages (e.g. ``chat(env)`` after resetting the env on the task), then, with probability
    `fail_prob` (one ``rng.random()`` draw), a failed attempt (`mistake`: kind and call drawn
    with `rng` among those that apply and that `ast_check.check` refuses) and its error as a
    ``"tool"`` message; then the reference answer (`reference.reference_calls`) and
    its `success_output`. Tasks that expect no call get the no-call answer
    (`reference.NO_CALL_ANSWER`) and no tool turn. Deterministic for a given `rng`
    state. Raises ValueError when `fail_prob` is not in [0, 1]."""
    if not 0.0 <= fail_prob <= 1.0:
        raise ValueError(f"mae: fail_prob must be in [0, 1], got {fail_prob}")
    out = list(prompt)
    if expects_no_call(task["category"]):
        return out + [Message("assistant", NO_CALL_ANSWER)]
    calls = reference_calls(task["ground_truth"])
    if rng.random() < fail_prob:
        for kind in rng.sample(MISTAKES, len(MISTAKES)):
            made = mistake(kind, calls, task["functions"], rng)
            if made is not None and not check(made[0], task["functions"], task["ground_truth"],
                                              task["category"]).valid:
                out += [Message("assistant", format_calls(made[0])), Message("tool", made[1])]
                break
    return out + [Message("assistant", format_calls(calls)),
                  Message("tool", success_output(calls))]
