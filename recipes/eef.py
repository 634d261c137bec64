"""EEF: Exploring Expert Failures improves LLM agent tuning (WebShop).

Paper: Lan et al. 2025, arXiv 2504.13145. Behaviour-clone the expert's successful episodes, then
iterate: (a) RFT exploration - the agent plays every training task from its start, successes
are kept (shortest per task); (b) EEF - for expert episodes that failed on tasks still unsolved,
the agent is simulated from M evenly spaced states of the expert episode; expert actions that
move the agent from a state it fails from to one it solves are beneficial (trained on), those
that move it from solvable to unsolvable are harmful (masked out of the loss); the expert prefix
up to the important state plus the agent's successful continuation is kept. Then SFT on the
expert successes and everything kept, loss on action tokens only. `rft` is the same without (b).

Choices where the paper is unclear (config fields): M = `eef_states` (5) states spaced
floor(k n / M); the important state is the earliest solved state after a beneficial action
(`eef_pick`); expert actions that are neither beneficial nor harmful get weight
`eef_neutral_weight` (0, the paper's mask m=0 for "other expert acts"); one kept episode per
task (the shortest success); each iteration continues from the current weights (`from_base`
retrains from the base model instead, RFT-style); the expert is the scripted weak expert
(`rlpost.envs.webshop.expert.WEAK_EXPERT`, ~36% of training tasks solved like the paper's GPT-4).

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

import copy
import json
from dataclasses import dataclass, field, replace
from typing import Literal

from rlpost.algos.sft import SFTConfig, train_sft
from rlpost.collect.eef import explore_failures, state_indices
from rlpost.collect.episodes import Episode, best_per_task, to_samples
from rlpost.collect.rft import Agent, evaluate, explore, play_expert
from rlpost.env import env_tasks, make
from rlpost.envs.webshop.env import WebShopConfig
from rlpost.envs.webshop.expert import WEAK_EXPERT, Expert, ExpertConfig
from rlpost.errors import RlpostError
from rlpost.generate import Generator
from rlpost.run import RunConfig, start_run

NAME = "eef"


@dataclass
class Config:
    """Agent tuning on WebShop: behaviour cloning, then RFT or EEF iterations."""

    run: RunConfig = field(default_factory=RunConfig)
    env: WebShopConfig = field(default_factory=WebShopConfig)
    max_turns: int = 10
    """Actions per episode (expert, exploration, evaluation) before it is truncated."""
    expert: ExpertConfig = field(default_factory=lambda: copy.deepcopy(WEAK_EXPERT))
    sft: SFTConfig = field(default_factory=lambda: SFTConfig(lr=1e-4, epochs=3, batch_size=8))
    """Behaviour cloning (and every iteration when from_base)."""
    iter_epochs: int = 1
    """Epochs over all kept data in each iteration (continuing from the current weights)."""
    method: Literal["eef", "rft"] = "eef"
    expert_tasks: int = 0
    """Training tasks the expert attempts and the agent explores (0 = all)."""
    iterations: int = 2
    explore_samples: int = 1
    """Sampled episodes per task and iteration in RFT exploration."""
    temperature: float = 1.0
    """Sampling temperature of exploration and EEF simulation."""
    max_tokens: int = 48
    """New tokens per action."""
    max_prompt_tokens: int | None = None
    """Longest prompt an episode plays on; None = run.vllm.max_model_len - max_tokens."""
    eef_states: int = 5
    """M: states of each failed expert episode the agent is simulated from."""
    eef_samples: int = 2
    """Agent simulations per state; a state is solvable when any of them succeeds."""
    eef_pick: Literal["earliest", "latest"] = "earliest"
    eef_neutral_weight: float = 0.0
    eef_harmful_weight: float = 0.0
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
                  (self.eef_states >= 1 and self.eef_samples >= 1,
                   "eef_states and eef_samples must be >= 1"),
                  (self.eval_tasks >= 1, "eval_tasks must be >= 1"),
                  (self.n_envs >= 1 and self.iter_epochs >= 1, "n_envs, iter_epochs must be >= 1"),
                  (self.max_turns >= 1, "max_turns must be >= 1"),
                  (self.method in ("eef", "rft"), "method must be eef or rft"),
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


def quick() -> Config:
    """CPU config on the bundled 135M model (see benchmarks/webshop_eef.py for its numbers)."""
    cfg = Config(expert_tasks=64, iterations=1, eval_tasks=50, eef_states=4,
                 max_prompt_tokens=3500)
    cfg.run.vllm.max_model_len = 4096
    cfg.sft.max_len = 4096
    return cfg


def smoke() -> Config:
    """A few tasks and steps, one page of history (prompts fit 1024 tokens): for tests."""
    cfg = Config(expert_tasks=6, iterations=1, eval_tasks=3, eef_states=2, eef_samples=1,
                 n_envs=8, max_tokens=24)
    cfg.env = WebShopConfig(max_history=1)
    cfg.max_turns = 5
    cfg.sft = SFTConfig(lr=1e-4, epochs=1, batch_size=4)
    cfg.run.vllm.max_model_len = 1024
    cfg.max_prompt_tokens = 1000
    cfg.run.track = ("jsonl",)
    return cfg


def paper() -> Config:
    """Paper-scale: an 8B instruct model with LoRA, all training tasks, 3 iterations, GPU."""
    cfg = Config(iterations=3, eval_tasks=500, eef_states=5, n_envs=256)
    cfg.run.model = "meta-llama/Meta-Llama-3-8B-Instruct"
    cfg.run.vllm.max_model_len = 8192
    cfg.run.vllm.kv_cache_gb = 0.0
    cfg.run.vllm.gpu_memory_utilization = 0.4
    cfg.env = WebShopConfig(n_test=500, n_val=100)
    cfg.max_turns = 15
    cfg.sft = SFTConfig(lr=2e-4, epochs=3, batch_size=32, lora=True, max_len=8192)
    cfg.max_prompt_tokens = 7000
    return cfg


PRESETS = {"quick": quick, "smoke": smoke, "paper": paper}


def validate(cfg: Config) -> None:
    cfg.validate()


class AgentTuning:
    """The stages of a run, so the benchmark can branch RFT and EEF from one BC model."""

    def __init__(self, cfg: Config, policy, generator: Generator, tracker=None):
        self.cfg, self.policy, self.generator, self.tracker = cfg, policy, generator, tracker
        self.env = make("rlpost/WebShop-v0", cfg.env, max_turns=cfg.max_turns)
        envs = [make("rlpost/WebShop-v0", cfg.env, max_turns=cfg.max_turns)
                for _ in range(cfg.n_envs)]
        self.agent = Agent(generator, policy.encode_chat, envs, cfg.max_tokens,
                           cfg.max_prompt_tokens)
        train = env_tasks(self.env, "train")
        self.train_tasks = train[: cfg.expert_tasks] if cfg.expert_tasks else train
        self.eval_tasks = env_tasks(self.env, "test")[: cfg.eval_tasks]
        self.expert: list[Episode] = []
        self.solved: dict[int, Episode] = {}
        self.eef_kept: dict[int, Episode] = {}
        self.sft_step = 0
        self.last_eval = None
        # the base weights are kept only when iterations retrain from them
        self.base = ({k: v.clone() for k, v in policy.model.state_dict().items()}
                     if cfg.from_base else None)

    def log(self, metrics: dict, step: int) -> None:
        if self.tracker is not None:
            self.tracker.log(metrics, step)

    def evaluate(self, stage: str) -> dict[str, float]:
        r = self.last_eval = evaluate(self.agent, self.eval_tasks, seed=self.cfg.run.seed)
        out = {f"{stage}/score": r.score, f"{stage}/success": r.success}
        self.log({"eval/score": r.score, "eval/success": r.success}, self.sft_step)
        print(f"rlpost: {stage}: score {r.score:.1f}, success {r.success:.3f}", flush=True)
        return out

    def collect_expert(self) -> dict[str, float]:
        self.expert = play_expert(self.env, Expert(self.cfg.expert), self.train_tasks)
        rate = sum(e.success for e in self.expert) / max(len(self.expert), 1)
        return {"expert/success": rate, "expert/episodes": float(len(self.expert))}

    def _train(self, data: list[Episode], sft: SFTConfig) -> None:
        result = train_sft(self.policy, to_samples(self.env, data, self.cfg.env.max_history is None),
                           sft, self.tracker, step_offset=self.sft_step)
        self.sft_step += result.steps
        self.generator.sync_weights(self.policy)

    def behaviour_clone(self) -> None:
        self._train([e for e in self.expert if e.success], self.cfg.sft)

    def explore(self, it: int) -> list[Episode]:
        """RFT exploration: sampled episodes of every training task from its start state."""
        cfg = self.cfg
        return explore(self.agent, self.train_tasks, cfg.explore_samples, cfg.temperature,
                       cfg.run.seed * 1000 + it)

    def iterate(self, method: str, it: int, found: list[Episode] | None = None) -> dict[str, float]:
        """One iteration; `found` = exploration episodes to reuse (else explored now)."""
        cfg = self.cfg
        seed = cfg.run.seed * 1000 + it
        found = self.explore(it) if found is None else found
        self.solved = {e.task_id: e for e in best_per_task(found + list(self.solved.values()))}
        stats = {"iter/explore_success": sum(e.success for e in found) / max(len(found), 1)}
        if method == "eef":
            failed = [e for e in self.expert if not e.success and e.task_id not in self.solved]
            results = explore_failures(self.agent, failed, cfg.eef_states, cfg.temperature,
                                       seed + 500, cfg.eef_pick, cfg.eef_neutral_weight,
                                       cfg.eef_harmful_weight, cfg.eef_samples)
            for r in results:
                if r.episode is not None:
                    self.eef_kept[r.episode.task_id] = r.episode
            stats["iter/eef_failed_explored"] = float(len(failed))
            stats["iter/eef_rollouts"] = float(cfg.eef_samples * sum(
                len(state_indices(len(e.actions), cfg.eef_states)) for e in failed))
            stats["iter/eef_kept"] = float(sum(r.episode is not None for r in results))
        data = [e for e in self.expert if e.success] + list(self.solved.values())
        data += [e for t, e in self.eef_kept.items() if t not in self.solved]
        stats["iter/episodes"] = float(len(data))
        if cfg.from_base:
            self.policy.model.load_state_dict(self.base)
            sft = cfg.sft
        else:
            sft = replace(cfg.sft, epochs=cfg.iter_epochs, seed=cfg.sft.seed + it + 1)
        self._train(data, sft)
        self.log(stats, self.sft_step)
        return stats

    def snapshot(self) -> dict:
        return {"weights": {k: v.clone() for k, v in self.policy.model.state_dict().items()},
                "solved": dict(self.solved), "eef_kept": dict(self.eef_kept), "step": self.sft_step}

    def restore(self, snap: dict) -> None:
        self.policy.model.load_state_dict(snap["weights"])
        self.generator.sync_weights(self.policy)
        self.solved, self.eef_kept = dict(snap["solved"]), dict(snap["eef_kept"])
        self.sft_step = snap["step"]


def main(cfg: Config, name: str = NAME, generator: Generator | None = None,
         zero_shot: bool = True) -> dict[str, float]:
    """Zero-shot eval, expert episodes, BC, then `cfg.iterations` of RFT or EEF; returns scores."""
    validate(cfg)
    results: dict[str, float] = {}
    with start_run(cfg.run, name, cfg, generator) as lifecycle:
        run = AgentTuning(cfg, lifecycle.policy, lifecycle.generator, lifecycle.tracker)
        if zero_shot:
            results |= run.evaluate("zero_shot")
        results |= run.collect_expert()
        run.behaviour_clone()
        results |= run.evaluate("bc")
        for it in range(cfg.iterations):
            results |= {f"{k}_{it + 1}": v for k, v in run.iterate(cfg.method, it).items()}
            results |= run.evaluate(f"{cfg.method}_{it + 1}")
        (lifecycle.dir / "results.json").write_text(json.dumps(results, indent=2))
        lifecycle.policy.save(lifecycle.dir / "model")
    return results

