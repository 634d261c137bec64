"""The bounds of the losses (the bug cases of unbounded exponentials), the dual clip, per-token
advantages and truncated importance sampling, against values computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from rlpost.algos.losses import (
    KL_BOUND,
    LOG_RATIO_BOUND,
    clipped_token_loss,
    kl_k3,
    sft_loss,
    tis_weights,
)


def test_kl_k3_is_bounded_at_large_log_ratios():
    logp = torch.zeros(4)
    ref = torch.tensor([1.0, 5.0, 20.0, 90.0])  # the bug case: 20 gave ~5e8, 90 gave inf
    kl = kl_k3(logp, ref)
    assert kl[0].item() == pytest.approx(math.e - 2)
    assert kl[1].item() == KL_BOUND and kl[2].item() == KL_BOUND and kl[3].item() == KL_BOUND
    assert torch.isfinite(kl).all()
    # the other side: exp(-d) stays small, -d grows linearly, clamped at KL_BOUND
    assert kl_k3(torch.zeros(1), torch.tensor([-8.0])).item() == pytest.approx(math.exp(-8) + 7)
    assert kl_k3(torch.zeros(1), torch.tensor([-500.0])).item() == KL_BOUND


def test_log_ratio_is_bounded_before_exp():
    logp, old = torch.tensor([[100.0]]), torch.tensor([[0.0]])
    loss, _ = clipped_token_loss(logp, old, torch.tensor([-1.0]), 0.2, 0.2)
    assert loss.item() == pytest.approx(math.exp(LOG_RATIO_BOUND))
    assert torch.isfinite(loss).all()


def test_dual_clip_bounds_negative_advantages_only():
    # ratio e^10 with advantage -2: the bug case gave a per-token loss of ~44,000
    logp, old = torch.tensor([[10.0, 10.0, 0.5]]), torch.tensor([[0.0, 0.0, 0.0]])
    adv = torch.tensor([[-2.0, 2.0, -2.0]])
    plain, _ = clipped_token_loss(logp, old, adv, 0.2, 0.2)
    assert plain[0, 0].item() == pytest.approx(2 * math.exp(10))
    loss, clipped = clipped_token_loss(logp, old, adv, 0.2, 0.2, dual_clip=3.0)
    # token 0: -A * c = 6; token 1 (A > 0): clip at 1.2 * 2 -> -2.4; token 2: ratio e^0.5 =
    # 1.65 < 3, the ordinary max(-r A, -clip(r) A) = 2 * 1.6487
    assert loss[0].tolist() == pytest.approx([6.0, -2.4, 2 * math.exp(0.5)])
    assert clipped[0].tolist() == [True, True, False]
    with pytest.raises(ValueError, match="dual_clip must be > 1"):
        clipped_token_loss(logp, old, adv, 0.2, 0.2, dual_clip=1.0)


def test_per_token_advantages_equal_per_row_broadcast_and_weight_each_token():
    logp = torch.log(torch.tensor([[0.5, 0.3], [0.2, 0.4]]))
    old = torch.log(torch.tensor([[0.25, 0.3], [0.2, 0.5]]))
    row, _ = clipped_token_loss(logp, old, torch.tensor([1.0, -1.0]), 0.2, 0.2)
    tok, _ = clipped_token_loss(logp, old, torch.tensor([[1.0, 1.0], [-1.0, -1.0]]), 0.2, 0.2)
    assert torch.equal(row, tok)
    mixed, _ = clipped_token_loss(logp, old, torch.tensor([[1.0, -3.0], [0.5, 2.0]]), 0.2, 0.2)
    # ratios 2 (clipped to 1.2 for A > 0), 1, 1, 0.8 (A > 0: min(0.8 * 2, 0.8 * 2))
    torch.testing.assert_close(mixed, torch.tensor([[-1.2, 3.0], [-0.5, -1.6]]))


@pytest.mark.parametrize("mode, expected", [
    ("token_truncate", [[math.exp(0.5), 3.0, 1.0], [math.exp(-1.0), 1.0, 1.0]]),
    ("token_mask", [[math.exp(0.5), 0.0, 1.0], [math.exp(-1.0), 1.0, 1.0]]),
    ("sequence_truncate", [[3.0], [math.exp(-1.0)]]),
    ("sequence_mask", [[0.0], [math.exp(-1.0)]]),
])
def test_tis_weights_hand_computed(mode, expected):
    old = torch.tensor([[-1.0, -0.5, -9.0], [-2.0, -1.0, 0.0]])
    sample = torch.tensor([[-1.5, -2.0, 0.0], [-1.0, -1.0, 0.0]])  # diffs 0.5, 1.5 | -1, 0
    mask = torch.tensor([[True, True, False], [True, True, False]])
    w = tis_weights(old, sample, mask, mode, cap=3.0)
    # token diffs exp: 1.6487, 4.48 (> 3), masked -> 1; row sums 2.0 -> e^2 = 7.39 > 3, -1
    torch.testing.assert_close(w, torch.tensor(expected))
    assert not w.requires_grad


def test_tis_weights_reject_unknown_mode():
    with pytest.raises(ValueError, match="unknown TIS mode 'token'"):
        tis_weights(torch.zeros(1, 1), torch.zeros(1, 1), torch.ones(1, 1, dtype=torch.bool),
                    "token", 3.0)


def test_sft_loss_is_the_weighted_token_mean_nll():
    lp = torch.tensor([-1.0, -2.0, -4.0])
    assert sft_loss(lp, torch.tensor([1.0, 0.0, 3.0])).item() == pytest.approx(13 / 4)
