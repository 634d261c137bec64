"""Experiment tracking for training loops: what a run logged, where to find it, how it looks.

Every run writes `run_dir/metrics.jsonl` (one JSON object per logged step, flushed line by line so
a killed run keeps everything it logged) and `run_dir/samples.jsonl` (a few decoded trajectories
per step). wandb is an optional mirror of both, never a requirement:

- `backends` picks the mirrors: "jsonl" (files only), "wandb" (files + wandb), "none" (files only
  as well: the metrics JSONL is always written, it is the run's source of truth).
- `WANDB_MODE`, when the user sets it, is respected. Otherwise wandb runs online only when an API
  key is configured (`WANDB_API_KEY` or a netrc entry for the wandb host), else offline.
- wandb never blocks or stops a run: it is imported only when needed, its init has a short
  timeout, its files go under `run_dir/wandb`, and any failure (import, init, log) prints one
  warning line and tracking continues with the JSONL files alone.

Values are Python numbers/bools or 0-d numpy/torch scalars (converted with `float()`); `None` is
skipped. Non-finite values (NaN, inf) are written as JSON `null`, because `NaN` is not valid JSON;
wandb receives them unchanged.

Resuming (`resume_step=k`): lines with `step > k` are dropped from both files (atomic rewrite)
before new lines are appended, so a run killed after logging step 7 but checkpointed at step 5
has no duplicate steps. wandb resumes the run whose id is kept in `run_dir/wandb_run_id.txt`
(wandb itself ignores re-logged steps at or below its last step; the JSONL files stay exact).

`plot_curves` draws reward and eval accuracy against step into `run_dir/curves.png` (called by
`Tracker.finish`); `Progress` is the console bar (tqdm) with ETA and the latest reward/accuracy.
"""

from __future__ import annotations

import json
import math
import netrc
import os
import secrets
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

BACKENDS = ("jsonl", "wandb", "none")
WANDB_INIT_TIMEOUT_S = 20.0
_RESERVED = ("step", "time")


# ---------------------------------------------------------------------------------- values -> JSON


def _metric_value(key: str, value: Any) -> float | None:
    """`value` as a float for a metric row; None for None; TypeError for non-scalars."""
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError) as e:
        raise TypeError(f"metric {key!r} must be a number or 0-d array/tensor, "
                        f"got {type(value).__name__}") from e


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _jsonable(value: Any) -> Any:
    """A JSON-safe copy of a sample field: non-finite floats -> None, scalars unwrapped, else str."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return _finite_or_none(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    item = getattr(value, "item", None)  # numpy / torch scalars and 1-element arrays
    if callable(item):
        try:
            return _jsonable(item())
        except (TypeError, ValueError, RuntimeError):
            pass
    return str(value)


# ------------------------------------------------------------------------------------ JSONL files


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSONL file; unparsable lines (a line torn by a killed run) are skipped."""
    if not path.exists():
        return []
    rows = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict):
                rows.append(row)
    return rows


def _truncate_after(path: Path, max_step: int) -> None:
    """Keep only the rows of `path` with `step <= max_step`; written to a temp file, then replaced."""
    if not path.exists():
        return
    kept = [r for r in _read_jsonl(path)
            if isinstance(r.get("step"), (int, float)) and r["step"] <= max_step]
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, allow_nan=False) + "\n" for r in kept)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_metrics(run_dir: Path | str) -> list[dict[str, Any]]:
    """Rows of `run_dir/metrics.jsonl` in file order (`[]` if absent; a torn last line is skipped)."""
    return _read_jsonl(Path(run_dir) / "metrics.jsonl")


# ------------------------------------------------------------------------------------------ wandb


def _has_wandb_key() -> bool:
    """Whether an API key is configured: `WANDB_API_KEY`, or a netrc entry for the wandb host."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai").split("://")[-1]
    host = host.split("/")[0].split(":")[0]
    netrc_path = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        entry = netrc.netrc(str(netrc_path)).authenticators(host)
    except (OSError, netrc.NetrcParseError):
        return False
    return bool(entry and entry[2])


def _wandb_mode() -> str | None:
    """The mode to pass to wandb.init: None when the user's WANDB_MODE decides."""
    if os.environ.get("WANDB_MODE"):
        return None
    return "online" if _has_wandb_key() else "offline"


def _warn(msg: str) -> None:
    print(f"rlpost.track: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------- Tracker


class Tracker:
    """Logs the metrics and sample trajectories of one run (see the module docstring).

    Args:
        run_dir: the run's directory (created if missing).
        backends: any of "jsonl", "wandb", "none"; metrics.jsonl is written whatever they are.
        project: wandb project.
        run_name: wandb run name (default: wandb's).
        config: the resolved run config, stored with the wandb run.
        resume_step: the step of the checkpoint this run resumes from; logged rows after it are
            dropped. None = a new run: existing files are appended to, and wandb starts a new run.
    """

    def __init__(self, run_dir: Path | str, backends: Sequence[str] = ("jsonl", "wandb"),
                 project: str = "rlpost", run_name: str | None = None,
                 config: dict[str, Any] | None = None, resume_step: int | None = None) -> None:
        unknown = sorted(set(backends) - set(BACKENDS))
        if unknown:
            raise ValueError(f"unknown tracking backend(s) {unknown}; choose from {BACKENDS}")
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.metrics_path = self.run_dir / "metrics.jsonl"
        self.samples_path = self.run_dir / "samples.jsonl"
        if resume_step is not None:
            _truncate_after(self.metrics_path, resume_step)
            _truncate_after(self.samples_path, resume_step)
        self._metrics = self.metrics_path.open("a", encoding="utf-8")
        self._samples = self.samples_path.open("a", encoding="utf-8")
        self._wandb: Any = None
        self._finished = False
        if "wandb" in backends and "none" not in backends:
            self._wandb = self._start_wandb(project, run_name, config, resume_step is not None)

    # -- wandb ---------------------------------------------------------------------------------

    def _start_wandb(self, project: str, run_name: str | None, config: dict[str, Any] | None,
                     resume: bool) -> Any:
        """A wandb run, or None (disabled, or failed: one warning line)."""
        if os.environ.get("WANDB_MODE", "").lower() == "disabled":
            return None  # nothing to mirror: skip the (slow) import
        os.environ.setdefault("WANDB_SILENT", "true")
        try:
            import wandb

            id_file = self.run_dir / "wandb_run_id.txt"
            run_id = id_file.read_text().strip() if resume and id_file.exists() else ""
            run_id = run_id or secrets.token_hex(4)
            id_file.write_text(run_id + "\n")
            (self.run_dir / "wandb").mkdir(exist_ok=True)
            settings = wandb.Settings(init_timeout=WANDB_INIT_TIMEOUT_S, silent=True,
                                      console="off", reinit="create_new")
            return wandb.init(project=project, name=run_name, config=config, id=run_id,
                              resume="allow" if resume else None, dir=str(self.run_dir),
                              mode=_wandb_mode(), settings=settings)
        except Exception as e:  # noqa: BLE001 - tracking must never stop training
            reason = (str(e).strip().splitlines() or [""])[0][:120]
            _warn(f"wandb unavailable ({type(e).__name__}: {reason}); logging to metrics.jsonl only")
            return None

    def _to_wandb(self, payload: dict[str, Any], step: int) -> None:
        if self._wandb is None:
            return
        try:
            self._wandb.log(payload, step=step)
        except Exception as e:  # noqa: BLE001
            _warn(f"wandb.log failed ({type(e).__name__}: {e}); logging to metrics.jsonl only")
            self._wandb = None

    # -- logging -------------------------------------------------------------------------------

    def log(self, metrics: Mapping[str, Any], step: int) -> None:
        """Append `{"step", "time", **metrics}` to metrics.jsonl (flushed) and mirror to wandb."""
        clash = [k for k in _RESERVED if k in metrics]
        if clash:
            raise ValueError(f"metric names {clash} are reserved by the tracker")
        values = {k: _metric_value(k, v) for k, v in metrics.items() if v is not None}
        row: dict[str, Any] = {"step": int(step), "time": round(time.time(), 3)}
        row.update({k: _finite_or_none(v) for k, v in values.items()})
        self._metrics.write(json.dumps(row, allow_nan=False) + "\n")
        self._metrics.flush()
        if values:
            self._to_wandb(values, int(step))

    def log_samples(self, rows: Sequence[Mapping[str, Any]], step: int) -> None:
        """Append sample trajectories (prompt, completion, reward, ...) to samples.jsonl and, as
        a `wandb.Table` under "samples", to wandb."""
        if not rows:
            return
        clean = [{str(k): _jsonable(v) for k, v in r.items()} for r in rows]
        for r in clean:
            self._samples.write(json.dumps({"step": int(step), **r}, allow_nan=False) + "\n")
        self._samples.flush()
        if self._wandb is None:
            return
        try:
            import wandb

            columns = list(dict.fromkeys(k for r in clean for k in r))
            data = [[_table_cell(r.get(c)) for c in columns] for r in clean]
            table = wandb.Table(columns=columns, data=data, allow_mixed_types=True)
        except Exception as e:  # noqa: BLE001
            _warn(f"wandb.Table failed ({type(e).__name__}: {e}); samples kept in samples.jsonl")
            return
        self._to_wandb({"samples": table}, int(step))

    def finish(self) -> Path | None:
        """Close the files, finish wandb, draw `run_dir/curves.png`; returns the PNG path (None if
        plotting failed). Calling it twice is harmless."""
        if self._finished:
            return None
        self._finished = True
        self._metrics.close()
        self._samples.close()
        if self._wandb is not None:
            try:
                self._wandb.finish()
            except Exception as e:  # noqa: BLE001
                _warn(f"wandb.finish failed ({type(e).__name__}: {e})")
            self._wandb = None
        try:
            return plot_curves(self.run_dir)
        except Exception as e:  # noqa: BLE001 - a missing plot must not fail a finished run
            _warn(f"could not plot curves ({type(e).__name__}: {e})")
            return None

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.finish()


def _table_cell(value: Any) -> Any:
    """wandb.Table cells: scalars as they are, containers as JSON text."""
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return value


# --------------------------------------------------------------------------------------- plotting


def plot_curves(run_dir: Path | str, out: Path | str | None = None) -> Path:
    """Plot `run_dir/metrics.jsonl` against step: `reward/total` (thick, with a ±`reward/std`
    band when logged), other `reward/*` keys (thin) and `eval/success` (markers: the share of
    held-out episodes every recipe's eval reports). Saved to `out` (default
    `run_dir/curves.png`); with nothing to plot the PNG says "no metrics". Returns the PNG path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    out_path = Path(out) if out is not None else run_dir / "curves.png"
    rows = sorted((r for r in read_metrics(run_dir) if isinstance(r.get("step"), (int, float))),
                  key=lambda r: r["step"])

    def series(key: str) -> tuple[list[float], list[float]]:
        pts = [(r["step"], r[key]) for r in rows if isinstance(r.get(key), (int, float))]
        return [p[0] for p in pts], [p[1] for p in pts]

    reward_keys = sorted({k for r in rows for k in r
                          if k.startswith("reward/") and k not in ("reward/total", "reward/std")})
    fig, ax = plt.subplots(figsize=(8, 4.5))
    drawn = 0
    xs, ys = series("reward/total")
    if xs:
        ax.plot(xs, ys, label="reward/total", lw=2.2, zorder=3)
        band = [(r["step"], r["reward/total"], r["reward/std"]) for r in rows
                if isinstance(r.get("reward/total"), (int, float))
                and isinstance(r.get("reward/std"), (int, float))]
        if band:  # the spread of rewards within the step, not a curve of its own
            bx, mean, std = zip(*band)
            ax.fill_between(bx, [m - s for m, s in zip(mean, std)],
                            [m + s for m, s in zip(mean, std)], alpha=0.15, label="± reward/std")
        drawn += 1
    for key in reward_keys:
        xs, ys = series(key)
        if xs:
            ax.plot(xs, ys, label=key, lw=0.9, alpha=0.75, zorder=2)
            drawn += 1
    xs, ys = series("eval/success")
    if xs:
        ax.plot(xs, ys, "o--", color="black", ms=5, lw=1.0, label="eval/success", zorder=4)
        drawn += 1
    if drawn:
        ax.legend(fontsize=8, loc="best")
        ax.grid(alpha=0.3)
    else:
        ax.text(0.5, 0.5, "no metrics", ha="center", va="center", fontsize=14,
                transform=ax.transAxes)
    ax.set_xlabel("step")
    ax.set_ylabel("reward / success")
    ax.set_title(run_dir.resolve().name)
    fig.tight_layout()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=110)
    plt.close(fig)
    return out_path


# --------------------------------------------------------------------------------------- console


class Progress:
    """Console progress bar over training steps (tqdm: rate and ETA) showing the latest
    `reward/total` and `eval/success` (the last eval stays shown until the next one).

    On a terminal it refreshes twice a second; when stderr is not a TTY (CI, log files) it
    writes a line at most every 30 s, so logs stay short.
    """

    POSTFIX = (("reward/total", "reward"), ("eval/success", "eval"))

    def __init__(self, total_steps: int, initial: int = 0, desc: str = "train") -> None:
        from tqdm import tqdm

        tty = sys.stderr.isatty()
        self._bar = tqdm(total=total_steps, initial=initial, desc=desc, unit="step",
                         mininterval=0.5 if tty else 30.0, dynamic_ncols=tty, file=sys.stderr)
        self._shown: dict[str, str] = {}

    def update(self, step_metrics: Mapping[str, Any]) -> None:
        """Advance one step; show this step's reward and the latest eval success."""
        for key, short in self.POSTFIX:
            value = step_metrics.get(key)
            if value is not None:
                try:
                    self._shown[short] = f"{float(value):.3f}"
                except (TypeError, ValueError):
                    pass
        self._bar.set_postfix(self._shown, refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        """Close the bar (prints its final state)."""
        self._bar.close()
