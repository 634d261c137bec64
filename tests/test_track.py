"""rlpost.track: metrics/samples JSONL, resume truncation, curve plots, progress bar, wandb offline.

wandb is off (backends or WANDB_MODE=disabled from conftest) except in the one offline test, which
never touches the network.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from rlpost import track
from rlpost.track import Progress, Tracker, plot_curves, read_metrics
from scripted import C0, C1, colour_pixels

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _strict_rows(path: Path) -> list[dict]:
    """Parse JSONL refusing NaN/Infinity, i.e. as strict JSON."""
    def bad(token: str) -> None:
        raise ValueError(f"non-JSON constant {token}")
    return [json.loads(line, parse_constant=bad) for line in path.read_text().splitlines()]


def test_log_writes_flushed_jsonl_lines(tmp_path: Path) -> None:
    t = Tracker(tmp_path, backends=("jsonl",))
    t.log({"reward/total": 0.25, "rollout/tokens": 12, "ok": True, "np": np.float32(0.5),
           "np0d": np.array(2.0), "skipped": None}, step=1)
    t.log({"reward/total": 0.5}, step=2)
    rows = _strict_rows(tmp_path / "metrics.jsonl")  # read before finish: lines are flushed
    assert [r["step"] for r in rows] == [1, 2]
    assert rows[0]["reward/total"] == 0.25 and rows[0]["rollout/tokens"] == 12.0
    assert rows[0]["ok"] == 1.0 and rows[0]["np"] == 0.5 and rows[0]["np0d"] == 2.0
    assert "skipped" not in rows[0] and isinstance(rows[0]["time"], float)
    t.finish()
    t.finish()  # idempotent


def test_non_finite_values_are_written_as_null(tmp_path: Path) -> None:
    with Tracker(tmp_path, backends=("jsonl",)) as t:
        t.log({"loss": float("nan"), "kl": float("inf"), "x": np.float64("-inf")}, step=3)
        t.log_samples([{"prompt": "p", "reward": float("nan"), "components": {"f": np.nan}}], 3)
    (row,) = _strict_rows(tmp_path / "metrics.jsonl")
    assert row["loss"] is None and row["kl"] is None and row["x"] is None
    (sample,) = _strict_rows(tmp_path / "samples.jsonl")
    assert sample["reward"] is None and sample["components"] == {"f": None}


def test_bad_metrics_are_rejected(tmp_path: Path) -> None:
    with Tracker(tmp_path, backends=("none",)) as t:
        with pytest.raises(ValueError, match="reserved"):
            t.log({"step": 1.0}, step=1)
        with pytest.raises(TypeError, match="'name'"):
            t.log({"name": "text"}, step=1)
    with pytest.raises(ValueError, match="unknown tracking backend"):
        Tracker(tmp_path, backends=("tensorboard",))


def test_backend_none_still_writes_metrics_and_samples(tmp_path: Path) -> None:
    with Tracker(tmp_path, backends=("none",)) as t:
        t.log({"reward/total": 1.0}, step=0)
        t.log_samples([{"prompt": "a", "completion": "b", "reward": 1.0, "n": np.int64(3)}], 0)
    assert read_metrics(tmp_path)[0]["reward/total"] == 1.0
    sample = _strict_rows(tmp_path / "samples.jsonl")[0]
    assert sample == {"step": 0, "prompt": "a", "completion": "b", "reward": 1.0, "n": 3}
    assert not (tmp_path / "wandb").exists()
    assert (tmp_path / "curves.png").read_bytes().startswith(PNG_MAGIC)


def test_resume_drops_rows_after_the_checkpoint(tmp_path: Path) -> None:
    killed = Tracker(tmp_path, backends=("jsonl",))
    for step in range(8):  # killed after logging step 7 (never finished)
        killed.log({"reward/total": step / 10}, step)
        killed.log_samples([{"prompt": f"p{step}"}, {"prompt": f"q{step}"}], step)
    killed._metrics.close()
    killed._samples.close()

    with Tracker(tmp_path, backends=("jsonl",), resume_step=5) as t:  # checkpoint at step 5
        assert [r["step"] for r in read_metrics(tmp_path)] == list(range(6))
        for step in (6, 7, 8):
            t.log({"reward/total": 1.0}, step)
            t.log_samples([{"prompt": "new"}], step)
    steps = [r["step"] for r in read_metrics(tmp_path)]
    assert steps == list(range(9))
    samples = _strict_rows(tmp_path / "samples.jsonl")
    assert [s["step"] for s in samples] == [s for s in range(6) for _ in (0, 1)] + [6, 7, 8]
    assert not list(tmp_path.glob("*.tmp"))


def test_new_run_without_resume_step_appends(tmp_path: Path) -> None:
    with Tracker(tmp_path, backends=("jsonl",)) as t:
        t.log({"a": 1.0}, 1)
    with Tracker(tmp_path, backends=("jsonl",)) as t:
        t.log({"a": 2.0}, 2)
    assert [r["a"] for r in read_metrics(tmp_path)] == [1.0, 2.0]


def test_read_metrics_tolerates_a_truncated_last_line(tmp_path: Path) -> None:
    assert read_metrics(tmp_path) == []
    (tmp_path / "metrics.jsonl").write_text(
        '{"step": 1, "reward/total": 0.1}\n{"step": 2, "reward/total": 0.2}\n{"step": 3, "rew')
    assert [r["step"] for r in read_metrics(tmp_path)] == [1, 2]
    with Tracker(tmp_path, backends=("jsonl",), resume_step=10) as t:  # resume repairs the file
        t.log({"reward/total": 0.3}, 3)
    assert [r["step"] for r in _strict_rows(tmp_path / "metrics.jsonl")] == [1, 2, 3]


def _write_rows(run_dir: Path, rows: list[dict]) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.mark.parametrize("with_eval", [True, False])
def test_plot_curves_writes_png(tmp_path: Path, with_eval: bool) -> None:
    rows = [{"step": s, "reward/total": s / 10, "reward/format": 1.0, "reward/std": 0.1,
             "loss/policy": 0.3} for s in range(1, 6)]
    if with_eval:
        rows[1]["eval/success"] = 0.2
        rows[4]["eval/success"] = None  # a NaN written as null
        rows.insert(0, {"step": 0, "eval/success": 0.0})
    run_dir = tmp_path / "cls-rl-run"
    _write_rows(run_dir, rows)
    out = plot_curves(run_dir)
    assert out == run_dir / "curves.png"
    assert out.read_bytes().startswith(PNG_MAGIC)
    # reward/total is drawn in the first line colour, reward/format in the second; the empty
    # plot has neither
    assert colour_pixels(out, C0) > 300 and colour_pixels(out, C1) > 100
    empty = plot_curves(tmp_path / "nothing", out=tmp_path / "empty.png")
    assert colour_pixels(empty, C0) == 0 and colour_pixels(empty, C1) == 0
    black_with_eval = colour_pixels(out, (0, 0, 0), tol=40)
    # the same rows without their eval values (same steps, so the same axes)
    _write_rows(run_dir, [{k: v for k, v in r.items() if k != "eval/success"} for r in rows])
    without_eval = colour_pixels(plot_curves(run_dir), (0, 0, 0), tol=40)
    if with_eval:  # the eval markers are black
        assert black_with_eval > without_eval


def test_plot_curves_without_metrics_still_writes_png(tmp_path: Path) -> None:
    out = plot_curves(tmp_path, out=tmp_path / "sub" / "empty.png")
    assert out.read_bytes().startswith(PNG_MAGIC)
    _write_rows(tmp_path, [{"step": 1, "loss/policy": 0.5}])  # nothing plottable
    assert plot_curves(tmp_path).read_bytes().startswith(PNG_MAGIC)


def test_progress_runs_and_keeps_last_eval(capsys: pytest.CaptureFixture[str]) -> None:
    p = Progress(total_steps=5, initial=2, desc="grpo")
    p.update({"reward/total": 0.12345, "eval/success": np.float32(0.5)})
    p.update({"reward/total": 0.5})
    p.update({})
    assert p._bar.n == 5
    assert "eval=0.500" in p._bar.postfix and "reward=0.500" in p._bar.postfix
    p.close()
    assert "5/5" in capsys.readouterr().err


def test_wandb_mode_from_key_and_netrc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    netrc = tmp_path / "netrc"
    monkeypatch.setenv("NETRC", str(netrc))
    assert track._wandb_mode() == "offline"
    netrc.write_text("machine api.wandb.ai\n  login user\n  password abc123\n")
    netrc.chmod(0o600)
    assert track._wandb_mode() == "online"
    netrc.unlink()
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    assert track._wandb_mode() == "online"
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert track._wandb_mode() is None  # the user's WANDB_MODE decides


def test_wandb_import_failure_warns_once_and_keeps_jsonl(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` raises ImportError
    with Tracker(tmp_path, backends=("jsonl", "wandb")) as t:
        t.log({"reward/total": 0.5}, 1)
        t.log_samples([{"prompt": "p"}], 1)
    warnings = [line for line in capsys.readouterr().err.splitlines() if "wandb" in line]
    assert len(warnings) == 1 and "metrics.jsonl" in warnings[0]
    assert read_metrics(tmp_path)[0]["reward/total"] == 0.5


@pytest.mark.skipif(importlib.util.find_spec("wandb") is None, reason="wandb not installed")
def test_wandb_offline_writes_run_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    with Tracker(tmp_path, backends=("jsonl", "wandb"), run_name="t", config={"lr": 1e-6}) as t:
        assert t._wandb is not None
        t.log({"reward/total": 0.5, "loss": float("nan")}, 1)
        t.log_samples([{"prompt": "p", "completion": "c", "reward": 1.0,
                        "components": {"format": 1.0}}], 1)
    run_id = (tmp_path / "wandb_run_id.txt").read_text().strip()
    runs = list((tmp_path / "wandb").glob(f"offline-run-*-{run_id}"))
    assert len(runs) == 1 and list(runs[0].glob("*.wandb"))
    with Tracker(tmp_path, backends=("jsonl", "wandb"), resume_step=1) as t:  # same wandb run
        t.log({"reward/total": 0.6}, 2)
    assert (tmp_path / "wandb_run_id.txt").read_text().strip() == run_id
