"""GRPO math against hand-computed values."""

import math

import pytest
import torch

from rlpost.algos.advantages import group_advantages
from rlpost.algos.losses import aggregate, clipped_token_loss, kl_k3


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


def test_group_advantages_defaults_singletons_and_pairs():
    r = torch.tensor([2.0, 0.0, 5.0, 1.0, 3.0], dtype=torch.float64)
    adv = group_advantages(r, torch.tensor([0, 0, 1, 2, 2]))  # scale=True, eps=1e-4 by default
    pair = 1.0 / (2 ** 0.5 + 1e-4)  # (2, 0): centred +-1, unbiased std sqrt(2)
    assert adv.tolist() == pytest.approx([pair, -pair, 0.0, -pair, pair], rel=1e-12)
    assert adv[2].item() == 0.0  # a group of one has no spread: advantage 0, not NaN
    assert group_advantages(r, torch.tensor([0, 0, 1, 2, 2]), eps=1.0).tolist() == \
        pytest.approx([1 / (2 ** 0.5 + 1), -1 / (2 ** 0.5 + 1), 0.0, -1 / (2 ** 0.5 + 1),
                       1 / (2 ** 0.5 + 1)])


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


def test_aggregate_single_token_and_empty_minibatch():
    x, m = torch.tensor([[3.0]]), torch.tensor([[True]])
    assert float(aggregate(x, m, "token-mean", 1, 1, 8)) == 3.0
    assert float(aggregate(x, m, "seq-mean-token-mean", 1, 1, 8)) == 3.0
    nothing = torch.tensor([[False]])  # no tokens: 0, not a division by zero
    assert float(aggregate(x, nothing, "token-mean", 1, 0, 8)) == 0.0
    assert float(aggregate(x, nothing, "seq-mean-token-mean", 1, 0, 8)) == 0.0


def test_aggregate_rejects_unknown():
    with pytest.raises(ValueError, match="unknown loss_agg 'bogus'"):
        aggregate(torch.zeros(1, 1), torch.ones(1, 1, dtype=torch.bool), "bogus", 1, 1, 1)


@pytest.mark.parametrize("bad, message", [
    (dict(steps=0), "algo: steps must be >= 1"),
    (dict(tasks_per_step=0), "algo: tasks_per_step must be >= 1"),
    (dict(group_size=1), "algo: group_size must be >= 2 (advantages are group-relative)"),
    (dict(lr=0.0), "algo: lr must be finite and > 0"),
    (dict(lr=float("inf")), "algo: lr must be finite and > 0"),
    (dict(beta=-0.1), "algo: beta must be >= 0"),
    (dict(epochs=0), "algo: epochs and minibatches must be >= 1"),
    (dict(minibatches=0), "algo: epochs and minibatches must be >= 1"),
    (dict(micro_batch_size=0), "algo: micro_batch_size must be >= 1"),
    (dict(max_tokens=0), "algo: max_tokens must be >= 1"),
    (dict(temperature=-1.0), "algo: temperature must be finite and >= 0"),
    (dict(temperature=float("inf")), "algo: temperature must be finite and >= 0"),
    (dict(top_p=0.0), "algo: top_p must be in (0, 1]"),
    (dict(top_p=1.01), "algo: top_p must be in (0, 1]"),
    (dict(eval_every=0), "algo: eval_every and save_every must be >= 1"),
    (dict(save_every=0), "algo: eval_every and save_every must be >= 1"),
    (dict(loss_agg="sum"), "algo: loss_agg must be one of seq-mean-token-mean, token-mean, "
                           "seq-mean-token-sum-norm"),
])
def test_config_validation_messages(bad, message):
    from rlpost.algos.grpo import GRPOConfig
    from rlpost.errors import RlpostError

    with pytest.raises(RlpostError) as e:
        GRPOConfig(**bad).validate()
    assert str(e.value) == message


def test_config_validation_accepts_the_boundaries():
    from rlpost.algos.grpo import GRPOConfig

    GRPOConfig(steps=1, tasks_per_step=1, group_size=2, lr=1e-9, beta=0.0, epochs=1,
               minibatches=1, micro_batch_size=1, max_tokens=1, temperature=0.0, eval_every=1,
               save_every=1).validate()
