"""PPO with a learned critic: token-level GAE over env rollouts, clipped policy and value losses.

The RLHF form of PPO (Ouyang et al. 2022, InstructGPT, sec. 3.5; Ziegler et al. 2019) as
DeepSpeed-Chat (`ppo_trainer.py`), TRL's PPOTrainer (< 1.0) and verl run it, over multi-turn
env rollouts. Per step:

1. rollouts: `samples_per_task` episodes of each of `tasks_per_step` tasks (the shared runner);
2. scoring (no gradient): the policy's logprobs (old_logp), the reference policy's (ref_logp,
   when `kl_coef` > 0) and the critic's values V(s_t) of every action token;
3. per-token rewards (`token_rewards`): each env step's reward, clipped to +-`reward_clip`, on
   the last token of that step's action (what the Rubric adds to the env's reward goes on the
   trajectory's last step); with `kl_in_reward`, every token also gets
   -kl_coef * (old_logp - ref_logp) (the k1 estimate, InstructGPT eq. 2);
4. advantages and returns by GAE (`advantages.gae`, gamma and lam per token) over each
   trajectory's action tokens in order, the env's tokens between turns skipped; then the
   advantages are whitened over the batch's tokens (`whiten_advantages`);
5. `epochs` x `minibatches` optimizer steps of the clipped policy loss (`losses.
   clipped_token_loss`; plus kl_coef * k3 KL when the KL is a loss term) and the clipped value
   loss (`losses.clipped_value_loss`) times `vf_coef`; the actor and the critic have their own
   AdamW and learning rate, and each its gradient clip.

Metrics: loss/policy, loss/value, loss/clip_frac, loss/value_clip_frac, loss/approx_kl
(0.5 mean (logp - old_logp)^2, as TRL), loss/grad_norm, loss/critic_grad_norm,
critic/explained_variance (1 - Var(R - V) / Var(R) over the batch's tokens, before the update),
critic/value_mean, critic/return_mean, reward/kl (mean k1 of old vs ref per token), and the
rollout metrics GRPO logs.

Checkpoints add the critic, its optimizer and schedule to GRPO's (`checkpoint.save_checkpoint`'s
`extra`), so a resumed run continues with the same critic.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from rlpost import learn
from rlpost.algos.advantages import (explained_variance, gae, step_rewards, token_rewards,
                                     whiten)
from rlpost.algos.batch import Row, micro_batches, rows_from_trajectories, step_metrics
from rlpost.algos.critic import CRITIC_KINDS, Critic, CriticKind, logprobs_and_values
from rlpost.algos.grpo import GRPORun, make_eval, trajectory_samples
from rlpost.algos.losses import (LOSS_AGGS, LossAgg, aggregate, clipped_token_loss,
                                 clipped_value_loss, kl_k3)
from rlpost.checkpoint import TaskSampler, load_checkpoint, save_checkpoint
from rlpost.errors import RlpostError
from rlpost.generate import GenParams
from rlpost.policy import Policy, rows_logprobs
from rlpost.seeds import derive_seed
from rlpost.track import Progress
from rlpost.types import Trajectory

PPORun = GRPORun
"""PPO's collaborators are GRPO's: policy, runner, rubric, tasks, tracker, run directory, seed."""


@dataclass
class PPOConfig:
    """PPO hyper-parameters (defaults: TRL's PPOConfig where it has one)."""

    steps: int = 40
    """Rollout batches (each followed by epochs x minibatches optimizer steps)."""
    tasks_per_step: int = 8
    """Distinct tasks per rollout batch."""
    samples_per_task: int = 1
    """Episodes per task (PPO needs no group; > 1 gives more data per prompt)."""
    actor_lr: float = 1e-6
    """AdamW learning rate of the policy."""
    critic_lr: float = 1e-5
    """AdamW learning rate of the critic's own parameters."""
    warmup_steps: int = 0
    """Linear LR warm-up of both, in rollout steps (the schedule moves once per step)."""
    weight_decay: float = 0.0
    """AdamW weight decay of both."""
    max_grad_norm: float = 1.0
    """Gradient clipping (global L2 norm), of the actor and the critic separately."""
    critic: CriticKind = "separate"
    """separate: a copy of the policy's backbone with a value head; shared: a value head on the
    policy's backbone (see `critic.py`)."""
    gamma: float = 1.0
    """GAE discount per token."""
    lam: float = 0.95
    """GAE lambda."""
    kl_coef: float = 0.05
    """KL coefficient to the frozen initial policy (0 builds no reference model)."""
    kl_in_reward: bool = True
    """True: -kl_coef * k1 in every token's reward (the RLHF recipe); False: kl_coef * k3 KL as a
    loss term (as GRPO)."""
    reward_clip: float | None = 5.0
    """Each env step's reward is clipped to [-reward_clip, reward_clip]; None = no clipping."""
    whiten_advantages: bool = True
    """Normalise the advantages to mean 0, std 1 over the batch's tokens."""
    clip_eps: float = 0.2
    """Policy ratio clip: [1 - clip_eps, 1 + clip_eps]."""
    value_clip: float | None = 0.2
    """Value clip around the rollout-time values; None = unclipped value loss."""
    vf_coef: float = 1.0
    """Weight of the value loss (with a shared critic it trades the two losses on the
    backbone; with a separate one it scales the critic's gradient)."""
    loss_agg: LossAgg = "token-mean"
    """Aggregation of the policy loss (see `losses.aggregate`); the value loss is a token mean."""
    epochs: int = 1
    """Passes over each rollout batch (PPO epochs)."""
    minibatches: int = 1
    """Optimizer steps per pass."""
    pack_turns: bool = True
    """Train an append-only multi-turn trajectory as one sequence (see `batch.py`)."""
    micro_batch_size: int = 16
    """Rows per forward/backward."""
    temperature: float = 1.0
    """Sampling temperature of rollouts; 0 = greedy (TL-Training's do_sample 0). Logprobs are
    trained at this temperature (at 1 when greedy)."""
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
        finite_pos = lambda x: 0 < x < math.inf  # noqa: E731
        checks = [(self.steps >= 1 and self.tasks_per_step >= 1 and self.samples_per_task >= 1,
                   "steps, tasks_per_step and samples_per_task must be >= 1"),
                  (finite_pos(self.actor_lr) and finite_pos(self.critic_lr),
                   "actor_lr and critic_lr must be finite and > 0"),
                  (self.critic in CRITIC_KINDS, f"critic must be one of {', '.join(CRITIC_KINDS)}"),
                  (0 <= self.gamma <= 1 and 0 <= self.lam <= 1, "gamma and lam must be in [0, 1]"),
                  (0 <= self.kl_coef < math.inf, "kl_coef must be finite and >= 0"),
                  (self.reward_clip is None or finite_pos(self.reward_clip),
                   "reward_clip must be > 0 or None"),
                  (finite_pos(self.clip_eps), "clip_eps must be > 0"),
                  (self.value_clip is None or finite_pos(self.value_clip),
                   "value_clip must be > 0 or None"),
                  (0 <= self.vf_coef < math.inf, "vf_coef must be finite and >= 0"),
                  (self.loss_agg in LOSS_AGGS, f"loss_agg must be one of {', '.join(LOSS_AGGS)}"),
                  (self.epochs >= 1 and self.minibatches >= 1, "epochs and minibatches must be >= 1"),
                  (self.micro_batch_size >= 1, "micro_batch_size must be >= 1"),
                  (self.max_tokens >= 1, "max_tokens must be >= 1"),
                  (0 <= self.temperature < math.inf, "temperature must be finite and >= 0"),
                  (0 < self.top_p <= 1, "top_p must be in (0, 1]"),
                  (self.eval_every >= 1 and self.save_every >= 1,
                   "eval_every and save_every must be >= 1")]
        for ok, message in checks:
            if not ok:
                raise RlpostError(f"algo: {message}")

    @property
    def logprob_temperature(self) -> float:
        return self.temperature if self.temperature > 0 else 1.0


def _row_mask(r: Row) -> torch.Tensor:
    return torch.ones(len(r.action_ids), dtype=torch.bool) if r.loss_mask is None else \
        torch.tensor(r.loss_mask, dtype=torch.bool)


# --- one step -----------------------------------------------------------------------------


@torch.no_grad()
def score_rows(cfg: PPOConfig, policy: Policy, critic: Critic, ref: torch.nn.Module | None,
               rows: list[Row]) -> None:
    """Fill each row's old_logp, old_values and (with `ref`) ref_logp, [A_i] each."""
    policy.model.eval()
    for mb in micro_batches(rows, cfg.micro_batch_size):
        pairs = [(r.prompt_ids, r.action_ids) for r in mb]
        masks = [r.loss_mask for r in mb]
        logp, values, _ = logprobs_and_values(policy, critic, pairs, masks,
                                              cfg.logprob_temperature)
        ref_lp = None
        if ref is not None:
            with policy.autocast_ctx():
                ref_lp, _ = rows_logprobs(ref, pairs, policy.tokenizer.pad_token_id,
                                          policy.device, cfg.logprob_temperature, masks)
        for i, r in enumerate(mb):
            n = len(r.action_ids)
            r.old_logp, r.old_values = logp[i, :n].float(), values[i, :n]
            r.ref_logp = None if ref_lp is None else ref_lp[i, :n].float()


def assign_gae(cfg: PPOConfig, trajs: Sequence[Trajectory], rows_per_traj: Sequence[list[Row]],
               ) -> dict[str, float]:
    """Per-token rewards, GAE advantages and returns of every scored row (token_advantages,
    returns), then batch whitening; returns the critic and KL metrics of the batch."""
    all_adv, all_ret, all_val, all_kl = [], [], [], []
    for traj, rows in zip(trajs, rows_per_traj):
        if not rows:
            continue
        masks = [_row_mask(r) for r in rows]
        values = torch.cat([r.old_values[m] for r, m in zip(rows, masks)])
        lengths = [len(s.action_ids) for s in traj.steps if s.action_ids]
        rewards = token_rewards(step_rewards(traj, cfg.reward_clip), lengths)
        if rows[0].ref_logp is not None:
            kl = torch.cat([(r.old_logp - r.ref_logp)[m] for r, m in zip(rows, masks)])
            all_kl.append(kl)
            if cfg.kl_in_reward:
                rewards = rewards - cfg.kl_coef * kl
        adv, ret = gae(rewards, values, cfg.gamma, cfg.lam)
        all_adv.append(adv)
        all_ret.append(ret)
        all_val.append(values)
        start = 0
        for r, m in zip(rows, masks):
            n = int(m.sum())
            full_adv = torch.zeros(len(r.action_ids))
            full_ret = torch.zeros(len(r.action_ids))
            full_adv[m], full_ret[m] = adv[start:start + n], ret[start:start + n]
            r.token_advantages, r.returns = full_adv.tolist(), full_ret
            start += n
    adv, ret, val = torch.cat(all_adv), torch.cat(all_ret), torch.cat(all_val)
    metrics = {"critic/explained_variance": explained_variance(val, ret),
               "critic/value_mean": float(val.mean()), "critic/return_mean": float(ret.mean()),
               "critic/advantage_mean": float(adv.mean())}
    if all_kl:
        metrics["reward/kl"] = float(torch.cat(all_kl).mean())
    if cfg.whiten_advantages:
        white = whiten(adv)
        start = 0
        for rows in rows_per_traj:
            for r in rows:
                m = _row_mask(r)
                n = int(m.sum())
                full = torch.zeros(len(r.action_ids))
                full[m] = white[start:start + n]
                r.token_advantages = full.tolist()
                start += n
    return metrics


def update(cfg: PPOConfig, policy: Policy, critic: Critic, actor_opt: torch.optim.Optimizer,
           critic_opt: torch.optim.Optimizer, rows: list[Row], seed: int = 0) -> dict[str, float]:
    """`cfg.epochs` x `cfg.minibatches` optimizer steps of actor and critic over scored rows
    (`score_rows`, `assign_gae`); minibatch order seeded by `seed`. A step whose loss or
    gradient norm is not finite is skipped (counted in loss/skipped_steps). Returns the means
    over optimizer steps of the loss metrics (module docstring)."""
    policy.model.train()
    critic.train()
    stats: dict[str, list[float]] = defaultdict(list)
    perm_gen = torch.Generator().manual_seed(seed)
    for _ in range(cfg.epochs):
        order = torch.randperm(len(rows), generator=perm_gen).tolist()
        size = -(-len(rows) // cfg.minibatches)
        for k in range(cfg.minibatches):
            minibatch = [rows[i] for i in order[k * size:(k + 1) * size]]
            if minibatch:
                _minibatch_step(cfg, policy, critic, actor_opt, critic_opt, minibatch, stats)
    policy.model.eval()
    critic.eval()
    skipped = stats.pop("skipped", [])
    out = {k: sum(v) / len(v) for k, v in stats.items() if v}
    out["loss/skipped_steps"] = float(sum(skipped))
    return out


def _pad(values: list[torch.Tensor], like: torch.Tensor) -> torch.Tensor:
    out = torch.zeros_like(like, dtype=torch.float32)
    for i, v in enumerate(values):
        out[i, :len(v)] = v.to(out.device)
    return out


def _minibatch_step(cfg: PPOConfig, policy: Policy, critic: Critic,
                    actor_opt: torch.optim.Optimizer, critic_opt: torch.optim.Optimizer,
                    minibatch: list[Row], stats: dict[str, list[float]]) -> None:
    n_seqs = sum(r.n_steps for r in minibatch)
    n_tokens = sum(r.trained for r in minibatch)
    actor_opt.zero_grad(set_to_none=True)
    critic_opt.zero_grad(set_to_none=True)
    sums: dict[str, float] = defaultdict(float)
    for mb in micro_batches(minibatch, cfg.micro_batch_size):
        pairs = [(r.prompt_ids, r.action_ids) for r in mb]
        logp, values, mask = logprobs_and_values(policy, critic, pairs,
                                                 [r.loss_mask for r in mb],
                                                 cfg.logprob_temperature)
        logp = logp.float()
        old = _pad([r.old_logp for r in mb], logp)
        adv = _pad([torch.tensor(r.advantages()) for r in mb], logp)
        per_tok, clipped = clipped_token_loss(logp, old, adv, cfg.clip_eps, cfg.clip_eps)
        if cfg.kl_coef > 0 and not cfg.kl_in_reward and mb[0].ref_logp is not None:
            kl = kl_k3(logp, _pad([r.ref_logp for r in mb], logp))
            per_tok = per_tok + cfg.kl_coef * kl
            sums["kl"] += float((kl.detach() * mask).sum())
        policy_loss = aggregate(per_tok, mask, cfg.loss_agg, n_seqs, n_tokens, cfg.max_tokens)
        v_tok, v_clipped = clipped_value_loss(values, _pad([r.old_values for r in mb], values),
                                              _pad([r.returns for r in mb], values), cfg.value_clip)
        value_loss = aggregate(v_tok, mask, "token-mean", n_seqs, n_tokens, cfg.max_tokens)
        learn.backward(policy_loss + cfg.vf_coef * value_loss)
        m = mask.float()
        sums["policy"] += float(policy_loss.detach())
        sums["value"] += float(value_loss.detach())
        sums["clip"] += float((clipped & mask).sum())
        sums["vclip"] += float((v_clipped & mask).sum())
        sums["approx_kl"] += float((0.5 * (logp.detach() - old) ** 2 * m).sum())
        sums["tokens"] += float(m.sum())
    total = sums["policy"] + cfg.vf_coef * sums["value"]
    actor = learn.step(policy.trainable_parameters(), actor_opt, cfg.max_grad_norm, total)
    crit = learn.step(critic.trainable_parameters(), critic_opt, cfg.max_grad_norm, total)
    if not (actor.stepped and crit.stepped):
        stats["skipped"].append(1.0)
    tokens = max(sums["tokens"], 1.0)
    stats["loss/policy"].append(sums["policy"])
    stats["loss/value"].append(sums["value"])
    stats["loss/clip_frac"].append(sums["clip"] / tokens)
    stats["loss/value_clip_frac"].append(sums["vclip"] / tokens)
    stats["loss/approx_kl"].append(sums["approx_kl"] / tokens)
    stats["loss/grad_norm"].append(actor.grad_norm)
    stats["loss/critic_grad_norm"].append(crit.grad_norm)
    if "kl" in sums:
        stats["loss/kl"].append(sums["kl"] / tokens)


def _logprob_gap(rows: list[Row]) -> dict[str, float]:
    """Mean and max |trainer - generator| logprob of the sampled tokens (rows with sampling
    logprobs), as GRPO logs them."""
    gaps = [(r.old_logp - torch.tensor(r.sample_logprobs))[_row_mask(r)].abs()
            for r in rows if len(r.sample_logprobs) == len(r.action_ids)]
    gaps = [g for g in gaps if g.numel()]
    if not gaps:
        return {}
    flat = torch.cat(gaps)
    return {"rollout/logprob_gap": float(flat.mean()), "rollout/logprob_gap_max": float(flat.max())}


# --- the loop -----------------------------------------------------------------------------


def train(cfg: PPOConfig, run: PPORun, stop_after: int | None = None) -> dict[str, float]:
    """Run PPO; resumes from `run.run_dir/checkpoint` (policy, critic, both optimizers and
    schedules, sampler, RNG streams) when present. Returns the last eval. `stop_after`: end
    without a final checkpoint after this many steps of this call (tests of resume).
    Raises RlpostError on a bad config or a runner with fewer envs than a rollout batch."""
    cfg.validate()
    policy = run.policy
    critic = Critic(policy, cfg.critic, seed=derive_seed(run.seed, "critic"))
    actor_opt, actor_sched = learn.make_optimizer(policy.trainable_parameters(), cfg.actor_lr,
                                                  cfg.weight_decay, cfg.warmup_steps)
    critic_opt, critic_sched = learn.make_optimizer(critic.trainable_parameters(), cfg.critic_lr,
                                                    cfg.weight_decay, cfg.warmup_steps)
    sampler = TaskSampler(run.train_tasks, seed=run.seed)
    ref = policy.reference() if cfg.kl_coef > 0 else None  # the initial policy, also on resume
    extra = {"critic": critic, "critic_optimizer": critic_opt, "critic_scheduler": critic_sched}
    start = load_checkpoint(run.run_dir, policy, actor_opt, actor_sched, sampler, extra)
    n_envs = len(run.runner.envs)
    if n_envs < cfg.tasks_per_step * cfg.samples_per_task:
        raise RlpostError(f"ppo: a rollout batch of {cfg.tasks_per_step} tasks x "
                          f"{cfg.samples_per_task} needs as many envs; the runner has {n_envs}")
    generator = run.runner.generator
    generator.sync_weights(policy)
    gen = GenParams(cfg.temperature, cfg.top_p, cfg.max_tokens)
    evaluate = make_eval(cfg, run)
    last_eval: dict[str, float] = {}
    if start == 0:
        last_eval = evaluate()
        run.tracker.log(last_eval, 0)
    progress = Progress(cfg.steps, initial=start, desc="ppo")

    for step in range(start + 1, cfg.steps + 1):
        t0 = time.perf_counter()
        tasks = sampler.sample(cfg.tasks_per_step)
        trajs = run.runner.play(tasks, gen, derive_seed(run.seed, "rollout", step),
                                cfg.samples_per_task)
        t1 = time.perf_counter()
        run.rubric(trajs)
        rows_per_traj = [rows_from_trajectories([t], cfg.pack_turns) for t in trajs]
        rows = [r for rs in rows_per_traj for r in rs]
        metrics = step_metrics(trajs)
        lr, critic_lr = actor_sched.get_last_lr()[0], critic_sched.get_last_lr()[0]
        if rows:
            score_rows(cfg, policy, critic, ref, rows)
            metrics.update(assign_gae(cfg, trajs, rows_per_traj))
            metrics.update(_logprob_gap(rows))
            metrics.update(update(cfg, policy, critic, actor_opt, critic_opt, rows,
                                  derive_seed(run.seed, "minibatches", step)))
        actor_sched.step()
        critic_sched.step()
        t2 = time.perf_counter()
        generator.sync_weights(policy)
        t3 = time.perf_counter()
        metrics.update({"perf/rollout_s": t1 - t0, "perf/update_s": t2 - t1,
                        "perf/sync_s": t3 - t2, "perf/step_s": t3 - t0,
                        "perf/rollout_tokens_per_s": metrics["rollout/tokens"] / (t1 - t0),
                        "lr": lr, "critic/lr": critic_lr})
        if step % cfg.eval_every == 0 or step == cfg.steps:
            last_eval = evaluate()
            metrics.update(last_eval)
        run.tracker.log(metrics, step)
        run.tracker.log_samples(trajectory_samples(policy, trajs[:cfg.samples_per_step]), step)
        progress.update(metrics)
        if step % cfg.save_every == 0 or step == cfg.steps:
            save_checkpoint(run.run_dir, step, policy, actor_opt, actor_sched, sampler, extra)
        if stop_after is not None and step - start >= stop_after:
            break
    progress.close()
    return last_eval
