"""GRPO: group-relative advantages and a clipped policy-gradient update, with env rollouts.

Math (pure functions in `advantages.py` and `losses.py`, shapes in their docstrings):
- advantage A_i = (r_i - mean_g r) / (std_g r + eps) over the G samples of a task; with
  ``scale_rewards=False`` (Dr.GRPO) A_i = r_i - mean_g r. Multi-turn: every step of a trajectory
  shares its trajectory's advantage (task-level), plus, with ``advantage="gigpo"``, GiGPO's
  step-level advantage over the steps of the group that act from the same anchor state.
- per-token loss  l_t = -min(rho_t A, clip(rho_t, 1 - eps_low, 1 + eps_high) A) + beta * KL_t,
  rho_t = exp(logp_t - logp_old_t), KL_t = exp(ref_t - logp_t) - (ref_t - logp_t) - 1 (k3).
- aggregation: "seq-mean-token-mean" (GRPO), "token-mean" (DAPO), "seq-mean-token-sum-norm"
  (Dr.GRPO: token sum / max_tokens).

With the shipped presets (epochs = minibatches = 1) the update is on-policy: the ratio is 1 and
clipping never engages, so the step is REINFORCE with a group baseline (plus k3 KL), as
nanochat's chat_rl says of its own "GRPO". Clipping matters with epochs or minibatches > 1, and
with the truncated importance-sampling correction of the generator/trainer mismatch (`tis`).
"""

from __future__ import annotations

import math
import time
import typing
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from rlpost import learn
from rlpost.algos.advantages import assign_advantages
from rlpost.algos.batch import Row, micro_batches, rows_from_trajectories, step_metrics
from rlpost.algos.losses import (LOSS_AGGS, TIS_MODES, LossAgg, TISMode, aggregate,
                                 clipped_token_loss, kl_k3, tis_weights)
from rlpost.checkpoint import TaskSampler, load_checkpoint, save_checkpoint
from rlpost.errors import RlpostError
from rlpost.generate import GenParams
from rlpost.policy import Policy, rows_logprobs
from rlpost.reward import Rubric
from rlpost.runner import Runner
from rlpost.seeds import derive_seed
from rlpost.track import Progress, Tracker

Estimator = Literal["grpo", "gigpo"]


@dataclass
class GRPOConfig:
    """GRPO hyper-parameters."""

    steps: int = 40
    """Optimizer steps (each: one rollout batch, then the update)."""
    tasks_per_step: int = 8
    """Distinct tasks per rollout batch."""
    group_size: int = 8
    """G: samples per task."""
    lr: float = 1e-6
    """AdamW learning rate (after warm-up)."""
    warmup_steps: int = 0
    """Linear LR warm-up steps."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    max_grad_norm: float = 1.0
    """Gradient clipping (global L2 norm)."""
    beta: float = 0.0
    """KL (k3) coefficient to the frozen initial policy; 0 builds no reference model."""
    clip_eps_low: float = 0.2
    """Ratio clip below: 1 - eps_low."""
    clip_eps_high: float = 0.2
    """Ratio clip above: 1 + eps_high (DAPO raises it, e.g. 0.28)."""
    dual_clip: float | None = 3.0
    """Dual clip c: a negative-advantage token's loss is at most c * |A| (verl's clip_ratio_c);
    None = off."""
    tis: TISMode | None = None
    """Truncated importance-sampling correction of the generator/trainer mismatch (TRL's
    vllm_importance_sampling_mode): token_truncate, token_mask, sequence_truncate, sequence_mask;
    None = off."""
    tis_cap: float = 3.0
    """Upper bound of the importance weights (truncated at, or masked above, this value)."""
    advantage: Estimator = "grpo"
    """grpo: the trajectory's group advantage on every step; gigpo: plus the step-level term."""
    gigpo_gamma: float = 0.95
    """GiGPO: discount of the step returns (verl-agent's default)."""
    gigpo_step_weight: float = 1.0
    """GiGPO: omega, the weight of the step-level advantage (verl-agent's default)."""
    scale_rewards: bool = True
    """Divide advantages by the group std (False = Dr.GRPO)."""
    adv_eps: float = 1e-4
    """Added to the group std before dividing (CLS-RL uses 1e-4)."""
    loss_agg: LossAgg = "seq-mean-token-mean"
    """seq-mean-token-mean (GRPO), token-mean (DAPO), seq-mean-token-sum-norm (Dr.GRPO)."""
    epochs: int = 1
    """Passes over each rollout batch."""
    minibatches: int = 1
    """Optimizer steps per pass; >1 makes later minibatches off-policy (ratios != 1)."""
    pack_turns: bool = True
    """Train a multi-turn trajectory whose chat is append-only as one sequence (each token
    computed once; same gradient as one row per step); per-step rows otherwise."""
    micro_batch_size: int = 16
    """Rows per forward/backward (gradient accumulation inside a minibatch)."""
    temperature: float = 1.0
    """Sampling temperature of rollouts (logprobs are trained at the same temperature)."""
    top_p: float = 1.0
    """Nucleus sampling of rollouts."""
    max_tokens: int = 64
    """Max new tokens per turn."""
    eval_every: int = 10
    """Greedy eval on held-out tasks every k steps (and before the first and after the last)."""
    eval_tasks: int = 64
    """Held-out tasks in each greedy eval (0 = no eval)."""
    save_every: int = 10
    """Checkpoint every k steps (and at the end)."""
    samples_per_step: int = 2
    """Trajectories logged as samples per step."""

    def validate(self) -> None:
        """Raise RlpostError on settings no run can use."""
        checks = [(self.steps >= 1, "steps must be >= 1"),
                  (self.tasks_per_step >= 1, "tasks_per_step must be >= 1"),
                  (self.group_size >= 2, "group_size must be >= 2 (advantages are group-relative)"),
                  (0 < self.lr < math.inf, "lr must be finite and > 0"),
                  (self.beta >= 0, "beta must be >= 0"),
                  (self.epochs >= 1 and self.minibatches >= 1, "epochs and minibatches must be >= 1"),
                  (self.micro_batch_size >= 1, "micro_batch_size must be >= 1"),
                  (self.max_tokens >= 1, "max_tokens must be >= 1"),
                  (0 <= self.temperature < math.inf, "temperature must be finite and >= 0"),
                  (0 < self.top_p <= 1, "top_p must be in (0, 1]"),
                  (self.eval_every >= 1 and self.save_every >= 1, "eval_every and save_every must be >= 1"),
                  (self.loss_agg in LOSS_AGGS, f"loss_agg must be one of {', '.join(LOSS_AGGS)}"),
                  (self.dual_clip is None or self.dual_clip > 1, "dual_clip must be > 1 or None"),
                  (self.tis is None or self.tis in TIS_MODES,
                   f"tis must be one of {', '.join(TIS_MODES)} or None"),
                  (self.tis_cap > 0, "tis_cap must be > 0"),
                  (self.advantage in typing.get_args(Estimator), "advantage must be grpo or gigpo"),
                  (0 <= self.gigpo_gamma <= 1, "gigpo_gamma must be in [0, 1]")]
        for ok, message in checks:
            if not ok:
                raise RlpostError(f"algo: {message}")


# --- the loop ----------------------------------------------------------------------------


@dataclass
class GRPORun:
    """Everything `train` needs, built by the recipe."""

    policy: Policy
    runner: Runner
    """Plays rollouts and evals; its pool holds at least tasks_per_step * group_size envs
    (evals run in chunks of the pool)."""
    rubric: Rubric
    train_tasks: Sequence[Any]
    eval_tasks: Sequence[Any]
    tracker: Tracker
    run_dir: Path
    seed: int = 0


def train(cfg: GRPOConfig, run: GRPORun, stop_after: int | None = None) -> dict[str, float]:
    """Run GRPO; resumes from `run.run_dir/checkpoint` when present. Returns the last eval.

    stop_after: end (without a final checkpoint) after this many steps of this call; used to
    simulate an interrupted run in tests.
    """
    cfg.validate()
    policy = run.policy
    opt, sched = learn.make_optimizer(policy.trainable_parameters(), cfg.lr, cfg.weight_decay,
                                      cfg.warmup_steps)
    sampler = TaskSampler(run.train_tasks, seed=run.seed)
    ref = policy.reference() if cfg.beta > 0 else None  # the initial policy, also on resume
    start = load_checkpoint(run.run_dir, policy, opt, sched, sampler)
    # the generator may hold other weights (a resumed run's engine, one shared across runs):
    # it samples from this policy from the first rollout on
    generator = run.runner.generator
    n_envs = len(run.runner.envs)
    if n_envs < cfg.tasks_per_step * cfg.group_size:
        raise RlpostError(f"grpo: a rollout batch of {cfg.tasks_per_step} tasks x "
                          f"{cfg.group_size} needs as many envs; the runner has {n_envs}")
    generator.sync_weights(policy)
    gen = GenParams(cfg.temperature, cfg.top_p, cfg.max_tokens)
    evaluate = make_eval(cfg, run)
    last_eval: dict[str, float] = {}
    if start == 0:
        last_eval = evaluate()
        run.tracker.log(last_eval, 0)
    progress = Progress(cfg.steps, initial=start, desc="grpo")

    for step in range(start + 1, cfg.steps + 1):
        t0 = time.perf_counter()
        tasks = sampler.sample(cfg.tasks_per_step)
        trajs = run.runner.play(tasks, gen, derive_seed(run.seed, "rollout", step),
                                cfg.group_size)
        t1 = time.perf_counter()
        run.rubric(trajs)
        assign_advantages(trajs, cfg.advantage, cfg.scale_rewards, cfg.adv_eps,
                          cfg.gigpo_gamma, cfg.gigpo_step_weight)
        rows = rows_from_trajectories(trajs, cfg.pack_turns)
        lr = sched.get_last_lr()[0]  # the rate this step's update uses
        loss_stats = update(cfg, policy, ref, opt, rows, derive_seed(run.seed, "minibatches", step))
        sched.step()
        t2 = time.perf_counter()
        generator.sync_weights(policy)
        t3 = time.perf_counter()

        metrics = step_metrics(trajs)
        metrics.update(loss_stats)
        metrics.update({"perf/rollout_s": t1 - t0, "perf/update_s": t2 - t1,
                        "perf/sync_s": t3 - t2, "perf/step_s": t3 - t0,
                        "perf/rollout_tokens_per_s": metrics["rollout/tokens"] / (t1 - t0),
                        "lr": lr})
        if step % cfg.eval_every == 0 or step == cfg.steps:
            last_eval = evaluate()
            metrics.update(last_eval)
        run.tracker.log(metrics, step)
        run.tracker.log_samples(trajectory_samples(policy, trajs[: cfg.samples_per_step]), step)
        progress.update(metrics)
        if step % cfg.save_every == 0 or step == cfg.steps:
            save_checkpoint(run.run_dir, step, policy, opt, sched, sampler)
        if stop_after is not None and step - start >= stop_after:
            break
    progress.close()
    return last_eval


def update(cfg: GRPOConfig, policy: Policy, ref: torch.nn.Module | None,
           opt: torch.optim.Optimizer, rows: list[Row], seed: int = 0) -> dict[str, float]:
    """The policy update of one GRPO step: `cfg.epochs` x `cfg.minibatches` optimizer steps of the
    clipped policy-gradient loss (plus beta * k3 KL to `ref`) over the rollout `rows` (per-step
    or packed: see `batch.py`; both give the same loss and gradient).

    Each row's `old_logp` (the behaviour policy's logprobs of its action tokens, [A_i]) is kept
    when the caller set it; otherwise it is the current policy's, computed before the first
    optimizer step when the update is off-policy (epochs or minibatches > 1) and equal to the
    detached current logprobs when it is not (ratio 1). `ref_logp` is computed from `ref`.
    `seed` seeds the minibatch order (the update's own generator; the global RNG is untouched).
    Gradients of a minibatch are accumulated over micro-batches of `cfg.micro_batch_size` rows
    with the minibatch's normalisers, so the step does not depend on the micro-batch size.
    With `cfg.tis` the policy term of each token is weighted by the truncated importance
    weight of the behaviour (trainer) over the sampling (generator) logprobs.
    A minibatch whose loss or gradient norm is not finite makes no optimizer step (counted).
    Returns the means over optimizer steps of loss/policy, loss/kl, loss/clip_frac (share of
    action tokens whose ratio was clipped), loss/grad_norm (before clipping), loss/tis_weight;
    loss/skipped_steps (count); and rollout/logprob_gap and rollout/logprob_gap_max: mean and max
    |trainer - generator| logprob of the sampled tokens (nats; rows with sampling logprobs;
    top_p < 1 widens it: the generator's are of the truncated distribution).
    """
    model, pad = policy.model, policy.tokenizer.pad_token_id
    model.train()
    off_policy = cfg.epochs > 1 or cfg.minibatches > 1
    if off_policy or ref is not None:
        with torch.no_grad(), policy.autocast_ctx():
            for mb in micro_batches(rows, cfg.micro_batch_size):
                pairs = [(r.prompt_ids, r.action_ids) for r in mb]
                masks = [r.loss_mask for r in mb]
                if off_policy and any(r.old_logp is None for r in mb):
                    lp, _ = rows_logprobs(model, pairs, pad, policy.device, cfg.temperature,
                                          masks)
                    for r, x in zip(mb, lp):
                        if r.old_logp is None:
                            r.old_logp = x[: len(r.action_ids)].detach()
                if ref is not None:
                    lp, _ = rows_logprobs(ref, pairs, pad, policy.device, cfg.temperature, masks)
                    for r, x in zip(mb, lp):
                        r.ref_logp = x[: len(r.action_ids)].detach()
    stats: dict[str, list[float]] = defaultdict(list)
    perm_gen = torch.Generator().manual_seed(seed)
    for _ in range(cfg.epochs):
        order = torch.randperm(len(rows), generator=perm_gen).tolist()
        size = -(-len(rows) // cfg.minibatches)
        for k in range(cfg.minibatches):
            minibatch = [rows[i] for i in order[k * size : (k + 1) * size]]
            if not minibatch:
                continue
            _minibatch_step(cfg, policy, ref is not None, opt, minibatch, stats)
    skipped, gap_max = stats.pop("skipped", []), stats.pop("gap_max", [])  # not means
    out = {k: sum(v) / len(v) for k, v in stats.items() if v}
    out["loss/skipped_steps"] = float(sum(skipped))
    if gap_max:
        out["rollout/logprob_gap_max"] = max(gap_max)
    return out


def _minibatch_step(cfg: GRPOConfig, policy: Policy, use_kl: bool, opt: torch.optim.Optimizer,
                    minibatch: list[Row], stats: dict[str, list[float]]) -> None:
    n_seqs = sum(r.n_steps for r in minibatch)  # actions: a packed trajectory counts each
    n_tokens = sum(r.trained for r in minibatch)
    # rows with zero advantage and no KL term have zero gradient: skip their compute, but keep
    # them in the normalisers so the loss is the same as computing them
    active = [r for r in minibatch if use_kl or any(a != 0.0 for a in r.advantages())]
    opt.zero_grad(set_to_none=True)
    total, kl_sum, clip_sum, tok_sum, tis_sum = 0.0, 0.0, 0.0, 0, 0.0
    gap_sum, gap_max, gap_n = 0.0, 0.0, 0
    for mb in micro_batches(active, cfg.micro_batch_size):
        pairs = [(r.prompt_ids, r.action_ids) for r in mb]
        with policy.autocast_ctx():
            logp, mask = rows_logprobs(policy.model, pairs, policy.tokenizer.pad_token_id,
                                       policy.device, cfg.temperature,
                                       [r.loss_mask for r in mb])
        old = _stack([r.old_logp for r in mb], logp.detach())
        has_sample = [len(r.sample_logprobs) == len(r.action_ids) for r in mb]
        sample = _stack([old.new_tensor(r.sample_logprobs) if ok else None
                         for r, ok in zip(mb, has_sample)], old)
        gap_mask = mask & old.new_tensor(has_sample, dtype=torch.bool)[:, None]
        gap = (old - sample).abs()[gap_mask]
        if gap.numel():
            gap_sum, gap_n = gap_sum + float(gap.sum()), gap_n + gap.numel()
            gap_max = max(gap_max, float(gap.max()))
        adv = _stack([logp.new_tensor(r.advantages()) for r in mb], torch.zeros_like(logp))
        per_tok, clipped = clipped_token_loss(logp, old, adv, cfg.clip_eps_low, cfg.clip_eps_high,
                                              cfg.dual_clip)
        if cfg.tis is not None:
            w = tis_weights(old, sample, mask, cfg.tis, cfg.tis_cap).expand_as(per_tok)
            per_tok = per_tok * w
            tis_sum += float(w[mask].sum())
        if use_kl:
            kl = kl_k3(logp, _stack([r.ref_logp for r in mb], torch.zeros_like(logp)))
            per_tok = per_tok + cfg.beta * kl
            kl_sum += float((kl.detach() * mask).sum())
        loss = aggregate(per_tok, mask, cfg.loss_agg, n_seqs, n_tokens, cfg.max_tokens)
        learn.backward(loss)
        total += float(loss.detach())
        clip_sum += float((clipped & mask).sum())
        tok_sum += int(mask.sum())
    result = learn.step(policy.trainable_parameters(), opt, cfg.max_grad_norm, total)
    if not result.stepped:
        stats["skipped"].append(1.0)
    stats["loss/policy"].append(total)
    stats["loss/grad_norm"].append(result.grad_norm)
    if gap_n:
        stats["rollout/logprob_gap"].append(gap_sum / gap_n)
        stats["gap_max"].append(gap_max)
    if tok_sum:
        stats["loss/clip_frac"].append(clip_sum / tok_sum)
        if use_kl:
            stats["loss/kl"].append(kl_sum / tok_sum)
        if cfg.tis is not None:
            stats["loss/tis_weight"].append(tis_sum / tok_sum)


def _stack(values: list[torch.Tensor | None], default: torch.Tensor) -> torch.Tensor:
    """Per-row tensors [A_i] padded into `default`'s shape [B, A]; rows whose value is None keep
    `default`'s row."""
    out = default.clone()
    for i, v in enumerate(values):
        if v is not None:
            out[i, : len(v)] = v
    return out


def make_eval(cfg: Any, run: GRPORun) -> Callable[[], dict[str, float]]:
    """Greedy eval on the first `cfg.eval_tasks` held-out tasks (answers of at most
    `cfg.max_tokens` tokens), scored by the run's rubric; GRPO's and PPO's."""
    params = GenParams(temperature=0.0, max_tokens=cfg.max_tokens)
    tasks = list(run.eval_tasks)[: cfg.eval_tasks]

    def evaluate() -> dict[str, float]:
        if not tasks:
            return {}
        return run.runner.evaluate(tasks, params, derive_seed(run.seed, "eval"), run.rubric).metrics

    return evaluate


def trajectory_samples(policy: Policy, trajs: list) -> list[dict[str, Any]]:
    """Rows of samples.jsonl: each trajectory's first prompt, completion, reward, advantage and
    reward components."""
    return [{"task_id": str(t.task_id), "prompt": policy.tokenizer.decode(t.steps[0].prompt_ids)
             if t.steps else "", "completion": t.completion_text, "reward": t.reward,
             "advantage": t.advantage, **{f"r/{k}": v for k, v in t.components.items()}}
            for t in trajs]
