"""EEF: Exploring Expert Failures improves LLM agent tuning (WebShop).

Paper: Lan et al. 2025, arXiv 2504.13145. Behaviour-clone the expert's successful episodes, then
iterate: (a) RFT exploration - the agent plays every training task from its start, successes
are kept (shortest per task); (b) EEF - for expert episodes that failed on tasks still unsolved,
the agent is simulated from M evenly spaced states of the expert episode; expert actions that
move the agent from a state it fails from to one it solves are beneficial (trained on), those
that move it from solvable to unsolvable are harmful (masked out of the loss); the expert prefix
up to the important state plus the agent's successful continuation is kept. Then SFT on the
expert successes and everything kept, loss on action tokens only. The loop is the `rft`
recipe's (`rlpost.recipes.rft.RFT`); `EEF` extends it with (b).

Choices where the paper is unclear (config fields): M = `eef_states` (5) states spaced
floor(k n / M); the important state is the earliest solved state after a beneficial action
(`eef_pick`); expert actions that are neither beneficial nor harmful get weight
`eef_neutral_weight` (0, the paper's mask m=0 for "other expert acts"); the rest as in `rft`.

What differs here: the paper tunes an 8B-class model on GPT-4 trajectories of the real WebShop
(1.18M Amazon products); the CPU config tunes the bundled SmolLM2-135M on the synthetic catalog.

Run:  rlpost recipe run eef              (quick CPU config)
      rlpost recipe run eef --preset paper

Results (``python benchmarks/webshop_eef.py``, quick config, 2 seeds, 50 held-out test tasks,
greedy; score = mean reward x 100 / success rate): zero-shot 0.0 / 0.00; BC 59.5 / 0.18;
one RFT iteration 49.5 / 0.20; one EEF iteration 58.8 / 0.20 (seed spread 3.4). On the 29
test tasks the weak expert fails: BC 59.5, RFT 47.2, EEF 54.4. EEF kept one spliced episode
per seed (of ~30 explored expert failures); with --shared-exploration (RFT and EEF on the same
explored episodes) RFT 49.5 vs EEF 50.8, hard tasks 47.2 vs 53.2: identical where EEF kept
nothing (seed 0), +12 on hard tasks where it kept two episodes (seed 1). The first gap was
exploration noise; the iteration does not beat BC at this scale. ~25 min a seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from rlpost.collect.eef import explore_failures, state_indices
from rlpost.collect.episodes import Episode
from rlpost.errors import RlpostError
from rlpost.generate import Generator
from rlpost.recipes import rft
from rlpost.seeds import derive_seed

NAME = "eef"
RESUMABLE = rft.RESUMABLE


@dataclass
class Config(rft.Config):
    """Agent tuning on WebShop: behaviour cloning, then EEF iterations."""

    eef_states: int = 5
    """M: states of each failed expert episode the agent is simulated from."""
    eef_samples: int = 2
    """Agent simulations per state; a state is solvable when any of them succeeds."""
    eef_pick: Literal["earliest", "latest"] = "earliest"
    """The important state: the earliest (or latest) solved state after a beneficial action."""
    eef_neutral_weight: float = 0.0
    """Loss weight of expert actions that are neither beneficial nor harmful."""
    eef_harmful_weight: float = 0.0
    """Loss weight of harmful expert actions (0: masked, the paper's choice)."""

    def validate(self) -> None:
        super().validate()
        if self.eef_states < 1 or self.eef_samples < 1:
            raise RlpostError("eef_states and eef_samples must be >= 1")
        if self.eef_pick not in ("earliest", "latest"):
            raise RlpostError("eef_pick must be earliest or latest")
        if not (0 <= self.eef_neutral_weight <= 1 and 0 <= self.eef_harmful_weight <= 1):
            raise RlpostError("eef_neutral_weight and eef_harmful_weight must be in [0, 1]")


def quick() -> Config:
    """CPU config on the bundled 135M model (see benchmarks/webshop_eef.py for its numbers)."""
    cfg = rft.quick_config(Config)
    cfg.eef_states = 4
    return cfg


def smoke() -> Config:
    """A few tasks and steps, one page of history (prompts fit 1024 tokens): for tests."""
    cfg = rft.smoke_config(Config)
    cfg.eef_states, cfg.eef_samples = 2, 1
    return cfg


def paper() -> Config:
    """Paper-scale: an 8B instruct model with LoRA, all training tasks, 3 iterations, GPU."""
    return rft.paper_config(Config)


PRESETS = {"quick": quick, "smoke": smoke, "paper": paper}


def validate(cfg: Config) -> None:
    cfg.validate()


class EEF(rft.RFT):
    """RFT plus, each iteration, the simulation of the agent from states of the expert's
    failed episodes on tasks still unsolved; spliced episodes join the training data until
    exploration solves their task."""

    method = "eef"
    cfg: Config

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.eef_kept: dict[Any, Episode] = {}

    def explore_more(self, it: int) -> dict[str, float]:
        cfg = self.cfg
        failed = [e for e in self.expert if not e.success and e.task_id not in self.solved]
        results = explore_failures(self.runner, failed, cfg.eef_states, self.params,
                                   derive_seed(cfg.run.seed, "eef", it), cfg.eef_pick,
                                   cfg.eef_neutral_weight, cfg.eef_harmful_weight, cfg.eef_samples)
        for r in results:
            if r.episode is not None:
                self.eef_kept[r.episode.task_id] = r.episode
        rollouts = sum(len(state_indices(len(e.actions), cfg.eef_states)) for e in failed)
        return {"iter/eef_failed_explored": float(len(failed)),
                "iter/eef_rollouts": float(cfg.eef_samples * rollouts),
                "iter/eef_kept": float(sum(r.episode is not None for r in results))}

    def training_data(self) -> list[Episode]:
        """RFT's data plus the spliced episodes of tasks exploration has not solved."""
        return super().training_data() + [e for t, e in self.eef_kept.items()
                                          if t not in self.solved]

    def snapshot(self) -> dict[str, Any]:
        return super().snapshot() | {"eef_kept": dict(self.eef_kept)}

    def restore(self, snap: dict[str, Any]) -> None:
        super().restore(snap)
        self.eef_kept = dict(snap.get("eef_kept", {}))


def main(cfg: Config, name: str = NAME, generator: Generator | None = None,
         zero_shot: bool = True) -> dict[str, float]:
    """Zero-shot eval, expert episodes, BC, then `cfg.iterations` EEF iterations."""
    return rft.run_tuning(EEF, cfg, name, generator, zero_shot)
