"""Shared by the benchmarks: the printed table and the JSON result file."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any

from rlpost.track import read_metrics  # noqa: F401  (re-exported for the benchmarks)


def print_table(title: str, rows: list[tuple[str, Any]]) -> None:
    width = max(len(k) for k, _ in rows)
    print(f"\n{title}\n" + "-" * (width + 14))
    for k, v in rows:
        print(f"{k:<{width}}  {v:>10.3f}" if isinstance(v, float) else f"{k:<{width}}  {v!s:>10}")


def write_result(out: str, name: str, summary: dict[str, float], details: dict[str, Any]) -> None:
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": name, "date": time.strftime("%Y-%m-%d %H:%M"),
               "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
               "summary": summary, "details": details}
    path.write_text(json.dumps(payload, indent=2))
    print(f"\nwrote {path}")
