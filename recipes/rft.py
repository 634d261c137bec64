"""RFT: rejection-sampling fine-tuning of a WebShop agent (the baseline EEF improves on).

RFT: Yuan et al. 2023, arXiv 2308.01825; as an agent-tuning baseline in EEF (arXiv 2504.13145).

Behaviour-clone the expert's successful episodes, then iterate: the agent explores every
training task from its start state, successful episodes are kept (shortest per task), and the
policy is fine-tuned on the expert successes plus everything kept. The loop is the `RFT` class;
the `eef` recipe extends it with the exploration of expert failures.

Choices (config fields): each iteration continues from the current weights for `iter_epochs`
(`from_base` retrains from the base model on all kept data, the original RFT); one kept episode
per task (the shortest success); the expert is the scripted weak expert
(`rlpost.envs.webshop.expert.WEAK_EXPERT`, ~36% of training tasks solved like the paper's GPT-4).

Not yet resumable: the loop writes no checkpoint between stages; a run directory that holds a
run is refused.

Run:  rlpost recipe run rft              (quick CPU config)
      rlpost recipe run rft --preset paper

Results: see the `eef` recipe (``benchmarks/webshop_eef.py`` runs both from one BC model).
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from rlpost.algos.sft import SFTConfig, train_sft
from rlpost.collect.episodes import Episode, best_per_task, to_samples
from rlpost.collect.rft import explore, play_expert
from rlpost.env import env_tasks
from rlpost.envs.webshop.env import WebShopConfig
from rlpost.envs.webshop.expert import WEAK_EXPERT, Expert, ExpertConfig
from rlpost.errors import RlpostError
from rlpost.generate import Generator, GenParams
from rlpost.policy import Policy
from rlpost.run import RunConfig, start_run
from rlpost.runner import Evaluation, Runner
from rlpost.seeds import derive_seed
from rlpost.track import Tracker

NAME = "rft"
ENV_ID = "rlpost/WebShop-v0"
RESUMABLE = False
"""The agent-tuning loop writes no checkpoint yet: a run that stops starts over."""


@dataclass
class Config:
    """Agent tuning on WebShop: behaviour cloning, then RFT iterations."""

    run: RunConfig = field(default_factory=RunConfig)
    env: WebShopConfig = field(default_factory=WebShopConfig)
    max_turns: int = 10
    """Actions per episode (expert, exploration, evaluation) before it is truncated."""
    expert: ExpertConfig = field(default_factory=lambda: copy.deepcopy(WEAK_EXPERT))
    sft: SFTConfig = field(default_factory=lambda: SFTConfig(lr=1e-4, epochs=3, batch_size=8))
    """Behaviour cloning (and every iteration when from_base)."""
    iter_epochs: int = 1
    """Epochs over all kept data in each iteration (continuing from the current weights)."""
    expert_tasks: int = 0
    """Training tasks the expert attempts and the agent explores (0 = all)."""
    iterations: int = 2
    """Explore-and-fine-tune iterations after behaviour cloning."""
    explore_samples: int = 1
    """Sampled episodes per task and iteration in exploration."""
    temperature: float = 1.0
    """Sampling temperature of exploration (and of EEF's simulations)."""
    max_tokens: int = 48
    """New tokens per action."""
    max_prompt_tokens: int | None = None
    """Longest prompt an episode plays on; None = run.vllm.max_model_len - max_tokens."""
    from_base: bool = False
    """Retrain from the base model on all kept data each iteration (instead of continuing)."""
    eval_tasks: int = 100
    """Held-out test tasks in each greedy eval."""
    n_envs: int = 64
    """Env instances rollouts run over at once."""

    def validate(self) -> None:
        self.run.validate()
        self.env.validate()
        self.sft.validate()
        checks = [(self.iterations >= 0, "iterations must be >= 0"),
                  (self.explore_samples >= 1, "explore_samples must be >= 1"),
                  (self.eval_tasks >= 1, "eval_tasks must be >= 1"),
                  (self.n_envs >= self.explore_samples,
                   "n_envs must hold one task's explore_samples episodes"),
                  (self.iter_epochs >= 1, "iter_epochs must be >= 1"),
                  (self.max_turns >= 1, "max_turns must be >= 1"),
                  (self.expert_tasks >= 0, "expert_tasks must be >= 0 (0 = all)"),
                  (0 <= self.temperature < math.inf, "temperature must be finite and >= 0"),
                  (self.max_tokens >= 1, "max_tokens must be >= 1"),
                  (self.max_prompt_tokens is None
                   or 1 <= self.max_prompt_tokens <= self.run.vllm.max_model_len - self.max_tokens,
                   "max_prompt_tokens must be None or in [1, run.vllm.max_model_len - max_tokens]"),
                  (self.max_tokens < self.run.vllm.max_model_len,
                   "max_tokens leaves no room for a prompt in run.vllm.max_model_len"),
                  # an episode is at most one context long: SFT must take it whole, or the
                  # decisive last actions get no loss
                  (self.sft.max_len >= self.run.vllm.max_model_len,
                   f"sft.max_len ({self.sft.max_len}) is shorter than run.vllm.max_model_len "
                   f"({self.run.vllm.max_model_len}): the end of long episodes would get no "
                   "loss; raise sft.max_len or lower the engine's context")]
        for ok, msg in checks:
            if not ok:
                raise RlpostError(msg)


C = TypeVar("C", bound=Config)


def quick_config(cls: type[C]) -> C:
    cfg = cls(expert_tasks=64, iterations=1, eval_tasks=50, max_prompt_tokens=3500)
    cfg.run.vllm.max_model_len = 4096
    cfg.sft.max_len = 4096
    return cfg


def smoke_config(cls: type[C]) -> C:
    cfg = cls(expert_tasks=6, iterations=1, eval_tasks=3, n_envs=8, max_tokens=24)
    cfg.env = WebShopConfig(max_history=1)
    cfg.max_turns = 5
    cfg.sft = SFTConfig(lr=1e-4, epochs=1, batch_size=4)
    cfg.run.vllm.max_model_len = 1024
    cfg.max_prompt_tokens = 1000
    cfg.run.track = ("jsonl",)
    return cfg


def paper_config(cls: type[C]) -> C:
    cfg = cls(iterations=3, eval_tasks=500, n_envs=256)
    cfg.run.model = "meta-llama/Meta-Llama-3-8B-Instruct"
    cfg.run.vllm.max_model_len = 8192
    cfg.run.vllm.kv_cache_gb = 0.0
    cfg.run.vllm.gpu_memory_utilization = 0.4
    cfg.env = WebShopConfig(n_test=500, n_val=100)
    cfg.max_turns = 15
    cfg.sft = SFTConfig(lr=2e-4, epochs=3, batch_size=32, lora=True, max_len=8192)
    cfg.max_prompt_tokens = 7000
    return cfg


def quick() -> Config:
    """CPU config on the bundled 135M model (see benchmarks/webshop_eef.py for its numbers)."""
    return quick_config(Config)


def smoke() -> Config:
    """A few tasks and steps, one page of history (prompts fit 1024 tokens): for tests."""
    return smoke_config(Config)


def paper() -> Config:
    """Paper-scale: an 8B instruct model with LoRA, all training tasks, 3 iterations, GPU."""
    return paper_config(Config)


PRESETS = {"quick": quick, "smoke": smoke, "paper": paper}


def validate(cfg: Config) -> None:
    cfg.validate()


class RFT:
    """The agent-tuning loop: evaluate, collect the expert, behaviour-clone, iterate.

    `iterate` explores, keeps the shortest success per task, adds what `explore_more` finds
    (nothing here; EEF's simulations from expert failures in the subclass) and fine-tunes on
    `training_data()`. The stages are methods so the benchmark can branch RFT and EEF from one
    BC model (`snapshot` / `restore`). `runner`: an existing pool to share (else one is made).
    """

    method = "rft"

    def __init__(self, cfg: Config, policy: Policy, generator: Generator,
                 tracker: Tracker | None = None, runner: Runner | None = None):
        self.cfg, self.policy, self.generator, self.tracker = cfg, policy, generator, tracker
        self.runner = runner or Runner.make(ENV_ID, cfg.env, cfg.n_envs, generator,
                                            policy.encode_chat, cfg.max_turns,
                                            cfg.max_prompt_tokens)
        self.env = self.runner.envs[0]  # expert play and SFT replays use one of the pool
        self.params = GenParams(temperature=cfg.temperature, max_tokens=cfg.max_tokens,
                                stop=["\n"])
        train = env_tasks(self.env, "train")
        self.train_tasks = train[: cfg.expert_tasks] if cfg.expert_tasks else train
        self.eval_tasks = env_tasks(self.env, "test")[: cfg.eval_tasks]
        self.expert: list[Episode] = []
        self.solved: dict[Any, Episode] = {}
        self.sft_step = 0
        self.last_eval: Evaluation | None = None
        # the base weights are kept only when iterations retrain from them
        self.base = ({k: v.clone() for k, v in policy.model.state_dict().items()}
                     if cfg.from_base else None)

    def log(self, metrics: dict[str, float], step: int) -> None:
        if self.tracker is not None:
            self.tracker.log(metrics, step)

    def evaluate(self, stage: str) -> dict[str, float]:
        """Greedy episodes on the eval tasks; logs eval/* and returns {stage}/score, /success."""
        ev = self.last_eval = self.runner.evaluate(self.eval_tasks, self.params,
                                                   derive_seed(self.cfg.run.seed, "eval"))
        score, success = ev.metrics["eval/score"], ev.metrics["eval/success"]
        self.log(ev.metrics, self.sft_step)
        print(f"rlpost: {stage}: score {score:.1f}, success {success:.3f}", flush=True)
        return {f"{stage}/score": score, f"{stage}/success": success}

    def collect_expert(self) -> dict[str, float]:
        self.expert = play_expert(self.env, Expert(self.cfg.expert), self.train_tasks)
        rate = sum(e.success for e in self.expert) / max(len(self.expert), 1)
        return {"expert/success": rate, "expert/episodes": float(len(self.expert))}

    def _train(self, data: list[Episode], sft: SFTConfig) -> None:
        samples = to_samples(self.env, data, self.cfg.env.max_history is None)
        result = train_sft(self.policy, samples, sft, self.tracker, step_offset=self.sft_step)
        self.sft_step += result.steps
        self.generator.sync_weights(self.policy)

    def behaviour_clone(self) -> None:
        self._train([e for e in self.expert if e.success], self.cfg.sft)

    def explore(self, it: int) -> list[Episode]:
        """Sampled episodes of every training task from its start state."""
        return explore(self.runner, self.train_tasks, self.cfg.explore_samples, self.params,
                       derive_seed(self.cfg.run.seed, "explore", it))

    def explore_more(self, it: int) -> dict[str, float]:
        """More exploration after the start-state one (none in RFT); returns its stats."""
        return {}

    def training_data(self) -> list[Episode]:
        """The expert's successes and the shortest success kept per task."""
        return [e for e in self.expert if e.success] + list(self.solved.values())

    def iterate(self, it: int, found: list[Episode] | None = None) -> dict[str, float]:
        """Iteration `it` (from 0); `found` = exploration episodes to reuse (else explored
        now). Returns its stats (iter/explore_success, iter/episodes, and `explore_more`'s)."""
        cfg = self.cfg
        found = self.explore(it) if found is None else found
        self.solved = {e.task_id: e for e in best_per_task(found + list(self.solved.values()))}
        stats = {"iter/explore_success": sum(e.success for e in found) / max(len(found), 1)}
        stats |= self.explore_more(it)
        data = self.training_data()
        stats["iter/episodes"] = float(len(data))
        if cfg.from_base:
            self.policy.model.load_state_dict(self.base)
            sft = cfg.sft
        else:
            sft = replace(cfg.sft, epochs=cfg.iter_epochs,
                          seed=derive_seed(cfg.sft.seed, "iteration", it))
        self._train(data, sft)
        self.log(stats, self.sft_step)
        return stats

    def snapshot(self) -> dict[str, Any]:
        return {"weights": {k: v.clone() for k, v in self.policy.model.state_dict().items()},
                "expert": list(self.expert), "solved": dict(self.solved), "step": self.sft_step}

    def restore(self, snap: dict[str, Any]) -> None:
        self.policy.model.load_state_dict(snap["weights"])
        self.generator.sync_weights(self.policy)
        self.expert, self.solved = list(snap["expert"]), dict(snap["solved"])
        self.sft_step = snap["step"]


def run_tuning(tuning: type[RFT], cfg: Config, name: str, generator: Generator | None,
               zero_shot: bool) -> dict[str, float]:
    """A whole run of `tuning` (RFT or a subclass): zero-shot eval, expert episodes, BC, then
    `cfg.iterations` iterations, each followed by an eval; writes results.json and the model."""
    cfg.validate()
    if cfg.run.dir and (Path(cfg.run.dir) / "metrics.jsonl").exists():
        raise RlpostError(f"{cfg.run.dir} already holds a run, and {name} runs do not resume "
                          "yet (no checkpoint between stages): choose another --run.dir")
    results: dict[str, float] = {}
    with start_run(cfg.run, name, cfg, generator) as lifecycle:
        run = tuning(cfg, lifecycle.policy, lifecycle.generator, lifecycle.tracker)
        if zero_shot:
            results |= run.evaluate("zero_shot")
        results |= run.collect_expert()
        run.behaviour_clone()
        results |= run.evaluate("bc")
        for it in range(cfg.iterations):
            results |= {f"{k}_{it + 1}": v for k, v in run.iterate(it).items()}
            results |= run.evaluate(f"{run.method}_{it + 1}")
        (lifecycle.dir / "results.json").write_text(json.dumps(results, indent=2))
        lifecycle.policy.save(lifecycle.dir / "model")
    return results


def main(cfg: Config, name: str = NAME, generator: Generator | None = None,
         zero_shot: bool = True) -> dict[str, float]:
    """Zero-shot eval, expert episodes, BC, then `cfg.iterations` RFT iterations."""
    return run_tuning(RFT, cfg, name, generator, zero_shot)
