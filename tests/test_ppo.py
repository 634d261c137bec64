"""PPO: GAE against hand-computed values (single- and multi-turn, turn rewards on each turn's last
token), the clipped value loss and its gradient, reward placement and clipping, the KL in the
reward, and the shipped loop on the tiny model: actor and critic both learn, the critic kinds,
and a resumed run equals the uninterrupted one (critic and its optimizer included)."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest
import torch

from rlpost.algos.advantages import (explained_variance, gae, step_rewards, token_rewards,
                                     whiten)
from rlpost.algos.batch import rows_from_trajectories
from rlpost.algos.critic import Critic
from rlpost.algos.losses import clipped_value_loss
from rlpost.algos.ppo import PPOConfig, assign_gae
from rlpost.errors import RlpostError
from rlpost.policy import Policy, rows_logprobs
from rlpost.run import seed_everything
from rlpost.types import Message, Step, Trajectory
from scripted import YES, ChoiceEnv, MenuGenerator, limited

# --- GAE -----------------------------------------------------------------------------------


def test_gae_single_turn_hand_values():
    """r = [0, 0, 1] (the reward on the last token), V = [0.5, 0.2, 0.4], gamma 1, lam 0.95:
    deltas [-0.3, 0.2, 0.6]; A_2 = 0.6, A_1 = 0.2 + 0.95 * 0.6 = 0.77,
    A_0 = -0.3 + 0.95 * 0.77 = 0.4315; returns A + V."""
    adv, ret = gae(torch.tensor([0.0, 0.0, 1.0]), torch.tensor([0.5, 0.2, 0.4]), 1.0, 0.95)
    assert adv.tolist() == pytest.approx([0.4315, 0.77, 0.6])
    assert ret.tolist() == pytest.approx([0.9315, 0.97, 1.0])


def test_gae_discounts_both_terms():
    """gamma 0.9, lam 0.5: A_2 = 0.6; delta_1 = 0.9 * 0.4 - 0.2 = 0.16, A_1 = 0.16 + 0.45 * 0.6
    = 0.43; delta_0 = 0.9 * 0.2 - 0.5 = -0.32, A_0 = -0.32 + 0.45 * 0.43 = -0.1265."""
    adv, _ = gae(torch.tensor([0.0, 0.0, 1.0]), torch.tensor([0.5, 0.2, 0.4]), 0.9, 0.5)
    assert adv.tolist() == pytest.approx([-0.1265, 0.43, 0.6])


def test_gae_with_lambda_one_and_gamma_one_gives_monte_carlo_returns():
    adv, ret = gae(torch.tensor([0.0, 0.5, 1.0]), torch.tensor([0.1, 0.2, 0.3]), 1.0, 1.0)
    assert ret.tolist() == pytest.approx([1.5, 1.5, 1.0])
    assert adv.tolist() == pytest.approx([1.4, 1.3, 0.7])


def test_gae_equals_the_closed_form_sum_of_discounted_deltas():
    """GAE eq. 16: A_t = sum_l (gamma lam)^l delta_{t+l}, computed here as one matrix product on
    random inputs (an independent form of the recursion)."""
    g = torch.Generator().manual_seed(0)
    r, v = torch.randn(7, generator=g), torch.randn(7, generator=g)
    gamma, lam = 0.9, 0.8
    delta = r + gamma * torch.cat([v[1:], torch.zeros(1)]) - v
    t = torch.arange(7)
    weights = torch.where(t[None, :] >= t[:, None], (gamma * lam) ** (t[None, :] - t[:, None]).float(),
                          torch.zeros(()))
    adv, ret = gae(r, v, gamma, lam)
    assert torch.allclose(adv, weights @ delta, atol=1e-6)
    assert torch.allclose(ret, adv + v)


def test_gae_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match="same 1-d shape"):
        gae(torch.zeros(3), torch.zeros(2), 1.0, 0.95)


def test_whiten_uses_the_unbiased_variance_and_only_the_mask():
    x = torch.tensor([1.0, 2.0, 3.0, 100.0])
    out = whiten(x, torch.tensor([True, True, True, False]), eps=0.0)
    assert out.tolist() == pytest.approx([-1.0, 0.0, 1.0, 100.0])


def _traj(steps, reward_extra=0.0):
    """A trajectory of (prompt, action, env reward) steps; the Rubric added `reward_extra`."""
    t = Trajectory(task_id=0, group_id=0)
    for p, a, r in steps:
        t.steps.append(Step(list(p), list(a), [-1.0] * len(a), "x", r))
    t.reward = t.env_reward + reward_extra
    return t


def test_step_rewards_place_the_rubric_on_the_last_step_and_clip():
    t = _traj([([1], [5], 0.2), ([1, 5, 2], [], 0.1), ([1, 5, 2, 3], [6, 7], 0.5)],
              reward_extra=0.3)
    # the empty step's 0.1 joins the step before it; the rubric's 0.3 the last step
    assert step_rewards(t, None) == pytest.approx([0.3, 0.8])
    assert step_rewards(t, 0.5) == pytest.approx([0.3, 0.5])
    first_empty = _traj([([1], [], 1.0), ([1, 2], [6], 0.5)])
    assert step_rewards(first_empty, None) == pytest.approx([1.5])


def test_token_rewards_put_each_turn_reward_on_its_last_token():
    assert token_rewards([0.5, 1.0], [2, 3]).tolist() == [0.0, 0.5, 0.0, 0.0, 1.0]
    with pytest.raises(ValueError):
        token_rewards([1.0], [0])


def _scored(rows, values, logp=None, ref=None):
    for r, v in zip(rows, values):
        n = len(r.action_ids)
        r.old_values = torch.tensor(v, dtype=torch.float32)
        r.old_logp = torch.tensor(logp or [0.0] * n, dtype=torch.float32)
        r.ref_logp = None if ref is None else torch.tensor(ref, dtype=torch.float32)


def test_gae_over_a_packed_two_turn_trajectory_skips_the_env_tokens():
    """Turn 1 acts [5, 6] (reward 0.5), the env answers [2], turn 2 acts [7] (reward 1.0): one
    packed row [5, 6, 2, 7] with the env token masked. With V = [0.1, 0.2, -, 0.3], gamma = lam
    = 1: A = [1.4, 1.3, -, 0.7] on the action tokens (the same as the single sequence
    [0, 0.5, 1.0] without the env token), 0 on the env token."""
    t = _traj([([1], [5, 6], 0.5), ([1, 5, 6, 2], [7], 1.0)])
    rows = rows_from_trajectories([t], pack_turns=True)
    assert len(rows) == 1 and rows[0].loss_mask == [True, True, False, True]
    _scored(rows, [[0.1, 0.2, 99.0, 0.3]])
    cfg = PPOConfig(gamma=1.0, lam=1.0, whiten_advantages=False, kl_coef=0.0)
    m = assign_gae(cfg, [t], [rows])
    assert rows[0].token_advantages == pytest.approx([1.4, 1.3, 0.0, 0.7])
    assert rows[0].returns.tolist() == pytest.approx([1.5, 1.5, 0.0, 1.0])
    assert m["critic/return_mean"] == pytest.approx(4.0 / 3)
    # per-step rows give the same advantages
    steps = rows_from_trajectories([t], pack_turns=False)
    _scored(steps, [[0.1, 0.2], [0.3]])
    assign_gae(cfg, [t], [steps])
    assert [a for r in steps for a in r.token_advantages] == pytest.approx([1.4, 1.3, 0.7])


def test_kl_penalty_enters_every_tokens_reward():
    """old - ref = [0.5, -1.0] with kl_coef 0.1: rewards [-0.05, 1 + 0.1]; V = 0, gamma = lam =
    1: returns [1.05, 1.1]."""
    t = _traj([([1], [5, 6], 1.0)])
    rows = rows_from_trajectories([t])
    _scored(rows, [[0.0, 0.0]], logp=[-1.0, -2.0], ref=[-1.5, -1.0])
    m = assign_gae(PPOConfig(gamma=1.0, lam=1.0, whiten_advantages=False, kl_coef=0.1),
                   [t], [rows])
    assert rows[0].returns.tolist() == pytest.approx([1.05, 1.1])
    assert m["reward/kl"] == pytest.approx(-0.25)
    # as a loss term instead, the rewards carry no KL
    assign_gae(PPOConfig(gamma=1.0, lam=1.0, whiten_advantages=False, kl_coef=0.1,
                         kl_in_reward=False), [t], [rows])
    assert rows[0].returns.tolist() == pytest.approx([1.0, 1.0])


def test_advantages_are_whitened_over_the_batch():
    ta, tb = _traj([([1], [5], 1.0)]), _traj([([2], [5, 6], 0.0)])
    rows_a, rows_b = rows_from_trajectories([ta]), rows_from_trajectories([tb])
    _scored(rows_a, [[0.0]])
    _scored(rows_b, [[0.0, 0.0]])
    assign_gae(PPOConfig(gamma=1.0, lam=1.0, kl_coef=0.0), [ta, tb], [rows_a, rows_b])
    flat = rows_a[0].token_advantages + rows_b[0].token_advantages  # raw [1, 0, 0]
    assert flat == pytest.approx([2 / math.sqrt(3), -1 / math.sqrt(3), -1 / math.sqrt(3)],
                                 abs=1e-6)


def test_explained_variance():
    r = torch.tensor([1.0, 2.0, 3.0])
    assert explained_variance(r, r) == 1.0
    assert explained_variance(torch.full((3,), 2.0), r) == 0.0
    assert math.isnan(explained_variance(r, torch.ones(3)))


# --- the clipped value loss ----------------------------------------------------------------


def test_clipped_value_loss_hand_values_and_gradient():
    """Token 0: V 1.0 moved past old 0.5 + 0.2: (0.7 - 1.2)^2 = 0.25 > (1.0 - 1.2)^2, so the
    clipped term sets the loss 0.125 and its gradient is 0. Token 1: V 0.0, the unclipped
    (0 - 1)^2 = 1 > (0.3 - 1)^2: loss 0.5, gradient V - R = -1."""
    v = torch.tensor([1.0, 0.0], requires_grad=True)
    loss, clipped = clipped_value_loss(v, torch.tensor([0.5, 0.5]), torch.tensor([1.2, 1.0]), 0.2)
    assert loss.tolist() == pytest.approx([0.125, 0.5])
    assert clipped.tolist() == [True, False]
    loss.sum().backward()
    assert v.grad.tolist() == pytest.approx([0.0, -1.0])
    plain, never = clipped_value_loss(v, torch.tensor([0.5, 0.5]), torch.tensor([1.2, 1.0]), None)
    assert plain.tolist() == pytest.approx([0.02, 0.5]) and not never.any()
    with pytest.raises(ValueError):
        clipped_value_loss(v, v, v, 0.0)


# --- config ---------------------------------------------------------------------------------


@pytest.mark.parametrize("field,value,msg", [
    ("critic", "twin", "critic must be"), ("lam", 1.5, "gamma and lam"),
    ("reward_clip", 0.0, "reward_clip"), ("value_clip", -1.0, "value_clip"),
    ("critic_lr", math.inf, "critic_lr"), ("samples_per_task", 0, "samples_per_task")])
def test_config_errors(field, value, msg):
    with pytest.raises(RlpostError, match=msg):
        PPOConfig(**{field: value}).validate()


# --- the loop on the tiny model -------------------------------------------------------------


def _ppo(policy, generator, run_dir, cfg, stop_after=None, resume_step=None):
    from rlpost.algos.ppo import PPORun, train
    from rlpost.env import env_tasks
    from rlpost.reward import Rubric
    from rlpost.runner import Runner
    from rlpost.track import Tracker, read_metrics

    envs = [limited(ChoiceEnv()) for _ in range(cfg.tasks_per_step * cfg.samples_per_task)]
    with Tracker(run_dir, backends=("jsonl",), resume_step=resume_step) as tracker:
        runner = Runner(envs, generator, policy.encode_chat)
        run = PPORun(policy=policy, runner=runner, rubric=Rubric(),
                     train_tasks=env_tasks(envs[0], "train"), eval_tasks=[], tracker=tracker,
                     run_dir=run_dir, seed=3)
        train(cfg, run, stop_after=stop_after)
    return read_metrics(run_dir)


CFG = dict(steps=4, tasks_per_step=4, samples_per_task=2, actor_lr=1e-2, critic_lr=1e-2,
           kl_coef=0.1, epochs=2, minibatches=2, eval_tasks=0, save_every=1, warmup_steps=2)


@pytest.mark.parametrize("kind", ["separate", "shared"])
def test_ppo_trains_actor_and_critic_and_yes_becomes_likelier(tiny_model_path, tmp_path, kind):
    policy = Policy(tiny_model_path, autocast=None)
    before = {k: v.clone() for k, v in policy.named_tensors()}
    prompt = policy.encode_chat([Message("user", "Task 0: answer yes or no.")])
    gen = MenuGenerator(policy.tokenizer)
    yes = gen.ids[YES]

    def p_yes():
        with torch.no_grad():
            lp, _ = rows_logprobs(policy.model, [(prompt, yes)], policy.tokenizer.pad_token_id)
        return float(lp.sum())

    start = p_yes()
    rows = _ppo(policy, gen, tmp_path, PPOConfig(critic=kind, **CFG))
    after = dict(policy.named_tensors())
    assert max(float((after[k] - before[k]).abs().max()) for k in after) > 1e-3
    assert p_yes() > start + 0.5  # YES earns 1, NO 0: the policy moves to YES
    steps = [r for r in rows if "loss/value" in r]
    assert len(steps) == 4 and all(r["loss/skipped_steps"] == 0 for r in steps)
    assert steps[-1]["loss/value"] < steps[0]["loss/value"]  # the critic fits the returns
    assert steps[0]["loss/approx_kl"] > 0 and 0 < steps[0]["loss/clip_frac"] <= 1
    extra = torch.load(tmp_path / "checkpoint" / "extra.pt", weights_only=False)
    assert set(extra) == {"critic", "critic_optimizer", "critic_scheduler"}
    critic_keys = set(extra["critic"])
    assert ("backbone.embed_tokens.weight" in critic_keys) == (kind == "separate")
    assert {"head.weight", "head.bias"} <= critic_keys
    fresh = Critic(Policy(tiny_model_path, autocast=None), kind, seed=0)
    assert not torch.equal(extra["critic"]["head.weight"], fresh.head.weight.detach())


def test_resumed_ppo_run_equals_the_uninterrupted_run(tiny_model_path, tmp_path):
    """Killed after step 2 and resumed: the same metrics, weights and critic as a run that was
    not interrupted (the scripted generator draws from the restored RNG streams)."""
    cfg = PPOConfig(**CFG)
    seed_everything(0)
    whole = Policy(tiny_model_path, autocast=None)
    whole_rows = _ppo(whole, MenuGenerator(whole.tokenizer, "random"), tmp_path / "whole", cfg)
    seed_everything(0)
    first = Policy(tiny_model_path, autocast=None)
    _ppo(first, MenuGenerator(first.tokenizer, "random"), tmp_path / "cut", cfg, stop_after=2)
    random.seed(9), np.random.seed(9), torch.manual_seed(9)  # a new process
    again = Policy(tiny_model_path, autocast=None)
    rows = _ppo(again, MenuGenerator(again.tokenizer, "random"), tmp_path / "cut", cfg,
                resume_step=2)
    keys = ["loss/value", "loss/policy", "critic/explained_variance", "reward/total",
            "critic/lr", "lr"]
    for a, b in zip(whole_rows, rows):
        assert a["step"] == b["step"]
        for k in keys:
            if k in a:
                assert b[k] == pytest.approx(a[k], rel=1e-5, abs=1e-7), (a["step"], k)
    assert len(rows) == len(whole_rows)
    ca = torch.load(tmp_path / "whole" / "checkpoint" / "extra.pt", weights_only=False)
    cb = torch.load(tmp_path / "cut" / "checkpoint" / "extra.pt", weights_only=False)
    for k, v in ca["critic"].items():
        assert torch.allclose(v, cb["critic"][k], atol=1e-6), k
    a, b = dict(whole.named_tensors()), dict(again.named_tensors())
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-5
    assert json.loads((tmp_path / "cut" / "checkpoint" / "state.json").read_text()) == {"step": 4}


def test_resume_refuses_a_checkpoint_without_a_critic(tiny_model_path, tmp_path):
    """A GRPO checkpoint in the run directory: PPO says so in one line, the weights untouched."""
    from rlpost.algos.grpo import GRPOConfig
    from scripted import train_on_choices

    policy = Policy(tiny_model_path, autocast=None)
    train_on_choices(policy, MenuGenerator(policy.tokenizer), tmp_path,
                     GRPOConfig(steps=1, tasks_per_step=2, group_size=2, eval_tasks=0))
    fresh = Policy(tiny_model_path, autocast=None)
    before = {k: v.clone() for k, v in fresh.named_tensors()}
    with pytest.raises(RlpostError, match="has no saved critic"):
        _ppo(fresh, MenuGenerator(fresh.tokenizer), tmp_path, PPOConfig(**CFG))
    assert all(torch.equal(before[k], v) for k, v in fresh.named_tensors())
