"""BFCL's AST-match check of a call list against an entry's possible answers, in our own code.

The rules are those of bfcl-eval 2026.3.23, ``bfcl_eval/eval_checker/ast_eval/ast_checker.py``
(cited below as ``ast_checker.py:<function>``) and the parts of
``bfcl_eval/eval_checker/eval_runner.py`` that run before it. `tests/test_tooluse_ast.py`
checks that `check` gives bfcl-eval's verdict, and its error type, on every shipped ground
truth of the Python AST categories and on perturbations of them.

Scope: the Python categories only (simple_python, multiple, parallel, parallel_multiple, the
live_* variants, irrelevance and live_irrelevance; live_relevance too). The java/javascript
categories pass values as strings through BFCL's Java/JS type converters; they are out of
scope and `check` raises ValueError for them.

Function names: BFCL compares the model's name with the doc's name, after replacing "." by "_"
in the doc's name when the *model's config* says ``underscore_to_dot`` (API models whose tool
names may not hold a dot; ``ast_checker.py:convert_func_name``). rlpost shows the names as the
data has them (dots kept), so the default ``underscore_to_dot=False`` asks for the exact name;
pass True for a policy that was shown underscored names.

Where bfcl-eval raises instead of giving a verdict (a doc without the ground truth's function,
a type outside its type table, a list-of-dicts answer whose items are not dicts), `check`
returns an invalid verdict (or, for an unknown type, compares values without a type check).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rlpost.envs.tooluse.calls import Call

PYTHON_TYPES: dict[str, type] = {
    "string": str, "integer": int, "float": float, "boolean": bool,
    "array": list, "tuple": list, "dict": dict, "any": str,
}
"""BFCL's parameter types -> the Python type a value must have (``PYTHON_TYPE_MAPPING``)."""
NESTED_TYPES = ("array", "tuple")
"""Types whose items' type (``items.type``) is checked too, one level deep."""
AST_CATEGORIES = ("simple_python", "multiple", "parallel", "parallel_multiple", "live_simple",
                  "live_multiple", "live_parallel", "live_parallel_multiple")
IRRELEVANCE_CATEGORIES = ("irrelevance", "live_irrelevance")

_STRIP = re.compile(r"[ ,./\-_*^]")


@dataclass(frozen=True)
class Verdict:
    """The check's outcome: `error_type` is BFCL's (e.g. ``"value_error:string"``), "" when
    valid; `error` a one-line explanation."""

    valid: bool
    error_type: str = ""
    error: str = ""


OK = Verdict(True)


def standardize(text: str) -> str:
    """BFCL's string normalisation (``ast_checker.py:standardize_string``): drop spaces and the
    characters ``,./-_*^``, lower-case, and turn ``'`` into ``"``. Only the ASCII space is
    dropped (tabs and newlines stay)."""
    return _STRIP.sub("", text).lower().replace("'", '"')


def expects_no_call(category: str) -> bool:
    """Whether the right answer of `category` is no call at all (the irrelevance sets)."""
    return "irrelevance" in category


def check(calls: Sequence[Call | dict] | None, functions: Sequence[dict],
          ground_truth: Sequence[dict], category: str, *,
          underscore_to_dot: bool = False) -> Verdict:
    """BFCL's AST verdict on `calls` for an entry of `category`.

    `calls` is a list of `Call` or BFCL's decoded form (``[{name: {param: value}}]``), or None
    when the answer did not parse as a call list. `functions` is the entry's ``function`` list,
    `ground_truth` its possible answer's ``ground_truth``.

    - Irrelevance categories (``eval_runner.py:_evaluate_single_relevance_entry`` with
      ``utils.py:is_empty_output``): valid iff there is no call: an unparsable answer, an empty
      list, or output not in call-list form. ``live_relevance``: valid iff there is a call.
    - Otherwise an unparsable answer is ``ast_decoder:decoder_failed`` and one not of the
      form ``[{name: {params}}]`` ``ast_decoder:decoder_wrong_output_format``
      (``eval_runner.py:_evaluate_single_ast_entry``); then the category decides, by substring
      as ``ast_checker.py:ast_checker`` does: "parallel" -> `check_parallel`; "multiple" ->
      `check_multiple`; else one call checked against ``functions[0]`` (`check_call`).
    """
    if "java" in category:
        raise ValueError(f"{category}: the Java/JavaScript categories are out of scope")
    pairs = None if calls is None else _pairs(calls)
    if expects_no_call(category):
        if not pairs:
            return OK
        return Verdict(False, "irrelevance_error:decoder_success",
                       f"{len(pairs)} call(s) where no call was expected")
    if "relevance" in category:
        return OK if pairs else Verdict(False, "relevance_error:decoder_failed",
                                        "no call where one was expected")
    if calls is None:
        return Verdict(False, "ast_decoder:decoder_failed", "the answer is not a call list")
    if pairs is None:
        return Verdict(False, "ast_decoder:decoder_wrong_output_format",
                       "the calls are not of the form [{name: {param: value}}]")
    if "parallel" in category:
        return check_parallel(pairs, functions, ground_truth, underscore_to_dot)
    if "multiple" in category:
        return check_multiple(pairs, functions, ground_truth, underscore_to_dot)
    if len(pairs) != 1:
        return Verdict(False, "simple_function_checker:wrong_count",
                       f"{len(pairs)} calls where one was expected")
    if not functions or not ground_truth:
        return _no_doc(None)
    return check_call(functions[0], pairs[0], ground_truth[0], underscore_to_dot)


def _pairs(calls: Sequence[Call | dict]) -> list[tuple[Any, dict]] | None:
    """(name, arguments) of each call; None when one is not a call
    (``utils.py:is_function_calling_format_output``)."""
    if not isinstance(calls, (list, tuple)):
        return None
    out = []
    for c in calls:
        if isinstance(c, Call):
            name, args = c.name, c.arguments
        elif isinstance(c, dict) and len(c) == 1:
            (name, args), = c.items()
        else:
            return None
        if not isinstance(args, dict):
            return None
        out.append((name, args))
    return out


def _find(functions: Sequence[dict] | dict, name: Any) -> dict | None:
    """The doc named `name` (``ast_checker.py:find_description``; a lone dict is the doc)."""
    if isinstance(functions, dict):
        return functions
    return next((f for f in functions if f.get("name") == name), None)


def _no_doc(name: Any) -> Verdict:
    return Verdict(False, "simple_function_checker:wrong_func_name",
                   f"the ground truth's function {name!r} has no doc")


def check_multiple(pairs: list[tuple[Any, dict]], functions: Sequence[dict],
                   ground_truth: Sequence[dict], underscore_to_dot: bool = False) -> Verdict:
    """``ast_checker.py:multiple_function_checker``: as many calls as ground-truth calls
    (``multiple_function_checker:wrong_count``), then the *first* call is checked against the
    first ground-truth call, with the doc of the ground truth's function."""
    if len(pairs) != len(ground_truth):
        return Verdict(False, "multiple_function_checker:wrong_count",
                       f"{len(pairs)} calls where {len(ground_truth)} were expected")
    if not ground_truth:
        return OK
    name = next(iter(ground_truth[0]))
    doc = _find(functions, name)
    if doc is None:
        return _no_doc(name)
    return check_call(doc, pairs[0], ground_truth[0], underscore_to_dot)


def check_parallel(pairs: list[tuple[Any, dict]], functions: Sequence[dict],
                   ground_truth: Sequence[dict], underscore_to_dot: bool = False) -> Verdict:
    """``ast_checker.py:parallel_function_checker_no_order``: as many calls as ground-truth
    calls (``parallel_function_checker_no_order:wrong_count``); then, in ground-truth order,
    each ground-truth call takes the first not-yet-taken call that passes `check_call` against
    it. The matching is greedy, as BFCL's: it does not backtrack, so an answer that only a
    different assignment would match fails (``...:cannot_find_match``)."""
    if len(pairs) != len(ground_truth):
        return Verdict(False, "parallel_function_checker_no_order:wrong_count",
                       f"{len(pairs)} calls where {len(ground_truth)} were expected")
    taken: set[int] = set()
    for i, expected in enumerate(ground_truth):
        name = next(iter(expected))
        doc = _find(functions, name)
        if doc is None:
            return _no_doc(name)
        last = None
        for j, pair in enumerate(pairs):
            if j in taken:
                continue
            last = check_call(doc, pair, expected, underscore_to_dot)
            if last.valid:
                taken.add(j)
                break
        if last is not None and not last.valid:
            return Verdict(False, "parallel_function_checker_no_order:cannot_find_match",
                           f"no call matches ground-truth call {i} ({name}); "
                           f"last mismatch: {last.error_type}: {last.error}")
    return OK


def check_call(doc: dict, pair: tuple[Any, dict], expected: dict,
               underscore_to_dot: bool = False) -> Verdict:
    """One call against one ground-truth call ``{name: {param: [possible values]}}``
    (``ast_checker.py:simple_function_checker``), in BFCL's order:

    1. the name equals the doc's (``wrong_func_name``; see the module docstring on dots);
    2. every parameter the doc lists as required is given (``missing_required``);
    3. every given parameter is in the doc and in the ground truth (``unexpected_param``), and
       its value passes `check_value`;
    4. every ground-truth parameter left out has "" among its possible values
       (``missing_optional``): "" marks an optional parameter that may be omitted.
    """
    name, args = pair
    doc_name = doc["name"]
    if underscore_to_dot and "." in doc_name:
        doc_name = doc_name.replace(".", "_")
    if name != doc_name:
        return Verdict(False, "simple_function_checker:wrong_func_name",
                       f"called {name!r}, expected {doc_name!r}")
    options_of = next(iter(expected.values()))
    schema = doc["parameters"]
    props = schema.get("properties", {})
    for param in schema.get("required", []):
        if param not in args:
            return Verdict(False, "simple_function_checker:missing_required",
                           f"required parameter {param!r} missing")
    for param, value in args.items():
        if param not in props or param not in options_of:
            return Verdict(False, "simple_function_checker:unexpected_param",
                           f"unexpected parameter {param!r}")
        verdict = check_value(param, value, props[param], options_of[param])
        if not verdict.valid:
            return verdict
    for param, options in options_of.items():
        if param not in args and "" not in options:
            return Verdict(False, "simple_function_checker:missing_optional",
                           f"parameter {param!r} left out but not optional")
    return OK


def _answer_type(options: Sequence[Any]) -> type | None:
    """The type of the first possible value that is not "" (``get_possible_answer_type``)."""
    return next((type(o) for o in options if o != ""), None)


def check_value(param: str, value: Any, schema: dict, options: Sequence[Any]) -> Verdict:
    """One parameter value against its doc entry and its possible values
    (``ast_checker.py:simple_function_checker``'s loop body and ``type_checker``):

    - conversions first: a tuple becomes a list where the doc says "tuple" (JSON turns the
      answers' tuples into lists); an int becomes a float where it says "float";
    - type: the value's type must be exactly the doc type's Python type (`PYTHON_TYPES`; a
      bool is not an int), or else exactly the type of the first non-"" possible value: BFCL
      then treats it as a "variable" and only compares it with ``in`` below
      (``type_error:simple``). Arrays and tuples check their items too, one level deep and
      without the int -> float conversion: each item must have the items' type or that of the
      first non-"" value of one possible list (``type_error:nested``); a "" possible value
      lets any items pass;
    - value (not for variables): dicts by `_dict_check`, lists of dicts by `_dicts_check`,
      strings by equality with a string possible value, both `standardize`-d
      (``value_error:string``), lists by element-wise `standardize` of their string elements
      (``value_error:list/tuple``; [] matches a "" possible value); anything else, and
      variables, must be ``in`` the possible values (``value_error:others``).
    """
    type_name = schema.get("type")
    expected = PYTHON_TYPES.get(type_name)
    nested = None
    if type_name in NESTED_TYPES:
        nested = PYTHON_TYPES.get((schema.get("items") or {}).get("type"))
    if type_name == "tuple" and type(value) is tuple:
        value = list(value)
    if type_name == "float" and type(value) is int:
        value = float(value)
    if expected is None:  # bfcl-eval raises on a type outside its table; compare plainly
        variable = True
    else:
        verdict, variable = _type_check(param, value, options, type_name, expected, nested)
        if not verdict.valid:
            return verdict
    if not variable:
        if expected is dict:
            return _dict_check(param, value, options)
        if expected is list and nested is dict:
            return _dicts_check(param, value, options)
        if expected is str:
            allowed = [standardize(o) for o in options if type(o) is str]
            if standardize(value) not in allowed:
                return Verdict(False, "value_error:string",
                               f"{param}={value!r} not among {list(options)!r} (normalised)")
            return OK
        if expected is list:
            mine = [_std(v) for v in value]
            if mine not in [_std_seq(o) for o in options]:
                return Verdict(False, "value_error:list/tuple",
                               f"{param}={value!r} not among {list(options)!r}")
            return OK
    if value not in options:
        return Verdict(False, "value_error:others",
                       f"{param}={value!r} not among {list(options)!r}")
    return OK


def _type_check(param: str, value: Any, options: Sequence[Any], type_name: str,
                expected: type, nested: type | None) -> tuple[Verdict, bool]:
    """(verdict, is_variable) of ``ast_checker.py:type_checker``."""
    answer_type = _answer_type(options)
    variable = answer_type is not None and answer_type is not expected
    if type(value) is expected:
        if nested is None:
            return OK, variable
        for option in options:
            if type(option) is not list or all(_item_ok(v, option, nested) for v in value):
                return OK, variable
        error = f"{param}={value!r}: items are not all {nested.__name__}"
        if answer_type is not None and type(value) is answer_type:
            return Verdict(False, "type_error:nested", error), True
        return Verdict(False, "type_error:simple", error), False
    if answer_type is not None and type(value) is answer_type:
        return OK, True
    return Verdict(False, "type_error:simple",
                   f"{param}={value!r}: expected {type_name}, got {type(value).__name__}"), False


def _item_ok(item: Any, option: list, nested: type) -> bool:
    """An array item's type check (``type_checker`` called on the item without nesting)."""
    if type(item) is nested:
        return True
    answer_type = _answer_type(option)
    return answer_type is not None and type(item) is answer_type


def _std(v: Any) -> Any:
    return standardize(v) if type(v) is str else v


def _std_seq(option: Any) -> list | None:
    """A possible list value with its string elements standardised ("" -> [], as BFCL's
    element loop makes of it); None for a value that is no sequence."""
    if isinstance(option, (list, str)):
        return [_std(v) for v in option]
    return None


def _dict_check(param: str, value: dict, options: Sequence[Any]) -> Verdict:
    """``ast_checker.py:dict_checker``: the dict must match one non-"" possible dict, whose
    values are lists of possible values: every key of the answer is a possible key
    (``value_error:dict_key``) with a possible value, strings `standardize`-d
    (``value_error:dict_value``), and every possible key left out has "" among its values.
    No possible dict: ``dict_checker:unclear``. Nested dicts are compared with ``==``."""
    verdict = Verdict(False, "dict_checker:unclear", f"{param}: no possible dict to match")
    for option in options:
        if option == "":
            continue
        verdict = _dict_match(param, value, option)
        if verdict.valid:
            return OK
    return verdict


def _dict_match(param: str, value: Any, option: Any) -> Verdict:
    if not isinstance(value, dict) or not isinstance(option, dict):
        return Verdict(False, "value_error:dict_value", f"{param}: {value!r} is not a dict")
    verdict = OK
    for key, v in value.items():
        if key not in option:
            verdict = Verdict(False, "value_error:dict_key", f"{param}: unexpected key {key!r}")
            break
        allowed = _std_seq(option[key]) or []
        if _std(v) not in allowed:
            verdict = Verdict(False, "value_error:dict_value",
                              f"{param}[{key!r}]={v!r} not among {option[key]!r}")
            break
    # BFCL runs this loop even after a failure above, so its error type wins
    for key, allowed in option.items():
        if key not in value and "" not in allowed:
            return Verdict(False, "value_error:dict_key", f"{param}: key {key!r} missing")
    return verdict


def _dicts_check(param: str, value: list, options: Sequence[Any]) -> Verdict:
    """``ast_checker.py:list_dict_checker``: a list of dicts matches a possible list of the
    same length whose dicts match in order (`_dict_check` each); a "" possible value matches
    []. Wrong length: ``value_error:list_dict_count``."""
    verdict = Verdict(False, "list_dict_checker:unclear", f"{param}: no possible list")
    for option in options:
        if not isinstance(option, (list, str)) or len(value) != len(option):
            verdict = Verdict(False, "value_error:list_dict_count",
                              f"{param}: {len(value)} dicts, no possible list of that length")
            continue
        for item, want in zip(value, option):
            verdict = _dict_check(param, item, [want])
            if not verdict.valid:
                break
        else:
            return OK
    return verdict
