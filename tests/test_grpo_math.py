"""GRPO math against hand-computed values."""

import math

import pytest
import torch

from rlpost.algos.grpo import aggregate, clipped_token_loss, group_advantages, kl_k3


def test_group_advantages_hand_computed():
    r = torch.tensor([1.0, 0.0, 0.0, 1.0, 2.0, 2.0], dtype=torch.float64)
    g = torch.tensor([0, 0, 0, 0, 1, 1])
    adv = group_advantages(r, g, scale=True, eps=1e-4)
    # group 0: mean 0.5, unbiased std sqrt(1/3) = 0.57735
    s = math.sqrt(1 / 3)
    assert adv[:4].tolist() == pytest.approx([0.5 / (s + 1e-4), -0.5 / (s + 1e-4),
                                              -0.5 / (s + 1e-4), 0.5 / (s + 1e-4)])
    # group 1: all equal -> 0 advantage, no division blow-up
    assert adv[4:].tolist() == [0.0, 0.0]


def test_group_advantages_dr_grpo_no_std():
    r = torch.tensor([3.0, 1.0, 2.0], dtype=torch.float64)
    adv = group_advantages(r, torch.tensor([7, 7, 7]), scale=False)
    assert adv.tolist() == pytest.approx([1.0, -1.0, 0.0])


def test_kl_k3_values():
    logp = torch.tensor([-1.0, -2.0])
    ref = torch.tensor([-1.0, -1.5])
    kl = kl_k3(logp, ref)
    d = 0.5
    assert kl.tolist() == pytest.approx([0.0, math.exp(d) - d - 1])
    assert (kl_k3(torch.randn(100), torch.randn(100)) >= 0).all()


def test_clipped_loss_hand_computed():
    logp = torch.log(torch.tensor([[0.5, 0.3]]))
    old = torch.log(torch.tensor([[0.25, 0.3]]))  # ratios 2.0 and 1.0
    loss, clipped = clipped_token_loss(logp, old, torch.tensor([1.0]), 0.2, 0.2)
    # positive advantage: ratio 2 clipped to 1.2
    assert loss.tolist()[0] == pytest.approx([-1.2, -1.0])
    assert clipped.tolist() == [[True, False]]
    loss, clipped = clipped_token_loss(logp, old, torch.tensor([-1.0]), 0.2, 0.2)
    # negative advantage: min(2 * -1, 1.2 * -1) = -2 -> loss 2 (unclipped side is taken)
    assert loss.tolist()[0] == pytest.approx([2.0, 1.0])
    assert clipped.tolist() == [[False, False]]


def test_on_policy_gradient_is_policy_gradient():
    """With old = logp.detach() the loss gradient is -A * grad logp (ratio 1)."""
    logits = torch.randn(1, 3, 5, requires_grad=True)
    logp = torch.log_softmax(logits, -1)[..., 0]
    loss, _ = clipped_token_loss(logp, logp.detach(), torch.tensor([2.0]), 0.2, 0.2)
    loss.sum().backward()
    g1 = logits.grad.clone()
    logits.grad = None
    (-2.0 * torch.log_softmax(logits, -1)[..., 0]).sum().backward()
    assert torch.allclose(g1, logits.grad)


@pytest.mark.parametrize("agg", ["seq-mean-token-mean", "token-mean", "seq-mean-token-sum-norm"])
def test_aggregate_hand_computed_and_accumulation(agg):
    x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 0.0, 0.0]])
    m = torch.tensor([[True, True, True], [True, False, False]])
    full = aggregate(x, m, agg, n_seqs=2, n_tokens=4, max_tokens=8)
    expected = {"seq-mean-token-mean": (2.0 + 4.0) / 2, "token-mean": 10.0 / 4,
                "seq-mean-token-sum-norm": 10.0 / (2 * 8)}[agg]
    assert float(full) == pytest.approx(expected)
    # micro-batches with the minibatch normalisers add up to the full loss
    parts = aggregate(x[:1], m[:1], agg, 2, 4, 8) + aggregate(x[1:], m[1:], agg, 2, 4, 8)
    assert float(parts) == pytest.approx(expected)


def test_aggregate_rejects_unknown():
    with pytest.raises(ValueError):
        aggregate(torch.zeros(1, 1), torch.ones(1, 1, dtype=torch.bool), "bogus", 1, 1, 1)
