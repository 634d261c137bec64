"""A multi-turn trajectory trained as one packed sequence gives the loss and gradient of one row
per step, for every aggregation, off-policy and with the KL term; and a real chat template's
multi-turn prompts are append-only (no prefix break) when the action tokens end at end-of-turn."""

from __future__ import annotations

import pytest
import torch

from rlpost.algos.batch import prefix_breaks, rows_from_trajectories
from rlpost.algos.grpo import GRPOConfig, update
from rlpost.algos.losses import LOSS_AGGS
from rlpost.env import chat, make
from rlpost.policy import Policy
from rlpost.types import Step, Trajectory


def _episode(policy, task, guesses, advantages):
    """GuessNumber played with `guesses`: each action is the guess's tokens + end-of-turn."""
    env = make("rlpost/GuessNumber-v0")
    env.reset(options={"task_id": task})
    end = policy.tokenizer.convert_tokens_to_ids("<|im_end|>")
    steps = []
    for g, adv in zip(guesses, advantages):
        prompt = policy.encode_chat(chat(env))
        action = policy.tokenizer(g, add_special_tokens=False)["input_ids"] + [end]
        env.step(g)
        steps.append(Step(prompt, action, [-1.0] * len(action), g, advantage=adv))
    return Trajectory(task, 0, steps)


@pytest.fixture()
def trajs(tiny_policy):
    return [_episode(tiny_policy, 0, ["8", "12", "14", "13"], [0.7, -0.2, 1.1, 0.4]),
            _episode(tiny_policy, 1, ["8", "4"], [-0.9, -0.5]),
            _episode(tiny_policy, 2, ["2"], [0.3])]


def test_the_chat_template_makes_multi_turn_prompts_append_only(trajs):
    assert [prefix_breaks(t) for t in trajs] == [0, 0, 0]


def _grads(policy, rows, cfg, ref):
    policy.model.zero_grad(set_to_none=True)
    stats = update(cfg, policy, ref, torch.optim.SGD(policy.trainable_parameters(), lr=0.0), rows)
    return stats, {n: p.grad.clone() for n, p in policy.model.named_parameters()
                   if p.grad is not None}


@pytest.mark.parametrize("agg", LOSS_AGGS)
def test_packed_and_per_step_rows_give_the_same_loss_and_gradient(tiny_policy, tiny_model_path,
                                                                  trajs, agg):
    torch.manual_seed(0)
    ref = Policy(tiny_model_path, autocast=None).model
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(0.05 * torch.randn_like(p))
    per_step = rows_from_trajectories(trajs, pack_turns=False)
    packed = rows_from_trajectories(trajs, pack_turns=True)
    assert (len(per_step), len(packed)) == (7, 3)
    # off-policy: the same behaviour logprobs (ratios away from 1) in both layouts
    gen = torch.Generator().manual_seed(1)
    for r in per_step:
        r.old_logp = -torch.rand(len(r.action_ids), generator=gen) * 3
    k = 0  # per-step rows come in trajectory order
    for r, t in zip(packed, trajs):
        steps, k = per_step[k : k + len(t.steps)], k + len(t.steps)
        if r.loss_mask is None:  # a one-step trajectory stays a plain row
            r.old_logp = steps[0].old_logp
            continue
        old = torch.zeros(len(r.action_ids))
        old[[i for i, m in enumerate(r.loss_mask) if m]] = torch.cat([x.old_logp for x in steps])
        r.old_logp = old
    cfg = GRPOConfig(loss_agg=agg, beta=0.1, max_tokens=8, max_grad_norm=1e9,
                     micro_batch_size=2, temperature=0.8)
    a, ga = _grads(tiny_policy, per_step, cfg, ref)
    b, gb = _grads(tiny_policy, packed, cfg, ref)
    for key in ("loss/policy", "loss/kl", "loss/clip_frac"):
        assert b[key] == pytest.approx(a[key], rel=1e-5, abs=1e-7), key
    assert a["loss/clip_frac"] > 0  # the ratios engage the clip
    num = sum(float((ga[k] - gb[k]).norm() ** 2) for k in ga) ** 0.5
    den = sum(float(g.norm() ** 2) for g in ga.values()) ** 0.5
    assert den > 0 and num / den < 1e-5
