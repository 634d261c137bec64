"""TL-Training: tool use by MAE-filtered, PKT-weighted SFT, then PPO with the IRM reward.

TL-Training: Ye et al., "TL-Training: A Task-Feature-Based Framework for Training Large
Language Models in Tool Use", arXiv 2412.15495 (Findings of EMNLP'25); reference code
Junjie-Ye/TL-Training (``code/mae/mae.py``, ``code/pkt/utils.py``,
``code/irm/dschat/rlhf/ppo_trainer.py``, ``code/irm/RL_run.sh``).

Pipeline on `rlpost/ToolUse-v0` (BFCL v4 data):

1. **Data**: each training entry becomes a dialogue with tool outputs
   (`rlpost.collect.mae.tool_dialogue`): with probability `fail_prob`, a first call with one
   realistic mistake and the error a Python tool returns, then the reference call and a
   synthetic successful output.
2. **SFT** (`sft_mode`): ``"pkt"`` (the paper): MAE splits each dialogue into one sample per
   assistant turn and drops the turns whose tool output is an error; PKT weights the key tokens
   of each call (`rlpost.algos.pkt`). ``"mae"``: MAE without PKT. ``"plain"``: the whole
   dialogue, every assistant turn imitated (the failing calls too): the baseline.
3. **PPO** (`rlpost.algos.ppo`) with the IRM reward (`rlpost.envs.tooluse.irm`: the error
   category of the answer: unparsable -2 ... exact +1), the critic initialised from the SFT
   model, generation greedy as in the paper (`algo.temperature` 0) or sampled.
4. Greedy evaluation on the held-out entries of `eval_categories` after each stage: BFCL AST
   accuracy (``eval/ast_acc``, per category ``eval/acc/<category>``) and the paper's three
   figures, tool selection / parameter identification / content filling (``eval/ts``,
   ``eval/pi``, ``eval/cf``), and the mean IRM reward (``eval/total``).

SFT metrics go to ``<run dir>/sft/metrics.jsonl``; the stage evals and PPO to the run's own
tracker (the SFT eval at step 0). The SFT model is saved in ``<run dir>/sft_model``: a run
killed during PPO resumes from its checkpoint with that model as the KL reference.

Results (``benchmarks/tooluse_tl.py``, quick config, bundled 135M model, seeds 0-2; 60
held-out entries): greedy AST accuracy zero-shot 0.000, plain SFT 0.322 (seed spread 0.033),
MAE + PKT SFT 0.306 (spread 0.067), then 8 PPO steps with IRM 0.311 (spread 0.067); TS / PI /
CF 0.54 / 0.44 / 0.32 after plain SFT, 0.49 / 0.41 / 0.31 after PPO. SFT learns the format;
neither MAE + PKT over plain SFT nor PPO over MAE + PKT moves accuracy by more than the spread:
the paper's effect is not reproduced at this scale (see the README for the evidence).

Run:  rlpost recipe run tl-training              (quick CPU config, bundled 135M model)
      rlpost recipe run tl-training --sft_mode plain --rl false
      rlpost recipe run tl-training --preset paper
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from rlpost.algos.ppo import PPOConfig, PPORun
from rlpost.algos.ppo import train as train_ppo
from rlpost.algos.sft import SFTConfig, SFTSample, train_sft
from rlpost.algos.pkt import pkt_sample
from rlpost.collect.mae import mae_dataset, plain_sample
from rlpost.checkpoint import checkpoint_step
from rlpost.envs.tooluse.dialogues import tool_dialogue
from rlpost.envs.tooluse.env import ToolUseConfig
from rlpost.envs.tooluse.irm import categorize, irm_reward_fn, selection_scores
from rlpost.errors import RlpostError
from rlpost.generate import Generator, GenParams
from rlpost.policy import Policy
from rlpost.recipes.itool import Task, tool_tasks
from rlpost.reward import Rubric
from rlpost.run import RunConfig, start_run
from rlpost.runner import Runner
from rlpost.seeds import derive_seed
from rlpost.track import Tracker

NAME = "tl-training"
ENV_ID = "rlpost/ToolUse-v0"
CALL_CATEGORIES = ("simple_python", "multiple", "parallel", "parallel_multiple")
EVAL_CATEGORIES = ("simple_python", "multiple", "parallel")
SFTMode = Literal["pkt", "mae", "plain"]


@dataclass
class Config:
    """Dialogue data, SFT (MAE + PKT, or a baseline), then PPO with the IRM reward."""

    run: RunConfig = field(default_factory=RunConfig)
    env: ToolUseConfig = field(default_factory=lambda: ToolUseConfig(
        categories=list(CALL_CATEGORIES)))
    eval_categories: list[str] = field(default_factory=lambda: list(EVAL_CATEGORIES))
    """Held-out categories of the evaluation (each must be in env.categories)."""
    fail_prob: float = 0.3
    """Share of training dialogues whose first call fails (MAE drops those turns)."""
    sft_mode: SFTMode = "pkt"
    """pkt: MAE + PKT (the paper); mae: MAE only; plain: every assistant turn (baseline)."""
    pkt_max_weight: float = 9.0
    """Cap of PKT's key-token weight (the reference's max_weight)."""
    sft: SFTConfig = field(default_factory=lambda: SFTConfig(lr=1e-4, epochs=1, batch_size=8))
    rl: bool = True
    """Run the PPO stage after SFT."""
    algo: PPOConfig = field(default_factory=lambda: PPOConfig(
        kl_coef=0.4, reward_clip=5.0, clip_eps=0.2, value_clip=0.2, gamma=1.0, lam=0.95,
        temperature=0.0, eval_tasks=0))
    """PPO; `eval_tasks` 0 leaves evaluation to the recipe's stage evals."""
    max_tokens: int = 128
    """New tokens of an eval answer."""
    max_prompt_tokens: int = 1536
    """Tasks with longer prompts are left out (they would not fit the engine's context)."""
    train_tasks: int = 0
    """Training tasks drawn (a fixed sample; 0 = all), before long prompts are left out."""
    eval_tasks: int = 0
    """Held-out tasks per eval category (0 = all that fit)."""
    n_envs: int = 64
    """Env instances rollouts and evaluation run over at once."""

    def validate(self) -> None:
        self.run.validate()
        self.env.validate()
        self.sft.validate()
        self.algo.validate()
        missing = sorted(set(self.eval_categories) - set(self.env.categories))
        longest = max(self.max_tokens, self.algo.max_tokens)
        checks = [(not missing, f"eval_categories not in env.categories: {', '.join(missing)}"),
                  (0 <= self.fail_prob <= 1, "fail_prob must be in [0, 1]"),
                  (self.sft_mode in ("pkt", "mae", "plain"), "sft_mode must be pkt, mae or plain"),
                  (self.pkt_max_weight >= 1, "pkt_max_weight must be >= 1"),
                  (self.max_tokens >= 1, "max_tokens must be >= 1"),
                  (1 <= self.max_prompt_tokens <= self.run.vllm.max_model_len - longest,
                   "max_prompt_tokens must be in [1, run.vllm.max_model_len - max_tokens]"),
                  (self.train_tasks >= 0 and self.eval_tasks >= 0,
                   "train_tasks and eval_tasks must be >= 0 (0 = all)"),
                  (self.n_envs >= self.algo.tasks_per_step * self.algo.samples_per_task,
                   "n_envs must hold one PPO rollout batch (algo.tasks_per_step x "
                   "algo.samples_per_task)")]
        for ok, msg in checks:
            if not ok:
                raise RlpostError(f"tl-training: {msg}")


def quick() -> Config:
    """CPU config on the bundled 135M model (numbers: benchmarks/tooluse_tl.py): the three
    call categories with prompts of at most 640 tokens (simple_python and parallel nearly all,
    multiple a third), 160 training entries, 20 held-out entries per category, SFT 1 epoch,
    8 PPO steps of 8 greedy episodes with a separate critic."""
    cfg = Config(train_tasks=160, eval_tasks=20, max_prompt_tokens=640, n_envs=60)
    cfg.env = ToolUseConfig(categories=list(EVAL_CATEGORIES))
    cfg.run.vllm.max_model_len = 1024
    cfg.sft = SFTConfig(lr=1e-4, epochs=1, batch_size=4, max_len=1024)
    cfg.algo = replace(cfg.algo, steps=8, tasks_per_step=8, actor_lr=5e-6, critic_lr=2e-5,
                       max_tokens=96, micro_batch_size=4, save_every=4)
    return cfg


def smoke() -> Config:
    """A few short-prompt tasks, two PPO steps: for tests."""
    cfg = Config(train_tasks=16, eval_tasks=1, n_envs=4, max_tokens=32, max_prompt_tokens=480,
                 fail_prob=0.5)
    cfg.env = ToolUseConfig(categories=["simple_python", "parallel"])
    cfg.eval_categories = ["simple_python", "parallel"]
    cfg.run.vllm.max_model_len = 1024
    cfg.run.track = ("jsonl",)
    cfg.sft = SFTConfig(lr=1e-4, epochs=1, batch_size=8, max_len=1024)
    cfg.algo = replace(cfg.algo, steps=2, tasks_per_step=2, actor_lr=1e-5, critic_lr=1e-4,
                       max_tokens=24, micro_batch_size=4, save_every=1)
    return cfg


def paper() -> Config:
    """The authors' settings (``RL_run.sh``, ``finetune.sh``, ``ppo_trainer.py``) on a GPU:
    PKT SFT lr 1e-6, 1 epoch, batch 1, cosine with warm-up; PPO actor lr 2e-7, critic lr 1e-7,
    KL 0.4, reward clip 5, clip 0.2 for policy and value, gamma 1, lambda 0.95, greedy answers of
    up to 512 tokens. Their model is CodeLlama-7B; any local or hub instruct model works."""
    cfg = Config()
    cfg.run.model = "codellama/CodeLlama-7b-Instruct-hf"
    cfg.run.vllm.max_model_len = 8192
    cfg.run.vllm.kv_cache_gb = 0.0
    cfg.run.vllm.gpu_memory_utilization = 0.3
    cfg.max_prompt_tokens = 7168
    cfg.max_tokens = 512
    cfg.sft = SFTConfig(lr=1e-6, epochs=1, batch_size=1, schedule="cosine", warmup_steps=10,
                        weight_decay=0.01, max_len=8192)
    cfg.algo = replace(cfg.algo, steps=200, tasks_per_step=8, actor_lr=2e-7, critic_lr=1e-7,
                       max_tokens=512, micro_batch_size=2, save_every=20)
    return cfg


PRESETS = {"quick": quick, "smoke": smoke, "paper": paper}


def validate(cfg: Config) -> None:
    cfg.validate()


# --- the stages ----------------------------------------------------------------------------


def sft_samples(tasks: list[Task], tokenizer: Any, mode: SFTMode, fail_prob: float, seed: int,
                max_weight: float = 9.0) -> tuple[list[SFTSample], dict[str, float]]:
    """The SFT data of `mode` from the dialogues of `tasks` (one per task, failures drawn with
    `seed`), and counts: dialogues, failing ones, samples, turns MAE dropped."""
    rng = random.Random(seed)
    dialogues = [tool_dialogue(t.record, t.messages, rng, fail_prob) for t in tasks]
    stats = {"data/dialogues": float(len(dialogues)),
             "data/failing": float(sum(sum(m.role == "assistant" for m in d) > 1
                                       for d in dialogues))}
    if mode == "plain":
        samples = [plain_sample(d) for d in dialogues]
        stats["data/dropped_turns"] = 0.0
    else:
        samples, counts = mae_dataset(dialogues)
        stats["data/dropped_turns"] = float(counts.dropped)
        if mode == "pkt":
            samples = [pkt_sample(s.messages, tokenizer, weights=s.weights,
                                  max_weight=max_weight) for s in samples]
    stats["data/samples"] = float(len(samples))
    return samples, stats


class TLTraining:
    """The stages over one runner: `evaluate(stage)`, `sft(run_dir)`, `ppo(...)`."""

    def __init__(self, cfg: Config, policy: Policy, generator: Generator,
                 tracker: Tracker | None = None):
        self.cfg, self.policy, self.generator, self.tracker = cfg, policy, generator, tracker
        self.runner = Runner.make(ENV_ID, cfg.env, cfg.n_envs, generator, policy.encode_chat,
                                  1, cfg.max_prompt_tokens)
        split = tool_tasks(self.runner.envs[0], policy.encode_chat, cfg, NAME)
        self.train, self.eval_ids, self.too_long = split.train, split.eval_ids, split.too_long
        self.rubric = Rubric([irm_reward_fn], [1.0], env_weight=0.0)
        generator.sync_weights(policy)  # an engine reused across runs holds other weights

    def evaluate(self, stage: str, step: int | None = None) -> dict[str, float]:
        """Greedy answers to the eval tasks: AST accuracy overall and per category, TS/PI/CF,
        mean IRM reward; logged at `step` when given. Returns them prefixed by `stage`."""
        params = GenParams(temperature=0.0, max_tokens=self.cfg.max_tokens)
        ev = self.runner.evaluate(self.eval_ids, params, derive_seed(self.cfg.run.seed, "eval"),
                                  self.rubric)
        by_cat: dict[str, list[float]] = {}
        for traj in ev.trajectories:
            by_cat.setdefault(traj.task["category"], []).append(float(traj.success))
        scores = selection_scores([categorize(t.completion_text, t.task)
                                   for t in ev.trajectories])
        metrics = {f"eval/acc/{c}": sum(v) / len(v) for c, v in sorted(by_cat.items())}
        metrics |= {f"eval/{k.lower()}": v for k, v in scores.items()}
        metrics |= {"eval/ast_acc": ev.metrics["eval/success"],
                    "eval/irm": ev.metrics["eval/total"]}
        if self.tracker is not None and step is not None:
            self.tracker.log(ev.metrics | metrics, step)
        print(f"rlpost: tl-training {stage}: AST accuracy {metrics['eval/ast_acc']:.3f} "
              f"TS {metrics['eval/ts']:.2f} PI {metrics['eval/pi']:.2f} "
              f"CF {metrics['eval/cf']:.2f} IRM {metrics['eval/irm']:+.2f}", flush=True)
        return {f"{stage}/{k.removeprefix('eval/')}": v for k, v in metrics.items()}

    def sft(self, log_dir: Path | None) -> dict[str, float]:
        """SFT of `cfg.sft_mode` on the training dialogues; metrics in `log_dir` (jsonl)."""
        samples, stats = sft_samples(self.train, self.policy.tokenizer, self.cfg.sft_mode,
                                     self.cfg.fail_prob, derive_seed(self.cfg.run.seed, "data"),
                                     self.cfg.pkt_max_weight)
        sft_cfg = replace(self.cfg.sft, seed=derive_seed(self.cfg.sft.seed, self.cfg.run.seed))
        if log_dir is None:
            result = train_sft(self.policy, samples, sft_cfg)
        else:
            with Tracker(log_dir, backends=("jsonl",)) as tracker:
                result = train_sft(self.policy, samples, sft_cfg, tracker)
        self.generator.sync_weights(self.policy)
        return stats | {"data/sft_steps": float(result.steps)}

    def ppo(self, run_dir: Path, stop_after: int | None = None) -> None:
        """PPO with the IRM reward on the training tasks (resumes from run_dir's checkpoint)."""
        run = PPORun(policy=self.policy, runner=self.runner, rubric=self.rubric,
                     train_tasks=[t.task_id for t in self.train], eval_tasks=self.eval_ids,
                     tracker=self.tracker, run_dir=run_dir, seed=self.cfg.run.seed)
        train_ppo(self.cfg.algo, run, stop_after=stop_after)


def _load_weights(policy: Policy, folder: Path) -> None:
    from safetensors.torch import load_file

    try:
        weights = load_file(folder / "model.safetensors")
    except Exception as e:  # noqa: BLE001 - unreadable means corrupt
        raise RlpostError(f"{folder} holds no readable SFT model ({type(e).__name__}); move "
                          "the run directory away to start over") from e
    policy.model.load_state_dict(weights, strict=False)


def main(cfg: Config, generator: Generator | None = None,
         stop_after: int | None = None) -> dict[str, float]:
    """Zero-shot eval, SFT, eval, then (with `cfg.rl`) PPO with IRM and a final eval; writes
    results.json (after every stage) and the model. A run directory holding a finished SFT
    stage continues with PPO (from its checkpoint when there is one). `stop_after`: stop PPO
    after that many steps (simulates a kill)."""
    cfg.validate()
    with start_run(cfg.run, NAME, cfg, generator) as run:
        results_path, sft_dir = run.dir / "results.json", run.dir / "sft_model"
        results: dict[str, float] = {}
        if results_path.exists():
            results = json.loads(results_path.read_text())
        tl = TLTraining(cfg, run.policy, run.generator, run.tracker)
        if (sft_dir / "model.safetensors").exists() and "sft/ast_acc" in results:
            _load_weights(run.policy, sft_dir)
            run.generator.sync_weights(run.policy)
            print(f"rlpost: tl-training: SFT done in {sft_dir}; continuing with PPO")
        else:
            results = {"tasks/train": float(len(tl.train)), "tasks/eval": float(len(tl.eval_ids)),
                       "tasks/too_long": float(tl.too_long)}
            results |= tl.evaluate("zero_shot")
            results |= tl.sft(run.dir / "sft")
            results |= tl.evaluate("sft", step=0)
            run.policy.save(sft_dir)
            results_path.write_text(json.dumps(results, indent=2))
        if cfg.rl:
            tl.ppo(run.dir, stop_after)
            if checkpoint_step(run.dir) != cfg.algo.steps:
                return results  # stopped early (stop_after)
            results |= tl.evaluate("ppo", step=cfg.algo.steps)
            results_path.write_text(json.dumps(results, indent=2))
        run.policy.save(run.dir / "model")
    return results
