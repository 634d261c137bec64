"""Our AST check (`rlpost.envs.tooluse.ast_check`) agrees with bfcl-eval's own checker.

For every shipped ground truth of the Python AST categories, answers are built from it (first
and last possible value of each parameter, optional ones left out, strings re-cased and
re-punctuated, tuples) and perturbed systematically (wrong value, missing parameter, extra
argument, wrong name, wrong type, reordered, dropped and duplicated calls, another function of
the doc list). Each answer goes to both checkers in BFCL's decoded form, and the verdicts (valid
and error type) must be equal. bfcl-eval's checker is imported with its model-config module
stubbed (importing the real one pulls in every API client), only inside this module.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections import Counter, defaultdict
from functools import cache
from types import SimpleNamespace
from typing import Any

import pytest
from rlpost.envs.tooluse.ast_check import (
    AST_CATEGORIES,
    Verdict,
    check,
    check_value,
    standardize,
)
from rlpost.envs.tooluse.calls import Call, format_calls, parse_calls
from rlpost.envs.tooluse.data import data_dir, read_jsonl

STUB = "bfcl_eval.constants.model_config"
CHECKER = "bfcl_eval.eval_checker.ast_eval.ast_checker"
U2D_MODEL = "u2d"
"""A model name whose stubbed config says underscore_to_dot=True."""


@pytest.fixture(scope="module")
def bfcl():
    """bfcl-eval's `ast_checker` and format helpers, imported with the model config stubbed;
    sys.modules is restored afterwards."""
    saved = {k: sys.modules.get(k) for k in (STUB, CHECKER)}
    stub = types.ModuleType(STUB)
    stub.MODEL_CONFIG_MAPPING = defaultdict(lambda: SimpleNamespace(underscore_to_dot=False))
    stub.MODEL_CONFIG_MAPPING[U2D_MODEL] = SimpleNamespace(underscore_to_dot=True)
    sys.modules[STUB] = stub
    sys.modules.pop(CHECKER, None)
    try:
        checker = importlib.import_module(CHECKER)
        from bfcl_eval.constants.enums import Language
        from bfcl_eval.utils import is_empty_output, is_function_calling_format_output

        yield SimpleNamespace(ast_checker=checker.ast_checker, python=Language.PYTHON,
                              is_empty_output=is_empty_output,
                              is_format=is_function_calling_format_output)
    finally:
        for k, v in saved.items():
            sys.modules.pop(k, None) if v is None else sys.modules.__setitem__(k, v)


def reference(bfcl, decoded: Any, functions, ground_truth, category, model="rlpost"):
    """bfcl-eval's verdict as its eval runner reaches it (decoder failure and the format check
    first, ``eval_runner.py:_evaluate_single_ast_entry``); ("crash", exception) when its
    checker raises."""
    if decoded is None:
        return False, "ast_decoder:decoder_failed"
    if not bfcl.is_format(decoded):
        return False, "ast_decoder:decoder_wrong_output_format"
    try:
        out = bfcl.ast_checker(functions, decoded, ground_truth, bfcl.python, category, model)
    except Exception as e:  # noqa: BLE001 (recorded, see test_bfcl_crashes_are_invalid_here)
        return "crash", type(e).__name__
    return out["valid"], out.get("error_type", "") if not out["valid"] else ""


@cache
def entries(category: str) -> list[tuple[dict, list]]:
    d = data_dir()
    answers = {a["id"]: a["ground_truth"]
               for a in read_jsonl(d / "possible_answer" / f"BFCL_v4_{category}.json")}
    return [(e, answers[e["id"]]) for e in read_jsonl(d / f"BFCL_v4_{category}.json")]


# --- answers from the ground truth ---------------------------------------------------------


def _doc(functions, name):
    return next((f for f in functions if f["name"] == name), {"parameters": {"properties": {}}})


def _pick(options, which: int):
    real = [o for o in options if o != ""]
    return real[which] if real else None


def _concrete(value, schema: dict):
    """A model's value for a possible value: dict answers hold lists of possible values."""
    items = schema.get("items") or {}
    if schema.get("type") == "dict" and isinstance(value, dict):
        return {k: _pick(v, 0) for k, v in value.items()
                if isinstance(v, list) and _pick(v, 0) is not None}
    if items.get("type") == "dict" and isinstance(value, list):
        return [_concrete(x, items) for x in value]
    return value


def answer(functions, ground_truth, which: int = 0, minimal: bool = False) -> list[Call]:
    """The ground truth as calls: each parameter's first (which=0) or last (-1) non-"" possible
    value; parameters with only "" left out, and with `minimal` every optional one too."""
    calls = []
    for expected in ground_truth:
        (name, params), = expected.items()
        props = _doc(functions, name)["parameters"]["properties"]
        args = {}
        for p, options in params.items():
            if _pick(options, which) is None or (minimal and "" in options):
                continue
            args[p] = _concrete(_pick(options, which), props.get(p, {}))
        calls.append(Call(name, args))
    return calls


def wrong_value(v):
    if isinstance(v, (bool, int, float, str)):
        return not v if isinstance(v, bool) else v + (1 if isinstance(v, int) else
                                                      1.5 if isinstance(v, float) else "zz")
    if isinstance(v, (list, tuple)):
        return list(v) + [v[0]] if v else ["zz"]
    if isinstance(v, dict):
        return {**v, next(iter(v)): wrong_value(next(iter(v.values())))} if v else {"zz": 1}
    return "zz"


def wrong_types(v) -> list:
    """Values of other types: bool -> int, int -> str and float, list -> tuple and str, items
    of another type, ..."""
    simple = {bool: lambda: [int(v)], int: lambda: [str(v), float(v)],
              float: lambda: [str(v)], str: lambda: [7, [v]], dict: lambda: [[v], "x"]}
    if type(v) in simple:
        return simple[type(v)]()
    if isinstance(v, list):
        out = [tuple(v), "x"]
        if v and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
            out.append([str(x) for x in v])
        if v and all(isinstance(x, str) for x in v):
            out.append([1 for _ in v])
        if v and all(isinstance(x, dict) for x in v):
            out.append(["x" for _ in v])
        return out
    return [0]


def normalised(v):
    """A string the normalisation maps to the same value (re-cased, re-spaced, punctuated)."""
    if isinstance(v, str):
        return v.upper().replace(" ", " _") + "."
    if isinstance(v, list):
        return [normalised(x) for x in v]
    return v


def _replace(calls, i, call):
    return calls[:i] + [call] + calls[i + 1:]


def perturbations(functions, ground_truth) -> list[tuple[str, list[Call]]]:
    """(kind, answer) pairs: the ground-truth answers and their systematic perturbations."""
    base = answer(functions, ground_truth)
    out = [("gt_first", base), ("gt_last", answer(functions, ground_truth, -1)),
           ("gt_minimal", answer(functions, ground_truth, minimal=True))]
    for i, c in enumerate(base):
        props = _doc(functions, c.name)["parameters"]["properties"]
        out.append(("normalised_strings",
                    _replace(base, i, Call(c.name, {k: normalised(v)
                                                    for k, v in c.arguments.items()}))))
        out.append(("wrong_name", _replace(base, i, Call(c.name + "_x", c.arguments))))
        if "." in c.name:
            out.append(("dots_as_underscores",
                        _replace(base, i, Call(c.name.replace(".", "_"), c.arguments))))
        out.append(("extra_argument", _replace(base, i, Call(c.name, {**c.arguments, "zz": 1}))))
        unused = [p for p in props if p not in c.arguments]
        if unused:
            out.append(("extra_doc_param",
                        _replace(base, i, Call(c.name, {**c.arguments, unused[0]: "zz"}))))
        for k, v in c.arguments.items():
            rest = {a: b for a, b in c.arguments.items() if a != k}
            out.append(("missing_param", _replace(base, i, Call(c.name, rest))))
            out.append(("wrong_value",
                        _replace(base, i, Call(c.name, {**c.arguments, k: wrong_value(v)}))))
            for t in wrong_types(v):
                out.append(("wrong_type", _replace(base, i, Call(c.name, {**c.arguments, k: t}))))
    if len(base) > 1:
        out.append(("reordered", base[::-1]))
        out.append(("rotated", base[1:] + base[:1]))
        out += [("dropped_call", base[:i] + base[i + 1:]) for i in range(len(base))]
    if base:
        out.append(("duplicated_call", base + base[:1]))
        out.append(("no_call", []))
        others = [f["name"] for f in functions if f["name"] != base[0].name]
        if others:
            out.append(("other_function", _replace(base, 0, Call(others[0], base[0].arguments))))
    return out


def _decoded(calls: list[Call]) -> list[dict]:
    return [c.as_bfcl() for c in calls]


def ours(calls, functions, gt, category, **kw) -> tuple[bool, str]:
    v = check(calls, functions, gt, category, **kw)
    return v.valid, v.error_type


# --- agreement -----------------------------------------------------------------------------


@pytest.mark.parametrize("category", AST_CATEGORIES)
def test_agrees_with_bfcl_on_ground_truth_and_perturbations(bfcl, category):
    counts: Counter = Counter()
    disagreements = []
    for entry, gt in entries(category):
        functions = entry["function"]
        for kind, calls in perturbations(functions, gt):
            want = reference(bfcl, _decoded(calls), functions, gt, category)
            got = ours(calls, functions, gt, category)
            counts["total"] += 1
            counts[f"{kind}:valid" if got[0] else f"{kind}:invalid"] += 1
            if want[0] == "crash":
                counts["bfcl_crash"] += 1
                assert got[0] is False, (entry["id"], kind, calls)
                continue
            counts["agree_valid"] += want[0] == got[0]
            counts["agree_error_type"] += want == got
            if want != got:
                disagreements.append((entry["id"], kind, calls, want, got))
    print(f"\n{category}: entries {len(entries(category))}, answers {counts['total']}, "
          f"valid agree {counts['agree_valid']}, error type agree "
          f"{counts['agree_error_type']}, bfcl crashes {counts['bfcl_crash']}, ground truth "
          f"valid {counts['gt_first:valid']} (first values) {counts['gt_minimal:valid']} "
          f"(optional left out)")
    assert not disagreements, f"{len(disagreements)} disagreements, e.g. {disagreements[:3]}"
    # every ground truth that the data makes reachable passes, and perturbations do fail
    assert counts["gt_first:valid"] > 0.95 * len(entries(category))
    assert counts["wrong_value:invalid"] > 0 and counts["missing_param:invalid"] > 0


@pytest.mark.parametrize("category", ["simple_python", "multiple", "parallel_multiple",
                                      "live_multiple"])
def test_text_round_trip_gives_the_same_verdict(category):
    """The env's path (text -> parse_calls -> check) sees what the decoded form sees."""
    for entry, gt in entries(category)[:100]:
        for _, calls in perturbations(entry["function"], gt)[:8]:
            parsed = parse_calls(format_calls(calls))
            assert check(parsed, entry["function"], gt, category) == \
                check(calls, entry["function"], gt, category)


def test_dotted_names_follow_underscore_to_dot(bfcl):
    """With underscore_to_dot, BFCL expects the doc's dots as underscores (and only so)."""
    n = 0
    for category in AST_CATEGORIES:
        for entry, gt in entries(category):
            if not any("." in next(iter(g)) for g in gt):
                continue
            base = answer(entry["function"], gt)
            under = [Call(c.name.replace(".", "_"), c.arguments) for c in base]
            for calls in (base, under):
                for flag, model in ((False, "rlpost"), (True, U2D_MODEL)):
                    want = reference(bfcl, _decoded(calls), entry["function"], gt, category,
                                     model)
                    assert ours(calls, entry["function"], gt, category,
                                underscore_to_dot=flag) == want
                    n += 1
    assert n >= 40


IRRELEVANT_ANSWERS = ["I cannot help with that.", "[]", "", "[{}]", "Sorry, nothing fits."]


@pytest.mark.parametrize("category", ["irrelevance", "live_irrelevance"])
def test_irrelevance_passes_iff_no_call(bfcl, category):
    """BFCL's relevance runner: success iff the decoder fails or its output is empty
    (``utils.py:is_empty_output``)."""
    d = data_dir()
    n = 0
    for entry in read_jsonl(d / f"BFCL_v4_{category}.json"):
        fns = entry["function"]  # a few live_irrelevance entries offer no function at all
        call = [Call(fns[0]["name"], {p: "x" for p in fns[0]["parameters"].get("required", [])})
                if fns else Call("search", {"q": "x"})]
        for answer_ in (None, [], call, call * 2, [{}], [{"f": 1}], [{"a": {}, "b": {}}]):
            decoded = _decoded(answer_) if answer_ and isinstance(answer_[0], Call) else answer_
            want = answer_ is None or bfcl.is_empty_output(decoded)
            assert check(answer_, entry["function"], [], category).valid is want
            n += 1
        for text in IRRELEVANT_ANSWERS + [format_calls(call)]:
            try:
                parsed = parse_calls(text)
            except ValueError:
                parsed = None
            v = check(parsed, entry["function"], [], category)
            assert v.valid is (parsed is None or parsed == []), text
            assert v.error_type == ("" if v.valid else "irrelevance_error:decoder_success")
    assert n > 1000


def test_decoder_failures_and_wrong_forms(bfcl):
    entry, gt = entries("simple_python")[0]
    fns = entry["function"]
    assert check(None, fns, gt, "simple_python") == Verdict(
        False, "ast_decoder:decoder_failed", "the answer is not a call list")
    for bad in ([{"f": 1}], [{}], [{"a": {}, "b": {}}], ["f()"], "f()"):
        want = reference(bfcl, bad, fns, gt, "simple_python")
        assert ours(bad, fns, gt, "simple_python") == want, bad


def test_java_and_javascript_are_out_of_scope():
    with pytest.raises(ValueError, match="out of scope"):
        check([], [], [], "simple_java")
    with pytest.raises(ValueError, match="out of scope"):
        check([], [], [], "simple_javascript")


# --- the rules, one by one (with bfcl-eval as the oracle) ------------------------------------

DOC = {"name": "f", "parameters": {"type": "dict", "required": ["s"], "properties": {
    "s": {"type": "string"}, "n": {"type": "integer"}, "x": {"type": "float"},
    "b": {"type": "boolean"}, "l": {"type": "array", "items": {"type": "string"}},
    "t": {"type": "tuple", "items": {"type": "float"}}, "d": {"type": "dict"},
    "ld": {"type": "array", "items": {"type": "dict"}}, "a": {"type": "any"}}}}
GT = [{"f": {"s": ["New York, NY"], "n": [3, ""], "x": [2], "b": [True, ""],
             "l": [["Red", "blue"], ""], "t": [[1.0, 2.5], ""],
             "d": [{"k": ["v"], "o": ["", 1]}, ""], "ld": [[{"k": ["v"]}], ""],
             "a": ["any", ""]}}]

RULES = [
    ({"s": "new york ny", "x": 2}, True),                 # normalised string, int for float
    ({"s": "New-York, NY.", "x": 2.0}, True),
    ({"s": "New York", "x": 2}, False),                   # value_error:string
    ({"x": 2}, False),                                    # missing required
    ({"s": "New York, NY"}, False),                       # x has no "": missing_optional
    ({"s": "New York, NY", "x": 2, "zz": 1}, False),      # unexpected
    ({"s": "New York, NY", "x": 2, "n": 3.0}, False),     # float for integer
    ({"s": "New York, NY", "x": 2, "b": 1}, False),       # int for bool
    ({"s": "New York, NY", "x": 2, "n": True}, False),    # bool for int
    ({"s": "New York, NY", "x": 2, "l": ["RED", "Blue"]}, True),
    ({"s": "New York, NY", "x": 2, "l": ["blue", "red"]}, False),   # order matters
    ({"s": "New York, NY", "x": 2, "l": []}, True),       # [] matches the "" option
    ({"s": "New York, NY", "x": 2, "l": ("Red", "blue")}, False),   # tuple for array
    ({"s": "New York, NY", "x": 2, "t": (1, 2.5)}, True),   # "" lets items pass; 1 == 1.0
    ({"s": "New York, NY", "x": 2, "t": ("1", 2.5)}, False),
    ({"s": "New York, NY", "x": 2, "t": (1.0, 2.5)}, True),         # tuple for tuple
    ({"s": "New York, NY", "x": 2, "d": {"k": "V"}}, True),
    ({"s": "New York, NY", "x": 2, "d": {"k": "v", "o": 1}}, True),
    ({"s": "New York, NY", "x": 2, "d": {"k": "w"}}, False),
    ({"s": "New York, NY", "x": 2, "d": {"o": 1}}, False),
    ({"s": "New York, NY", "x": 2, "d": {"k": "v", "z": 1}}, False),
    ({"s": "New York, NY", "x": 2, "ld": [{"k": "v"}]}, True),
    ({"s": "New York, NY", "x": 2, "ld": [{"k": "v"}, {"k": "v"}]}, False),
    ({"s": "New York, NY", "x": 2, "ld": []}, True),
    ({"s": "New York, NY", "x": 2, "a": "ANY"}, True),
    ({"s": "New York, NY", "x": 2, "a": 5}, False),
]


@pytest.mark.parametrize("args,valid", RULES)
def test_rules_agree_with_bfcl(bfcl, args, valid):
    calls = [Call("f", args)]
    want = reference(bfcl, _decoded(calls), [DOC], GT, "simple_python")
    assert want[0] is valid
    assert ours(calls, [DOC], GT, "simple_python") == want


def test_variables_and_strict_types():
    """A value of the possible answers' type passes as a "variable" and is compared with
    ``in``, without normalisation (``type_checker``'s is_variable)."""
    schema = {"type": "integer"}
    assert check_value("n", "n_max", schema, ["n_max"]).valid
    assert not check_value("n", "N_MAX", schema, ["n_max"]).valid
    assert check_value("x", 5, {"type": "float"}, [5]).valid     # 5.0 in [5]
    assert standardize("It's  A-b_c/d.e*f^g,h") == 'it"sabcdefgh'


def test_parallel_matching_is_greedy_as_in_bfcl(bfcl):
    """Ground-truth call 0 takes the first call it accepts even when only the other call
    could serve ground-truth call 1: BFCL fails such an answer, and so do we."""
    doc = {"name": "g", "parameters": {"type": "dict", "required": [], "properties": {
        "a": {"type": "integer"}}}}
    gt = [{"g": {"a": [1, 2]}}, {"g": {"a": [1]}}]
    for calls in ([Call("g", {"a": 1}), Call("g", {"a": 2})],
                  [Call("g", {"a": 2}), Call("g", {"a": 1})]):
        want = reference(bfcl, _decoded(calls), [doc], gt, "parallel")
        assert ours(calls, [doc], gt, "parallel") == want
    assert not check([Call("g", {"a": 1}), Call("g", {"a": 2})], [doc], gt, "parallel").valid
    assert check([Call("g", {"a": 2}), Call("g", {"a": 1})], [doc], gt, "parallel").valid


def test_bfcl_crashes_are_invalid_here(bfcl):
    """Where bfcl-eval's checker raises, we give an invalid verdict instead: a list-of-dicts
    parameter with a "" option given non-dict items (its nested type check lets them through,
    then ``dict_checker`` calls ``.items()`` on a string)."""
    calls = [Call("f", {"s": "New York, NY", "x": 2, "ld": ["x"]})]
    assert reference(bfcl, _decoded(calls), [DOC], GT, "simple_python")[0] == "crash"
    verdict = check(calls, [DOC], GT, "simple_python")
    assert not verdict.valid and verdict.error_type == "value_error:list_dict_count"
