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
- they cannot make one call run for minutes (`_too_costly`, MathAPI only: an exact integer
  power of more than a million bits; a precision over 1,000 digits, whatever its form: mpmath
  reads ``logarithm``'s with ``int()``, so ``"200000"`` and ``1e6`` count as much as
  ``200000``; a ``round_number`` of over 1,000 places either way; a number written as a string
  of more than 100 characters for ``logarithm``, which mpmath parses, and ``"1e"`` followed by
  thousands of digits takes seconds). No other MathAPI function can be slow: the others do
  one arithmetic operation on their arguments or a sum over a list, which the argument size
  bounds (and `parse_calls` takes integers of at most 256 bits);
- the state is not too large (`state_error` is empty, below).

State size: every walk of an episode's state (`fingerprint`, `canonical`, the checker's
comparisons, and the API's own walks: GorillaFileSystem's ``find`` and ``du`` recurse through
the tree) costs as much as the state has nodes counted per path (`state_size`: each dict, list,
object, key and value once for every path to it from an instance). bfcl's ``cp`` copies a
directory's contents shallowly, so a model can build a tree whose subtrees are shared and whose
paths double with every few calls (``cp a b; mkdir c; mv a c; mv b c; mv c a``), or a directory
that contains itself (``cp loop loop``), where a walk never ends. So after every call that ran,
the size of its instance is measured (only that instance can have changed; the work is
linear in its distinct objects, however many paths lead to them, and stops at the budget);
when the whole state exceeds `MAX_STATE_NODES` nodes (100,000; no state of any shipped ground
truth has more than 700) or contains itself, `state_error` says so and every later call of
the episode is refused unrun, so no walk ever meets an over-size state, and the env ends the
episode there as a failure. `canonical` itself stops with `StateTooLarge` past the same
budget. So one call costs at most about one walk of 100,000 nodes (a ``find`` or ``du``:
tens of milliseconds) plus the measure after it (about 10 ms), and a step's fingerprint
0.1 to 0.3 s.

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
import gc
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
MAX_STATE_NODES = 100_000
"""Most nodes (`state_size`) an episode's state may have; a call that makes it larger ends
the episode (see the module docstring)."""
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


class StateTooLarge(Exception):
    """A state walk met more than its node budget (args ``("size", message)``), or a state
    that contains itself (args ``(message,)``)."""

    def __str__(self) -> str:
        return self.args[-1]


class Executor:
    """The API instances of one episode and the calls run on them (see the module docstring).
    `max_calls_per_turn` None = no budget (the ground truth's executor); `max_state_nodes`:
    the state size budget."""

    def __init__(self, classes: Sequence[str], initial_config: dict[str, Any],
                 long_context: bool, max_calls_per_turn: int | None = None,
                 max_state_nodes: int = MAX_STATE_NODES):
        self.classes = tuple(classes)
        self.instances = load_instances(self.classes, initial_config, long_context)
        self.owners = method_owners(self.classes)
        self.max_calls_per_turn = max_calls_per_turn
        self.calls_this_turn = 0
        self.max_state_nodes = max_state_nodes
        self.state_error = ""
        """Why the state became too large ("" while it is not); then no call runs any more."""
        self._sizes: dict[str, int] = {}
        for name in self.classes:
            self._measure(name)

    def state_nodes(self) -> int:
        """The size of `state()` (`state_size`; as measured after the last call of each
        instance; meaningful while `state_error` is empty)."""
        return 1 + sum(1 + n for n in self._sizes.values())

    def _measure(self, cls: str) -> None:
        """Measure one instance after a call (only that instance can have changed) and set
        `state_error` when the state is now over budget."""
        if self.state_error:
            return
        others = 1 + sum(1 + n for c, n in self._sizes.items() if c != cls)
        try:  # the instance counts 1 + its attributes (its key in `state()` and their dict)
            self._sizes[cls] = state_size(public_attributes(self.instances[cls]),
                                          self.max_state_nodes - others - 1)
        except StateTooLarge as e:
            self.state_error = (str(e) if e.args[0] != "size" else
                                f"more than {self.max_state_nodes} nodes")

    def new_turn(self) -> None:
        """Start a user turn: the call budget is full again."""
        self.calls_this_turn = 0

    def execute(self, calls: Sequence[Call], offered: Collection[str] | None = None) -> list[str]:
        """One result string per call, in order; `offered` = the function names the model was
        given (None: every public method, as for the ground truth)."""
        return [self.run(c, offered) for c in calls]

    def run(self, call: Call, offered: Collection[str] | None = None) -> str:
        """The result string of one call (an error string when a check fails)."""
        if self.state_error:
            return f"{ERROR}state too large ({self.state_error}); no call runs any more"
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
        with _numeric_contexts():  # mpmath prints its numbers at its precision: str inside
            try:
                result = stringify(method(**copy.deepcopy(call.arguments)))
            except Exception as e:  # noqa: BLE001 - any API error is a result, as in bfcl
                result = ERROR + _one_line(str(e))
        self._measure(self.owners[call.name])
        return result

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
        """A hash of `state()` (canonical: dict order and object identity do not matter);
        ``"state-too-large"`` for a state over budget (`state_error`: the episode is over)."""
        if self.state_error:
            return "state-too-large"
        try:
            with _gc_paused():
                text = repr(canonical(self.state(), self.max_state_nodes))
        except StateTooLarge:
            return "state-too-large"
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
_MAX_NUMBER_STRING = 100


def _as_int(value: Any) -> int | None:
    """``int(value)`` as mpmath reads a precision (``"200000"``, ``1e6``, ``" 2_000 "`` all
    convert); None when that raises, in which case the API reports its own error at once."""
    try:
        return int(value)
    except Exception:  # noqa: BLE001 - whatever int() refuses, mpmath refuses the same way
        return None


def _too_costly(cls: str, name: str, args: dict[str, Any]) -> str:
    """Why a call would compute for too long ("" when it would not). Only MathAPI has such
    calls (see the module docstring for the rules and why the other functions are cheap)."""
    if cls != "MathAPI":
        return ""

    def is_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    if name == "logarithm":  # mpmath.mp.dps = precision: int(precision), any form int takes
        p = _as_int(args.get("precision"))
        if p is not None and p > _MAX_PRECISION:
            return f"precision must be at most {_MAX_PRECISION}"
        for key in ("value", "base"):
            v = args.get(key)
            if isinstance(v, str) and len(v) > _MAX_NUMBER_STRING:
                return f"{key} as a string must be at most {_MAX_NUMBER_STRING} characters"
    if name == "square_root":  # decimal's prec takes ints only (a float or str is a TypeError)
        p = args.get("precision")
        if is_int(p) and p > _MAX_PRECISION:
            return f"precision must be at most {_MAX_PRECISION}"
    if name == "round_number":  # round() takes ints only; an int rounded to -10**8 places is slow
        d = args.get("decimal_places", 0)
        if is_int(d) and abs(d) > _MAX_PRECISION:
            return f"decimal_places must be at most {_MAX_PRECISION} in size"
    if name == "power":  # only int ** positive int is exact (a float operand overflows at once)
        base, exp = args.get("base"), args.get("exponent")
        if is_int(base) and is_int(exp) and abs(base) > 1 and \
                exp * abs(base).bit_length() > _MAX_POWER_BITS:
            return "result too large"
    return ""


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection meanwhile: a walk builds up to `MAX_STATE_NODES` tuples
    (no cycles among them), which would otherwise trigger full collections over the whole
    process heap, several times slower than the walk itself."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


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


# --- canonical state (anchors, test snapshots) and its size ---------------------------------

_MAX_CANON_DEPTH = 300
_LEAVES = (bool, int, float, str, bytes)


def _is_leaf(value: Any) -> bool:
    return value is None or isinstance(value, _LEAVES)


def _parts(value: Any) -> tuple[int, list[Any] | None]:
    """(nodes, children) of a non-leaf as `canonical` walks it: a generic object is itself plus
    the dict of its public attributes (2 nodes); children None = nothing below."""
    if isinstance(value, dict):
        return 1, [x for item in value.items() for x in item]
    if isinstance(value, (list, tuple, set, frozenset)):
        return 1, list(value)
    kind = type(value).__name__
    if kind == "File" and hasattr(value, "content"):
        return 1, [value.name, value.content]
    if kind == "Directory" and hasattr(value, "contents"):
        return 1, [value.name, value.contents]
    if hasattr(value, "__dict__"):
        return 2, [x for item in public_attributes(value).items() for x in item]
    return 1, None


def state_size(value: Any, max_nodes: int = MAX_STATE_NODES) -> int:
    """The number of nodes `canonical` visits walking `value` when no depth limit applies:
    every dict, list, object, key and value once per path that reaches it (a subtree shared by
    k paths counts k times). Computed once per distinct object (iteratively: any depth), so the
    work is at most about `max_nodes` steps. Raises StateTooLarge when the size exceeds
    `max_nodes` or `value` contains itself (then the size is unbounded)."""
    if _is_leaf(value):
        return 1
    nodes, children = _parts(value)
    if children is None:
        return nodes
    sizes: dict[int, int] = {}  # finished objects (alive in `value` for the whole walk)
    on_path = {id(value)}
    stack: list[list[Any]] = [[id(value), nodes, iter(children)]]  # [id, size so far, children]
    work = 0
    too_large = StateTooLarge("size", f"more than {max_nodes} nodes")
    while True:
        frame = stack[-1]
        for child in frame[2]:
            work += 1
            if _is_leaf(child):
                frame[1] += 1
            elif id(child) in sizes:
                frame[1] += sizes[id(child)]
            elif id(child) in on_path:
                raise StateTooLarge("it contains itself: a directory inside itself?")
            else:
                nodes, grandchildren = _parts(child)
                if grandchildren is None:
                    frame[1] += nodes
                else:
                    on_path.add(id(child))
                    stack.append([id(child), nodes, iter(grandchildren)])
                    break
            if frame[1] > max_nodes or work > max_nodes:
                raise too_large
        else:
            stack.pop()
            on_path.discard(frame[0])
            sizes[frame[0]] = frame[1]
            if not stack:
                if frame[1] > max_nodes:
                    raise too_large
                return frame[1]
            stack[-1][1] += frame[1]
            if stack[-1][1] > max_nodes:
                raise too_large


def canonical(value: Any, max_nodes: int | None = MAX_STATE_NODES) -> Any:
    """A plain, order-free picture of a state value: dicts as sorted item tuples, objects as
    (class name, their public attributes), GorillaFileSystem's files and directories as their
    equality sees them (name and content / contents). A reference back into its own path is
    "<cycle>" and nesting beyond 300 levels "<deep>", so any state (a model can build a
    directory that contains itself) gives a finite picture without recursion errors. Raises
    StateTooLarge after visiting `max_nodes` nodes (as `state_size` counts them; None = no
    limit)."""
    path: set[int] = set()
    left = [max_nodes]

    def walk(value: Any, depth: int) -> Any:
        if left[0] is not None:
            left[0] -= 1
            if left[0] < 0:
                raise StateTooLarge(f"more than {max_nodes} nodes")
        if _is_leaf(value):
            return value
        if depth > _MAX_CANON_DEPTH:
            return "<deep>"
        if id(value) in path:
            return "<cycle>"
        path.add(id(value))
        try:
            return picture(value, depth + 1)
        finally:
            path.discard(id(value))

    def picture(value: Any, d: int) -> Any:
        if isinstance(value, dict):
            items = [(walk(k, d), walk(v, d)) for k, v in value.items()]
            keys = [repr(k) for k, _ in items]  # sorting by whole items costs O(size x depth)
            if len(set(keys)) == len(keys):
                return ("dict", tuple(item for _, item in sorted(zip(keys, items),
                                                                  key=lambda x: x[0])))
            return ("dict", tuple(sorted(items, key=repr)))
        if isinstance(value, (list, tuple)):
            return (type(value).__name__, tuple(walk(v, d) for v in value))
        if isinstance(value, (set, frozenset)):
            return ("set", tuple(sorted((walk(v, d) for v in value), key=repr)))
        kind = type(value).__name__
        if kind == "File" and hasattr(value, "content"):
            return ("File", walk(value.name, d), walk(value.content, d))
        if kind == "Directory" and hasattr(value, "contents"):
            return ("Directory", walk(value.name, d), walk(value.contents, d))
        if hasattr(value, "__dict__"):
            return (kind, walk(public_attributes(value), d))
        return (kind, repr(value))

    return walk(value, 0)
