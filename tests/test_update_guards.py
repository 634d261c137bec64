"""The update's view of the generator: the trainer/generator logprob gap, the truncated
importance-sampling correction, and the guard against non-finite steps (the bug case: a NaN
reward turned every parameter NaN and was synced into vLLM)."""

from __future__ import annotations

import math

import pytest
import torch
from test_grpo_update import BIG, _padded_logp, _rows

from rlpost.algos.batch import Row
from rlpost.algos.grpo import GRPOConfig, update


def _with_samples(policy, rows, shift):
    """Copies of `rows` whose sampling logprobs are the trainer's minus `shift` per token."""
    with torch.no_grad():
        now, _ = _padded_logp(policy, rows)
    return [Row(r.prompt_ids, r.action_ids, r.advantage,
                (now[i, : len(r.action_ids)] - s).tolist())
            for i, (r, s) in enumerate(zip(rows, shift))]


def _run(policy, rows, lr=0.0, **cfg):
    opt = torch.optim.SGD(policy.trainable_parameters(), lr=lr)
    policy.model.zero_grad(set_to_none=True)
    stats = update(GRPOConfig(max_grad_norm=BIG, **cfg), policy, None, opt, rows)
    grads = {n: p.grad.clone() for n, p in policy.model.named_parameters() if p.grad is not None}
    return stats, grads


def test_logprob_gap_is_the_mean_and_max_absolute_difference(tiny_policy):
    rows = _rows(tiny_policy)
    shifts = [0.1, -0.3, 0.0, 0.2, 0.1, -0.1, 0.05]
    sampled = _with_samples(tiny_policy, rows, shifts)
    sampled[2] = Row(rows[2].prompt_ids, rows[2].action_ids, 0.0, [])  # no sampling logprobs
    stats, _ = _run(tiny_policy, sampled)
    n = [len(r.action_ids) for r in rows]
    # row 2 has advantage 0 (not computed) and no samples; every other row's tokens count
    expected = sum(abs(s) * k for i, (s, k) in enumerate(zip(shifts, n)) if i != 2) / (
        sum(n) - n[2])
    assert stats["rollout/logprob_gap"] == pytest.approx(expected, abs=1e-5)
    assert stats["rollout/logprob_gap_max"] == pytest.approx(0.3, abs=1e-5)


@pytest.mark.parametrize("mode", ["token_truncate", "sequence_truncate"])
def test_tis_weights_scale_each_rows_policy_gradient(tiny_policy, mode):
    rows = _rows(tiny_policy)
    _, plain = _run(tiny_policy, _with_samples(tiny_policy, rows, [0.0] * len(rows)))
    # generator logprobs above the trainer's by log 2 per token: weight 1/2 per token
    # (token mode) or 2^-len per row (sequence mode)
    half = _with_samples(tiny_policy, rows, [-math.log(2)] * len(rows))
    stats, got = _run(tiny_policy, half, tis=mode, tis_cap=3.0)
    if mode == "token_truncate":
        for k in plain:
            torch.testing.assert_close(got[k], 0.5 * plain[k], rtol=1e-4, atol=1e-7)
        assert stats["loss/tis_weight"] == pytest.approx(0.5, rel=1e-5)
    else:
        n = [len(r.action_ids) for r in rows if r.advantage != 0]
        assert stats["loss/tis_weight"] == pytest.approx(
            sum(k * 2.0 ** -k for k in n) / sum(n), rel=1e-4)
    # far below the trainer's: the weight is truncated at the cap
    low = _with_samples(tiny_policy, rows, [5.0] * len(rows))
    stats, got = _run(tiny_policy, low, tis="token_truncate", tis_cap=3.0)
    for k in plain:
        torch.testing.assert_close(got[k], 3.0 * plain[k], rtol=1e-4, atol=1e-7)
    _, masked = _run(tiny_policy, low, tis="token_mask", tis_cap=3.0)
    assert all(float(g.abs().max()) == 0.0 for g in masked.values())


def test_a_non_finite_step_is_skipped_and_counted(tiny_policy):
    rows = _rows(tiny_policy)
    rows[0].advantage = math.nan
    before = {n: p.detach().clone() for n, p in tiny_policy.model.named_parameters()}
    stats = update(GRPOConfig(lr=0.1), tiny_policy, None,
                   torch.optim.AdamW(tiny_policy.trainable_parameters(), lr=0.1), rows)
    assert stats["loss/skipped_steps"] == 1.0 and math.isnan(stats["loss/policy"])
    assert all(torch.equal(before[n], p) for n, p in tiny_policy.model.named_parameters())
    rows[0].advantage = 1.0
    stats = update(GRPOConfig(lr=0.1), tiny_policy, None,
                   torch.optim.AdamW(tiny_policy.trainable_parameters(), lr=0.1), rows)
    assert stats["loss/skipped_steps"] == 0.0
    assert not all(torch.equal(before[n], p) for n, p in tiny_policy.model.named_parameters())
