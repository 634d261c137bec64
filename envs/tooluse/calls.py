"""Tool calls in model text: parsing (never `eval`) and formatting.

A model answers a tool-use turn with a call list in one of three forms:

- Python syntax, BFCL's prompt format: ``[get_weather(city="Paris"), f(a=1)]``; the brackets may
  be left out for a single call (BFCL's decoder adds them too), code fences are stripped;
- JSON: ``[{"name": "f", "arguments": {"a": 1}}]`` or one such object (``"parameters"`` is
  accepted for ``"arguments"``, which may also be a JSON string, as OpenAI's API sends it);
- one or more ``<tool_call>{json}</tool_call>`` blocks (Hermes/Qwen chat templates); when the
  text holds such blocks only they are read, and text around them is ignored (those templates
  let the model write prose beside its calls).

Values are literals only: strings, finite numbers (with a sign; integers of at most
`MAX_INT_BITS` bits), booleans, None, lists, tuples and dicts of literals, nested at most
`MAX_DEPTH` deep (counting the argument itself as depth 1 in both forms); arguments are
keywords only. Anything else
(a bare name, arithmetic, a nested call, a lambda, positional arguments, attribute access in a
value) raises `CallParseError` with a one-line reason: the env turns it into its penalty or,
in multi-turn episodes, into a tool error message for the model. BFCL's own decoder
(``bfcl_eval.model_handler.utils.ast_parse``) `eval`s arithmetic and lambdas and reads a bare
name as its string; we refuse those instead (a model must write the value).
"""

from __future__ import annotations

import ast
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

MAX_DEPTH = 16
"""Deepest nesting of a value (lists in lists ...) that parses."""
MAX_CALLS = 64
"""Most calls in one answer."""
MAX_INT_BITS = 256
"""Largest integer literal (bits) that parses; a bigger one is refused (Python cannot even
print integers of more than 4,300 digits by default)."""

_TOOL_CALL = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL)
_FENCE = re.compile(r"^```[a-zA-Z]*\n?|```$")


class CallParseError(ValueError):
    """The text is not a call list (one-line reason in the message)."""


@dataclass(frozen=True)
class Call:
    """One function call: its (possibly dotted) name and its keyword arguments."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)

    def as_bfcl(self) -> dict[str, dict[str, Any]]:
        """BFCL's decoded form ``{name: {param: value}}``."""
        return {self.name: dict(self.arguments)}


def parse_calls(text: str) -> list[Call]:
    """The calls in `text` (see the module docstring for the forms). ``"[]"`` is an empty list.
    Raises CallParseError when `text` is none of the forms (plain prose included)."""
    if not isinstance(text, str):
        raise CallParseError(f"expected text, got {type(text).__name__}")
    body = _FENCE.sub("", text.strip()).strip()
    tagged = _TOOL_CALL.findall(body)
    if tagged:
        calls = [c for block in tagged for c in _parse_json(block.strip())]
    elif body[:1] in "[{" and _looks_like_json(body):
        calls = _parse_json(body)
    else:
        calls = _parse_python(body)
    if len(calls) > MAX_CALLS:
        raise CallParseError(f"{len(calls)} calls in one answer (at most {MAX_CALLS})")
    return calls


def format_calls(calls: list[Call]) -> str:
    """Python-syntax call list of `calls` (the form BFCL's prompt asks for); parses back to
    the same calls."""
    parts = []
    for c in calls:
        args = ", ".join(f"{k}={_literal(v)}" for k, v in c.arguments.items())
        parts.append(f"{c.name}({args})")
    return "[" + ", ".join(parts) + "]"


def _literal(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if isinstance(value, tuple):
        inner = ", ".join(_literal(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    return repr(value)


# --- Python syntax -------------------------------------------------------------------------


def _parse_python(body: str) -> list[Call]:
    if not body:
        raise CallParseError("empty answer: no call")
    src = body if body.startswith("[") else f"[{body}]"
    try:
        tree = ast.parse(src, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        raise CallParseError(f"not a Python call list ({type(e).__name__})") from None
    if not isinstance(tree.body, ast.List):
        raise CallParseError("not a call list: expected [f(a=1), ...]")
    return [_call(node) for node in tree.body.elts]


def _name(node: ast.expr) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        raise CallParseError("a function name must be a name like f or module.f")
    parts.append(node.id)
    return ".".join(reversed(parts))


def _call(node: ast.expr) -> Call:
    if not isinstance(node, ast.Call):
        raise CallParseError(f"list item is not a call: {_snippet(node)}")
    name = _name(node.func)
    if node.args:
        raise CallParseError(f"{name}: positional arguments are not allowed; write name=value")
    args: dict[str, Any] = {}
    for kw in node.keywords:
        if kw.arg is None:
            raise CallParseError(f"{name}: **kwargs is not allowed")
        if kw.arg in args:
            raise CallParseError(f"{name}: argument {kw.arg!r} given twice")
        args[kw.arg] = _value(kw.value, 1)
    return Call(name, args)


def _value(node: ast.expr, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise CallParseError(f"value nested deeper than {MAX_DEPTH}")
    if isinstance(node, ast.Constant):
        if isinstance(node.value, (str, int, float, bool)) or node.value is None:
            return _number_ok(node.value)
        raise CallParseError(f"unsupported literal {_snippet(node)}")
    if (isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd))
            and isinstance(node.operand, ast.Constant)
            and isinstance(node.operand.value, (int, float))
            and not isinstance(node.operand.value, bool)):
        v = node.operand.value
        return _number_ok(-v if isinstance(node.op, ast.USub) else v)
    if isinstance(node, ast.List):
        return [_value(e, depth + 1) for e in node.elts]
    if isinstance(node, ast.Tuple):
        return tuple(_value(e, depth + 1) for e in node.elts)
    if isinstance(node, ast.Dict):
        if any(k is None for k in node.keys):
            raise CallParseError("** in a dict value is not allowed")
        out = {}
        for k, v in zip(node.keys, node.values):
            key = _value(k, depth + 1)
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                raise CallParseError(f"unsupported dict key {_snippet(k)}")
            out[key] = _value(v, depth + 1)
        return out
    raise CallParseError(f"argument values must be literals, got {_snippet(node)}")


def _number_ok(value: Any) -> Any:
    """`value`, or CallParseError for a non-finite float or an integer over `MAX_INT_BITS`."""
    if isinstance(value, float) and not math.isfinite(value):
        raise CallParseError("numbers must be finite")
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
        raise CallParseError(f"integer literal longer than {MAX_INT_BITS} bits")
    return value


def _snippet(node: ast.AST) -> str:
    try:
        text = ast.unparse(node)
    except (ValueError, RecursionError, MemoryError):
        text = type(node).__name__
    return text if len(text) <= 40 else text[:37] + "..."


# --- JSON ----------------------------------------------------------------------------------


def _looks_like_json(body: str) -> bool:
    # "[f(a=1)]" starts with "[" too; JSON call lists start with "[{" or "{"
    return body.startswith("{") or re.match(r"\[\s*(\{|\])", body) is not None


def _loads(text: str) -> Any:
    """json.loads, with every failure (syntax, nesting, integer size) a CallParseError; NaN and
    Infinity are refused."""
    def constant(name: str) -> Any:
        raise CallParseError("numbers must be finite")

    try:
        return json.loads(text, parse_constant=constant)
    except CallParseError:
        raise
    except (ValueError, RecursionError, MemoryError) as e:  # JSONDecodeError is a ValueError
        raise CallParseError(f"not valid JSON ({type(e).__name__})") from None


def _parse_json(body: str) -> list[Call]:
    data = _loads(body)
    items = data if isinstance(data, list) else [data]
    return [_json_call(item) for item in items]


def _json_call(item: Any) -> Call:
    if not isinstance(item, dict):
        raise CallParseError("a JSON call must be an object with name and arguments")
    if "name" not in item:
        raise CallParseError('a JSON call needs a "name"')
    name = item["name"]
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][\w.]*", name):
        raise CallParseError(f"bad function name {str(name)[:40]!r}")
    args = item.get("arguments", item.get("parameters", {}))
    if isinstance(args, str):
        try:
            args = _loads(args) if args.strip() else {}
        except CallParseError as e:
            raise CallParseError(f"{name}: arguments are not a JSON object ({e})") from None
    if not isinstance(args, dict):
        raise CallParseError(f"{name}: arguments must be an object")
    for value in args.values():
        _check_json_value(value)
    return Call(name, args)


def _check_json_value(value: Any) -> None:
    """CallParseError when `value` (an argument) nests deeper than MAX_DEPTH (the argument
    is depth 1, as in the Python form) or holds a number `_number_ok` refuses; iterative, so
    no depth can overflow the stack."""
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise CallParseError(f"value nested deeper than {MAX_DEPTH}")
        if isinstance(v, dict):
            stack.extend((x, depth + 1) for x in v.values())
        elif isinstance(v, list):
            stack.extend((x, depth + 1) for x in v)
        else:
            _number_ok(v)
