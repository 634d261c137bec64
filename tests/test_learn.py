"""The learner step: the LR schedule's values, clipping, and the skipped non-finite step."""

from __future__ import annotations

import math

import pytest
import torch

from rlpost import learn


@pytest.mark.parametrize("schedule, expected", [
    ("constant", [0.5, 1.0, 1.0, 1.0, 1.0, 1.0]),
    # cosine over span 4 after 2 warm-up steps: 1, cos^2 halves, 0 at the end, held at 0
    ("cosine", [0.5, 1.0, 1.0, 0.5 * (1 + math.cos(math.pi / 4)), 0.5, 0.5 * (1 + math.cos(3 * math.pi / 4))]),
])
def test_lr_factor_warm_up_then_schedule(schedule, expected):
    got = [learn.lr_factor(s, 2, schedule, 6) for s in range(6)]
    assert got == pytest.approx(expected)
    assert learn.lr_factor(9, 2, "cosine", 6) == pytest.approx(0.0)
    assert learn.lr_factor(0, 0, "constant", 0) == 1.0


def test_make_optimizer_drives_adamw_with_the_schedule():
    w = torch.nn.Parameter(torch.ones(3))
    opt, sched = learn.make_optimizer([w], lr=0.1, weight_decay=0.01, warmup_steps=4)
    assert isinstance(opt, torch.optim.AdamW) and opt.defaults["weight_decay"] == 0.01
    lrs = []
    for _ in range(5):
        lrs.append(sched.get_last_lr()[0])
        sched.step()
    assert lrs == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.1])


def test_step_clips_and_steps_or_skips_a_non_finite_gradient():
    w = torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.SGD([w], lr=1.0)
    learn.backward((w * torch.tensor([3.0, 4.0])).sum())  # gradient norm 5
    result = learn.step([w], opt, max_grad_norm=1.0)
    assert result == learn.StepResult(5.0, True)
    assert w.detach().tolist() == pytest.approx([-0.6, -0.8])  # clipped to norm 1
    opt.zero_grad()
    learn.backward((w * torch.tensor([float("nan"), 1.0])).sum())
    before = w.detach().clone()
    result = learn.step([w], opt, max_grad_norm=1.0)
    assert not result.stepped and math.isnan(result.grad_norm)
    assert torch.equal(w.detach(), before) and w.grad is None
    learn.backward(w.sum())
    assert not learn.step([w], opt, 1.0, loss=float("inf")).stepped
    assert torch.equal(w.detach(), before)
