"""BFCL v4 data as shipped inside the `bfcl-eval` package (Berkeley Function Calling
Leaderboard, Patil et al. 2024; Apache-2.0), read from the installed package: nothing is
downloaded. Install: ``pip install --no-deps bfcl-eval==2026.3.23 mpmath`` (done by
``scripts/setup.sh``; with its dependencies bfcl-eval pins an old numpy and pulls a dozen API
clients).

Train/test splits are fixed by entry id: an entry is in the test split iff the first 8 hex
digits of sha256("rlpost-bfcl:" + id), read as an integer, fall below `test_fraction` of
2**32. The split of an entry therefore never changes when others are added or removed.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

from rlpost.errors import RlpostError

INSTALL_HINT = "pip install --no-deps bfcl-eval==2026.3.23 mpmath"


@cache
def data_dir() -> Path:
    """The ``bfcl_eval/data`` directory of the installed package. Raises RlpostError when
    bfcl-eval is not installed."""
    import importlib.resources
    import importlib.util

    if importlib.util.find_spec("bfcl_eval") is None:
        raise RlpostError(f"the tool-use envs read BFCL's data from bfcl-eval: {INSTALL_HINT}")
    return Path(str(importlib.resources.files("bfcl_eval") / "data"))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of a one-object-per-line file. Raises RlpostError on a missing file or
    a malformed line (naming the line)."""
    if not path.is_file():
        raise RlpostError(f"BFCL data file missing: {path} ({INSTALL_HINT})")
    out = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise RlpostError(f"{path.name} line {n}: malformed JSON ({e.msg})") from None
    return out


def is_test(entry_id: str, test_fraction: float) -> bool:
    """Whether `entry_id` is in the test split (see the module docstring)."""
    digest = hashlib.sha256(f"rlpost-bfcl:{entry_id}".encode()).hexdigest()
    return int(digest[:8], 16) < test_fraction * 2**32
