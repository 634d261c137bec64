"""Runs parsed tool calls on BFCL's stateful API classes, for one episode (never `eval`).

An `Executor` holds fresh instances of an entry's ``involved_classes`` (GorillaFileSystem,
TwitterAPI, MessageAPI, TicketAPI, TradingBot, TravelAPI, VehicleControlAPI, MathAPI; all of them
pure Python and in memory: the "file system" is a tree of objects, nothing reaches the disk,
a process or the network). Each is built as bfcl-eval builds it (``cls()``, then
``_load_scenario(deepcopy(initial_config[cls]), long_context=...)`` except the stateless
MathAPI) and then deep-copied once, so no instance shares the module-level long-context
records with another (bfcl's instances do, and an episode could otherwise change them for the
next one).

A call runs only when every check passes; otherwise its result is a one-line error and nothing
runs, so the state is unchanged:

- the turn's call budget (`max_calls_per_turn`; every call counts, refused ones too) is not
  spent;
- the name is a plain identifier (no dots, no attribute access) not starting with "_" (no
  ``_load_scenario``, no dunders), offered to the model (`offered`) and a public method of an
  involved class (bfcl's name -> class map, `data.method_owners`);
- the arguments' JSON is at most `MAX_ARGUMENT_CHARS` characters and nested at most
  `MAX_DEPTH` deep;
- they bind to the method's signature (`inspect.signature(...).bind`: missing, unexpected or
  wrong keyword arguments);
- they cannot make one call run for minutes (`_too_costly`: MathAPI's exact integer powers,
  precisions and roundings with absurd sizes).

An exception raised inside a method is caught and reported as bfcl reports it,
``"Error during execution: <message>"``; whatever the method changed before raising stays
changed, as in bfcl (the ground truth runs under the same rule). Results are strings as bfcl
makes them (`stringify`): a str as is, a dict as ``json.dumps`` (``str`` when that fails),
anything else ``str``. Every error string starts with bfcl's ``"Error during execution: "``.
MathAPI sets the process-wide `decimal` and mpmath precisions; each call runs in a local
decimal context and the mpmath precision is restored after it (bfcl leaves them set, which
changes no result since every such method sets its precision first).
"""

from __future__ import annotations

import copy
import decimal
import hashlib
import inspect
import json
import re
import sys
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rlpost.envs.tooluse.calls import MAX_DEPTH, Call
from rlpost.envs.tooluse.multi_turn.data import STATELESS, api_class, method_owners

ERROR = "Error during execution: "
MAX_ARGUMENT_CHARS = 10_000
"""Longest JSON of one call's arguments that runs."""
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def load_instances(classes: Sequence[str], initial_config: dict[str, Any],
                   long_context: bool) -> dict[str, Any]:
    """Fresh instances of `classes`, loaded with their initial configs (see the module
    docstring)."""
    out = {}
    for name in classes:
        inst = api_class(name)()
        if name not in STATELESS:
            inst._load_scenario(copy.deepcopy(initial_config.get(name, {})),
                                long_context=long_context)
        out[name] = copy.deepcopy(inst)
    return out


class Executor:
    """The API instances of one episode and the calls run on them (see the module docstring).
    `max_calls_per_turn` None = no budget (the ground truth's executor)."""

    def __init__(self, classes: Sequence[str], initial_config: dict[str, Any],
                 long_context: bool, max_calls_per_turn: int | None = None):
        self.classes = tuple(classes)
        self.instances = load_instances(self.classes, initial_config, long_context)
        self.owners = method_owners(self.classes)
        self.max_calls_per_turn = max_calls_per_turn
        self.calls_this_turn = 0

    def new_turn(self) -> None:
        """Start a user turn: the call budget is full again."""
        self.calls_this_turn = 0

    def execute(self, calls: Sequence[Call], offered: Collection[str] | None = None) -> list[str]:
        """One result string per call, in order; `offered` = the function names the model was
        given (None: every public method, as for the ground truth)."""
        return [self.run(c, offered) for c in calls]

    def run(self, call: Call, offered: Collection[str] | None = None) -> str:
        """The result string of one call (an error string when a check fails)."""
        if self.max_calls_per_turn is not None and self.calls_this_turn >= self.max_calls_per_turn:
            return (f"{ERROR}call budget spent: at most {self.max_calls_per_turn} calls per user "
                    "turn")
        self.calls_this_turn += 1
        method, error = self._resolve(call, offered)
        if error:
            return ERROR + error
        error = _check_arguments(call.arguments)
        if error:
            return f"{ERROR}{call.name}: {error}"
        try:
            inspect.signature(method).bind(**call.arguments)
        except TypeError as e:
            return f"{ERROR}{call.name}() {e}"
        error = _too_costly(self.owners[call.name], call.name, call.arguments)
        if error:
            return f"{ERROR}{call.name}: {error}"
        with _numeric_contexts():
            try:
                return stringify(method(**copy.deepcopy(call.arguments)))
            except Exception as e:  # noqa: BLE001 - any API error is a result, as in bfcl
                return ERROR + _one_line(str(e))

    def _resolve(self, call: Call, offered: Collection[str] | None) -> tuple[Any, str]:
        name = call.name if isinstance(call.name, str) else repr(call.name)
        shown = name if len(name) <= 60 else name[:57] + "..."
        if not _NAME.fullmatch(name):
            return None, (f"{shown!r} is not a function name: call a listed function by its "
                          "plain name")
        if name not in self.owners or (offered is not None and name not in offered):
            return None, f"unknown function {shown!r}"
        return getattr(self.instances[self.owners[name]], name), ""

    # -- state -------------------------------------------------------------------------------
    def state(self) -> dict[str, dict[str, Any]]:
        """The public attributes of every instance (live objects: do not mutate), the state
        bfcl's checker compares."""
        return {c: public_attributes(i) for c, i in self.instances.items()}

    def fingerprint(self) -> str:
        """A hash of `state()` (canonical: dict order and object identity do not matter)."""
        text = repr(canonical(self.state()))
        return hashlib.sha256(text.encode("utf-8", "backslashreplace")).hexdigest()[:16]


def public_attributes(instance: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(instance).items() if not k.startswith("_")}


def stringify(result: Any) -> str:
    """bfcl's result string: str as is, dict as JSON (or ``str`` when not serialisable), else
    ``str``; a value that cannot be printed becomes an error string."""
    try:
        if type(result) is str:
            return result
        if type(result) is dict:
            try:
                return json.dumps(result)
            except Exception:  # noqa: BLE001 - bfcl falls back to str on any failure
                return str(result)
        return str(result)
    except Exception as e:  # noqa: BLE001 - e.g. an int too long to print
        return ERROR + _one_line(str(e))


def _one_line(text: str) -> str:
    return " ".join(text.split()) or "unknown error"


def _check_arguments(arguments: dict[str, Any]) -> str:
    if _depth_exceeds(arguments, MAX_DEPTH):
        return f"arguments nested deeper than {MAX_DEPTH}"
    try:
        size = len(json.dumps(arguments, default=repr))
    except (TypeError, ValueError, RecursionError):
        return "arguments are not plain values"
    if size > MAX_ARGUMENT_CHARS:
        return f"arguments too large ({size} characters of JSON; at most {MAX_ARGUMENT_CHARS})"
    return ""


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether lists/dicts/tuples nest more than `limit` deep (stops at the limit: no
    recursion error on hostile input)."""
    if isinstance(value, dict):
        children = value.values()
    elif isinstance(value, (list, tuple)):
        children = value
    else:
        return False
    return limit <= 0 or any(_depth_exceeds(v, limit - 1) for v in children)


_MAX_PRECISION = 1000
_MAX_POWER_BITS = 1_000_000


def _too_costly(cls: str, name: str, args: dict[str, Any]) -> str:
    """Why a call would compute for too long ("" when it would not). Only MathAPI has such
    calls: exact integer powers grow without bound and both precisions are free parameters."""
    if cls != "MathAPI":
        return ""

    def is_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    if name in ("logarithm", "square_root"):
        p = args.get("precision")
        if is_int(p) and abs(p) > _MAX_PRECISION:
            return f"precision must be at most {_MAX_PRECISION}"
    if name == "round_number":
        d = args.get("decimal_places", 0)
        if is_int(d) and abs(d) > _MAX_PRECISION:
            return f"decimal_places must be at most {_MAX_PRECISION} in size"
    if name == "power":
        base, exp = args.get("base"), args.get("exponent")
        if is_int(base) and is_int(exp) and abs(base) > 1 and \
                exp * abs(base).bit_length() > _MAX_POWER_BITS:
            return "result too large"
    return ""


@contextmanager
def _numeric_contexts() -> Iterator[None]:
    """A local decimal context; mpmath's precision restored afterwards."""
    mp = sys.modules.get("mpmath")
    prec = mp.mp.prec if mp is not None else None
    try:
        with decimal.localcontext():
            yield
    finally:
        if mp is not None:
            mp.mp.prec = prec


# --- canonical state (anchors, test snapshots) ----------------------------------------------

_MAX_CANON_DEPTH = 300


def canonical(value: Any, _depth: int = 0, _path: frozenset[int] = frozenset()) -> Any:
    """A plain, order-free picture of a state value: dicts as sorted item tuples, objects as
    (class name, their public attributes), GorillaFileSystem's files and directories as their
    equality sees them (name and content / contents). A reference back into its own path is
    "<cycle>" and nesting beyond 300 levels "<deep>", so any state (a model can build a
    directory that contains itself) gives a finite picture without recursion errors."""
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return value
    if _depth > _MAX_CANON_DEPTH:
        return "<deep>"
    if id(value) in _path:
        return "<cycle>"
    path = _path | {id(value)}
    d = _depth + 1
    if isinstance(value, dict):
        items = [(canonical(k, d, path), canonical(v, d, path)) for k, v in value.items()]
        return ("dict", tuple(sorted(items, key=repr)))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(canonical(v, d, path) for v in value))
    if isinstance(value, (set, frozenset)):
        return ("set", tuple(sorted((canonical(v, d, path) for v in value), key=repr)))
    kind = type(value).__name__
    if kind == "File" and hasattr(value, "content"):
        return ("File", canonical(value.name, d, path), canonical(value.content, d, path))
    if kind == "Directory" and hasattr(value, "contents"):
        return ("Directory", canonical(value.name, d, path), canonical(value.contents, d, path))
    if hasattr(value, "__dict__"):
        return (kind, canonical(public_attributes(value), d, path))
    return (kind, repr(value))
