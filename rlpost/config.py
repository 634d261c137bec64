"""Typed config dataclasses from the command line and YAML: dotted overrides, help, save/load.

``--algo.lr 1e-6`` (or ``--algo.lr=1e-6``) sets ``cfg.algo.lr``. Values are converted to the
field's declared type (int, float, str, bool, Literal, Optional, tuple/list of scalars as a
comma-separated string); an unknown key or a bad value raises `RlpostError` with a suggestion.
The docstring under each field is its help text.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import inspect
import textwrap
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from rlpost.errors import RlpostError


def _fields(obj: Any) -> dict[str, tuple[Any, Any]]:
    """name -> (resolved type, current value) for a dataclass instance."""
    hints = typing.get_type_hints(type(obj))
    return {f.name: (hints[f.name], getattr(obj, f.name)) for f in dataclasses.fields(obj)}


def flat_keys(obj: Any, prefix: str = "") -> dict[str, tuple[Any, Any]]:
    out = {}
    for name, (tp, value) in _fields(obj).items():
        key = f"{prefix}{name}"
        if dataclasses.is_dataclass(value):
            out.update(flat_keys(value, key + "."))
        else:
            out[key] = (tp, value)
    return out


def convert(tp: Any, raw: Any, key: str) -> Any:
    """Convert `raw` (a CLI string or a YAML value) to type `tp`."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if raw is None or (isinstance(raw, str) and raw.lower() in ("none", "null")):
            if type(None) in args:
                return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return convert(a, raw, key)
            except RlpostError as e:
                errors.append(str(e))
        raise RlpostError(errors[0] if errors else f"--{key}: bad value {raw!r}")
    if origin is typing.Literal:
        choices = list(args)
        for c in choices:
            if raw == c or str(raw) == str(c):
                return c
        raise RlpostError(f"--{key}: {raw!r} is not one of {', '.join(map(str, choices))}")
    if origin in (tuple, list):
        items = raw if isinstance(raw, (list, tuple)) else [s for s in str(raw).split(",") if s]
        elem = args[0] if args else str
        vals = [convert(elem, v, key) for v in items]
        return tuple(vals) if origin is tuple else vals
    if tp is bool:
        if isinstance(raw, bool):
            return raw
        if str(raw).lower() in ("true", "1", "yes", "on"):
            return True
        if str(raw).lower() in ("false", "0", "no", "off"):
            return False
        raise RlpostError(f"--{key}: expected true or false, got {raw!r}")
    if tp in (int, float, str):
        try:
            if tp is not int:
                return tp(raw)
            if isinstance(raw, float) or any(c in str(raw).lower() for c in ".e"):  # 1e3, 4.0
                value = float(raw)
                if not value.is_integer():
                    raise ValueError
                return int(value)
            return int(raw)
        except (TypeError, ValueError, OverflowError):
            raise RlpostError(f"--{key}: expected {tp.__name__}, got {raw!r}") from None
    return raw


def set_value(cfg: Any, key: str, raw: Any) -> None:
    keys = flat_keys(cfg)
    if key not in keys:
        close = difflib.get_close_matches(key, list(keys), n=1)
        hint = f"; did you mean --{close[0]}?" if close else "; see --help for the options"
        raise RlpostError(f"unknown option --{key}{hint}")
    *path, name = key.split(".")
    target = cfg
    for p in path:
        target = getattr(target, p)
    setattr(target, name, convert(keys[key][0], raw, key))


def apply_overrides(cfg: Any, args: list[str]) -> Any:
    """Apply ``--key value`` / ``--key=value`` pairs to `cfg` in place; returns it."""
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or arg == "--":
            raise RlpostError(f"unexpected argument {arg!r}; options look like --algo.lr 1e-6")
        if "=" in arg:
            key, raw = arg[2:].split("=", 1)
            i += 1
        else:
            if i + 1 >= len(args):
                raise RlpostError(f"option {arg} needs a value")
            key, raw = arg[2:], args[i + 1]
            i += 2
        set_value(cfg, key, raw)
    return cfg


def load_yaml(cfg: Any, path: str | Path) -> Any:
    """Apply a YAML file of (nested) overrides, as written by `save_yaml`, to `cfg`."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise RlpostError(f"config file {path} does not exist") from None
    except yaml.YAMLError as e:
        raise RlpostError(f"config file {path} is not valid YAML: {str(e).splitlines()[0]}") from e
    if not isinstance(data, dict):
        raise RlpostError(f"config file {path} must hold a mapping of options")

    def walk(d: dict[str, Any], prefix: str) -> None:
        for k, v in d.items():
            if isinstance(v, dict):
                walk(v, f"{prefix}{k}.")
            else:
                set_value(cfg, f"{prefix}{k}", v)

    walk(data, "")
    return cfg


def to_dict(cfg: Any) -> dict[str, Any]:
    def plain(x: Any) -> Any:
        if isinstance(x, (list, tuple)):
            return [plain(v) for v in x]
        if isinstance(x, dict):
            return {k: plain(v) for k, v in x.items()}
        return x

    return plain(dataclasses.asdict(cfg))


def save_yaml(cfg: Any, path: Path) -> None:
    path.write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))


def field_docs(cls: type) -> dict[str, str]:
    """Docstrings written under dataclass fields (the string literal after an annotation),
    inherited ones included (a subclass's own docstring wins)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if dataclasses.is_dataclass(klass):
            docs.update(_own_field_docs(klass))
    return docs


def _own_field_docs(cls: type) -> dict[str, str]:
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError):
        return {}
    body, docs = tree.body[0].body, {}
    for a, b in zip(body, body[1:]):
        if (isinstance(a, ast.AnnAssign) and isinstance(a.target, ast.Name)
                and isinstance(b, ast.Expr) and isinstance(b.value, ast.Constant)
                and isinstance(b.value.value, str)):
            docs[a.target.id] = " ".join(b.value.value.split())
    return docs


def type_name(tp: Any) -> str:
    """How --help names a field's type: the choices of a Literal, "int or None", "list of
    str" (comma-separated on the command line)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Literal:
        return "one of " + "|".join(map(str, args))
    if origin in (typing.Union, types.UnionType):
        return " or ".join("None" if a is type(None) else type_name(a) for a in args)
    if origin in (tuple, list):
        return f"list of {type_name(args[0]) if args else 'str'}"
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def help_text(cfg: Any, prefix: str = "") -> str:
    lines, docs = [], field_docs(type(cfg))
    for name, (tp, value) in _fields(cfg).items():
        if dataclasses.is_dataclass(value):
            lines.append(help_text(value, f"{prefix}{name}."))
            continue
        lines.append(f"  --{prefix}{name} ({type_name(tp)}, default {value!r})")
        if name in docs:
            lines.append(f"      {docs[name]}")
    return "\n".join(lines)
