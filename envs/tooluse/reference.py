"""Reference answers of BFCL entries: one concrete answer among the possible answers BFCL lists
(each parameter's first listed value; optional parameters left out), as an imitation target
(iTool's warm-up, TL-Training's dialogues) and the start of perturbations."""

from __future__ import annotations

from typing import Any

from rlpost.envs.tooluse.ast_check import expects_no_call
from rlpost.envs.tooluse.calls import Call, format_calls

NO_CALL_ANSWER = "None of the given functions can be used for this question."
"""The target answer of irrelevance tasks (BFCL passes any answer without a call)."""


def _first(options: Any) -> tuple[bool, Any]:
    """(found, value): the first possible value that is not "" of a BFCL option list, resolved
    recursively (a dict option maps each key to its own option list); (False, None) when ""
    is the only one (the parameter is optional and left out)."""
    if not isinstance(options, list):
        return True, _resolve(options)
    for value in options:
        if value != "":
            return True, _resolve(value)
    return False, None


def _resolve(value: Any) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, options in value.items():
            found, v = _first(options)
            if found:
                out[key] = v
        return out
    if isinstance(value, list):
        return [_resolve(v) for v in value]
    return value


def reference_calls(ground_truth: list[dict[str, dict[str, list[Any]]]],
                    underscore_names: bool = False) -> list[Call]:
    """One answer of BFCL's possible answers: per ground-truth call, each parameter's first
    listed value that is not "" (a parameter whose only value is "" is optional and left
    out; a dict value's keys likewise), names with "." written "_" when `underscore_names`
    (as `ToolUseConfig.underscore_names` shows and expects them). A few BFCL entries have no
    answer their own checker accepts (a ground-truth parameter missing from the docs): the
    recipe leaves those out of training (`ITool.__init__`)."""
    out = []
    for item in ground_truth:
        (name, params), = item.items()
        args = {}
        for p, options in params.items():
            found, value = _first(options)
            if found:
                args[p] = value
        out.append(Call(name.replace(".", "_") if underscore_names else name, args))
    return out


def reference_answer(task: dict[str, Any], underscore_names: bool = False) -> str:
    """The warm-up target of a task record: its reference calls, or `NO_CALL_ANSWER`."""
    if expects_no_call(task["category"]):
        return NO_CALL_ANSWER
    return format_calls(reference_calls(task["ground_truth"], underscore_names))
