"""BFCL's multi-turn entries as typed records, with their function docs and ground truth.

Read from the installed ``bfcl-eval`` (`rlpost.envs.tooluse.data.data_dir`), once per process
per category (`load_category`): ``BFCL_v4_multi_turn_<category>.json`` (questions, initial
configs, involved classes, held-out functions) joined with ``possible_answer/`` (the ground
truth: per turn, a list of call strings) and ``multi_turn_func_doc/`` (the docs of each API
class).

Function docs, as bfcl-eval's ``populate_test_cases_with_predefined_functions`` builds them: the
docs of every involved class, in ``involved_classes`` order and each file's order; a
``missed_function`` entry ({turn index: [names]}, miss_func only) removes those docs from the
start and hands them over at that turn, whose question is empty in the data (bfcl then sends a
user message saying that functions were added). ``excluded_function`` is in the data but
bfcl-eval (2026.3.23) never reads it, so neither do we.

Ground-truth strings are trusted data but still never `eval`ed: `ground_truth_calls` parses each
with `ast` (values by `ast.literal_eval`); 160 of them pass arguments by position, which are
bound to the method's parameter names, so every ground-truth call has the keyword form a model
must use.
"""

from __future__ import annotations

import ast
import copy
import importlib
import inspect
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from rlpost.envs.tooluse.calls import Call
from rlpost.envs.tooluse.data import data_dir, read_jsonl

from rlpost.errors import RlpostError

CATEGORIES = ("multi_turn_base", "multi_turn_miss_func", "multi_turn_miss_param",
              "multi_turn_long_context")

_API = "bfcl_eval.eval_checker.multi_turn_eval.func_source_code"
API_CLASSES: dict[str, tuple[str, str]] = {
    "GorillaFileSystem": (f"{_API}.gorilla_file_system", "gorilla_file_system.json"),
    "MathAPI": (f"{_API}.math_api", "math_api.json"),
    "MessageAPI": (f"{_API}.message_api", "message_api.json"),
    "TwitterAPI": (f"{_API}.posting_api", "posting_api.json"),
    "TicketAPI": (f"{_API}.ticket_api", "ticket_api.json"),
    "TradingBot": (f"{_API}.trading_bot", "trading_bot.json"),
    "TravelAPI": (f"{_API}.travel_booking", "travel_booking.json"),
    "VehicleControlAPI": (f"{_API}.vehicle_control", "vehicle_control.json"),
}
"""The stateful API classes of the multi-turn categories: module and function-doc file."""
STATELESS = frozenset({"MathAPI"})
"""Classes bfcl creates without loading a scenario."""

ADDED_FUNCTIONS_MESSAGE = "I have updated some more functions you can choose from. What about now?"
"""The user message of a turn that hands over held-out functions (bfcl's wording)."""


@dataclass(frozen=True)
class Entry:
    """One multi-turn entry. `turns[t]` holds the user messages of turn t (empty for a turn that
    only hands over held-out functions); `ground_truth[t]` the call strings of turn t."""

    id: str
    category: str
    turns: list[list[dict[str, str]]]
    initial_config: dict[str, Any]
    involved_classes: tuple[str, ...]
    ground_truth: list[list[str]]
    missed_function: dict[int, tuple[str, ...]] = field(default_factory=dict)

    @property
    def long_context(self) -> bool:
        """Whether instances load the long-context extensions (bfcl's rule: the category name
        contains "long_context")."""
        return "long_context" in self.category

    def record(self) -> dict[str, Any]:
        """The entry as plain data, a deep copy (reset's ``info["task"]`` adds the task id)."""
        return copy.deepcopy({
            "id": self.id, "category": self.category, "turns": self.turns,
            "initial_config": self.initial_config, "involved_classes": list(self.involved_classes),
            "ground_truth": self.ground_truth,
            "missed_function": {str(k): list(v) for k, v in self.missed_function.items()}})


@cache
def load_category(category: str) -> tuple[Entry, ...]:
    """The entries of one multi-turn category, in file order. Raises RlpostError on an unknown
    category or data that does not fit together."""
    if category not in CATEGORIES:
        raise RlpostError(f"unknown multi-turn category {category!r}; "
                          f"choose from {', '.join(CATEGORIES)}")
    root = data_dir()
    questions = read_jsonl(root / f"BFCL_v4_{category}.json")
    answers = {a["id"]: a["ground_truth"]
               for a in read_jsonl(root / "possible_answer" / f"BFCL_v4_{category}.json")}
    out = []
    for q in questions:
        if q["id"] not in answers or len(answers[q["id"]]) != len(q["question"]):
            raise RlpostError(f"{category}: ground truth of {q['id']} missing or of another "
                              "length than its turns")
        unknown = set(q["involved_classes"]) - set(API_CLASSES)
        if unknown:
            raise RlpostError(f"{q['id']}: unknown API class {min(unknown)}")
        out.append(Entry(
            id=q["id"], category=category, turns=q["question"],
            initial_config=q.get("initial_config", {}),
            involved_classes=tuple(q["involved_classes"]), ground_truth=answers[q["id"]],
            missed_function={int(k): tuple(v) for k, v in q.get("missed_function", {}).items()}))
    return tuple(out)


def load_entries(categories: tuple[str, ...]) -> list[Entry]:
    """The entries of `categories`, concatenated in that order (task id = index)."""
    return [e for c in categories for e in load_category(c)]


# --- API classes and their docs -----------------------------------------------------------


@cache
def api_class(name: str) -> type:
    """The bfcl-eval class of an API (imported on first use)."""
    module, _ = API_CLASSES[name]
    return getattr(importlib.import_module(module), name)


@cache
def class_docs(name: str) -> tuple[dict[str, Any], ...]:
    """The function docs of one API class (bfcl's ``multi_turn_func_doc`` file)."""
    _, filename = API_CLASSES[name]
    return tuple(read_jsonl(data_dir() / "multi_turn_func_doc" / filename))


def public_methods(cls: type) -> list[str]:
    """The names of the public methods of `cls` (not starting with "_"), sorted."""
    return sorted(n for n, v in inspect.getmembers(cls, inspect.isfunction)
                  if not n.startswith("_"))


def method_owners(classes: tuple[str, ...]) -> dict[str, str]:
    """Function name -> the class whose method a call of that name runs. bfcl maps each public
    method name to its class in ``involved_classes`` order, so when two classes share a name
    the later class wins; we keep that rule (the shipped classes share none)."""
    owners: dict[str, str] = {}
    for c in classes:
        for name in public_methods(api_class(c)):
            owners[name] = c
    return owners


def entry_docs(entry: Entry) -> tuple[list[dict[str, Any]], dict[int, list[dict[str, Any]]]]:
    """(docs offered from the start, {turn: docs handed over at that turn})."""
    docs = [d for c in entry.involved_classes for d in class_docs(c)]
    held: dict[int, list[dict[str, Any]]] = {}
    for turn, names in sorted(entry.missed_function.items()):
        for name in names:
            i = next((i for i, d in enumerate(docs) if d["name"] == name), None)
            if i is not None:
                held.setdefault(turn, []).append(docs.pop(i))
    return docs, held


# --- ground truth ---------------------------------------------------------------------------


@cache
def _gt_calls(entry_id: str, category: str) -> tuple[tuple[Call, ...], ...]:
    entry = next(e for e in load_category(category) if e.id == entry_id)
    owners = method_owners(entry.involved_classes)
    return tuple(tuple(parse_ground_truth(s, owners) for s in turn)
                 for turn in entry.ground_truth)


def ground_truth_calls(entry: Entry) -> list[list[Call]]:
    """The ground truth of `entry` as keyword-only calls, per turn."""
    return [list(turn) for turn in _gt_calls(entry.id, entry.category)]


def parse_ground_truth(text: str, owners: dict[str, str]) -> Call:
    """One ground-truth call string (``"cd(folder='x')"`` or ``"cd('x')"``) as a keyword-only
    `Call`; positional values are bound to the parameters of the method `owners` names."""
    try:
        node = ast.parse(text.strip(), mode="eval").body
        plain = isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        if plain:
            args = [ast.literal_eval(a) for a in node.args]
            kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords if k.arg}
    except (SyntaxError, ValueError) as e:
        raise RlpostError(f"ground-truth call {text[:60]!r} does not parse ({e})") from None
    if not plain:
        raise RlpostError(f"ground-truth call {text[:60]!r} is not a plain call")
    name = node.func.id
    if args:
        if name not in owners:
            raise RlpostError(f"ground-truth call {text[:60]!r}: unknown function")
        sig = inspect.signature(getattr(api_class(owners[name]), name))
        params = [p for p in sig.parameters if p != "self"]
        kwargs = {**dict(zip(params, args)), **kwargs}
    return Call(name, kwargs)
