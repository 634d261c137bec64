"""GRPO's update as shipped: direction, asymmetric clipping off-policy, the KL term, and exact
accumulation over micro-batches, through `grpo.update` (the step `train` calls) and through
`train` itself, on a tiny random model so gradients can be compared exactly.

Each expected value comes from the formulas written out here in plain torch (DeepSeekMath
GRPO, eq. 3; the k3 KL estimator), not from the functions under test.
"""

from __future__ import annotations

import math

import pytest
import torch

from rlpost.algos import advantages, grpo
from rlpost.algos.batch import Row
from rlpost.algos.grpo import GRPOConfig, update
from rlpost.policy import action_logprobs, rows_logprobs
from rlpost.types import Message
from scripted import NO, YES, ChoiceEnv, MenuGenerator, train_on_choices

BIG = 1e9  # max_grad_norm that never clips


def _prompt(policy, text):
    return policy.encode_chat([Message("user", text)])


def _action(policy, text):
    end = policy.tokenizer.convert_tokens_to_ids("<|im_end|>")
    return policy.tokenizer(text, add_special_tokens=False)["input_ids"] + [end]


def _rows(policy):
    """Two groups sharing a prompt (one row with zero advantage) and two single rows, of
    different action lengths."""
    p1, p2 = _prompt(policy, "Pick a colour."), _prompt(policy, "Pick a number, any number.")
    p3 = _prompt(policy, "Say something short.")
    spec = [(p1, "red", 1.2), (p1, "a deep shade of blue", -0.7), (p1, "green", 0.0),
            (p2, "seven", 0.9), (p2, "forty two point five", -1.4),
            (p3, "hello there", 0.5), (_prompt(policy, "Another task."), "ok", -0.3)]
    return [Row(p, _action(policy, a), adv, []) for p, a, adv in spec]


def _grads(policy) -> dict[str, torch.Tensor]:
    return {n: p.grad.detach().clone() for n, p in policy.model.named_parameters()
            if p.grad is not None}


def _update_grads(policy, rows, ref=None, **cfg) -> tuple[dict[str, torch.Tensor], dict]:
    """Run `update` with a zero-lr SGD so the weights stay put and the gradients remain."""
    cfg = GRPOConfig(max_grad_norm=BIG, **cfg)
    opt = torch.optim.SGD(policy.trainable_parameters(), lr=0.0)
    copies = [Row(r.prompt_ids, r.action_ids, r.advantage, [], r.old_logp) for r in rows]
    stats = update(cfg, policy, ref, opt, copies)
    for r, c in zip(rows, copies):
        r.old_logp = c.old_logp
    return _grads(policy), stats


def _reference_grads(policy, loss_fn) -> dict[str, torch.Tensor]:
    policy.model.zero_grad(set_to_none=True)
    loss_fn().backward()
    grads = _grads(policy)
    policy.model.zero_grad(set_to_none=True)
    return grads


def _assert_close(a: dict, b: dict, rtol=1e-4):
    assert a.keys() == b.keys()
    num = sum(float((a[k] - b[k]).norm() ** 2) for k in a) ** 0.5
    den = sum(float(b[k].norm() ** 2) for k in b) ** 0.5
    assert den > 0 and num / den < rtol, (num, den)


def _padded_logp(policy, rows, model=None, temperature=1.0):
    lp, mask = action_logprobs(model or policy.model, [(r.prompt_ids, r.action_ids) for r in rows],
                               policy.tokenizer.pad_token_id, temperature=temperature)
    return lp, mask.float()


# --- exact accumulation -------------------------------------------------------------------


@pytest.mark.parametrize("agg", grpo.LOSS_AGGS)
def test_update_gradient_does_not_depend_on_the_micro_batch_size(tiny_policy, agg):
    rows = _rows(tiny_policy)
    t = 0.7  # logprobs at the sampling temperature: logits / T
    one, stats_one = _update_grads(tiny_policy, rows, loss_agg=agg, micro_batch_size=64,
                                   temperature=t)
    many, stats_many = _update_grads(tiny_policy, rows, loss_agg=agg, micro_batch_size=1,
                                     temperature=t)
    for r in rows:
        assert r.old_logp is None  # on-policy: no separate pass for behaviour logprobs
    _assert_close(many, one, rtol=1e-5)
    assert stats_many["loss/policy"] == pytest.approx(stats_one["loss/policy"], rel=1e-5)

    # ... and it is the gradient of the full-batch loss as the papers write it (on-policy:
    # ratio 1, so the loss is -A per token, aggregated)
    def loss():
        lp, m = _padded_logp(tiny_policy, rows, temperature=t)
        adv = torch.tensor([r.advantage for r in rows])[:, None]
        ratio = torch.exp(lp - lp.detach())
        per_tok = -ratio * adv * m
        if agg == "seq-mean-token-mean":
            return (per_tok.sum(1) / m.sum(1)).mean()
        if agg == "token-mean":
            return per_tok.sum() / m.sum()
        return per_tok.sum() / (len(rows) * GRPOConfig().max_tokens)

    _assert_close(one, _reference_grads(tiny_policy, loss))
    adv = [r.advantage for r in rows]
    n = [len(r.action_ids) for r in rows]
    expected = {"seq-mean-token-mean": -sum(adv) / len(rows),
                "token-mean": -sum(a * k for a, k in zip(adv, n)) / sum(n),
                "seq-mean-token-sum-norm": -sum(a * k for a, k in zip(adv, n))
                / (len(rows) * GRPOConfig().max_tokens)}[agg]
    assert stats_one["loss/policy"] == pytest.approx(expected, rel=1e-5)


# --- direction --------------------------------------------------------------------------


def _yes_no_logp(policy):
    """Mean over the tasks of the summed logprob of YES and of NO."""
    env = ChoiceEnv()
    rows = []
    for t in env.tasks("train"):
        env.reset(options={"task_id": t})
        p = policy.encode_chat(env.messages())
        rows += [(p, _action(policy, YES)), (p, _action(policy, NO))]
    with torch.no_grad():
        lp, _ = rows_logprobs(policy.model, rows, policy.tokenizer.pad_token_id)
    total = lp.sum(1)
    return float(total[0::2].mean()), float(total[1::2].mean())


@pytest.mark.parametrize("negate", [False, True])
def test_a_train_step_raises_the_rewarded_action_and_lowers_the_other(tiny_policy, tmp_path,
                                                                      monkeypatch, negate):
    """negate=True flips the advantages inside the loop (the bug this test exists for) and
    shows the assertion then fails the other way round."""
    if negate:
        shipped = advantages.group_advantages
        monkeypatch.setattr(advantages, "group_advantages", lambda *a, **k: -shipped(*a, **k))
    yes0, no0 = _yes_no_logp(tiny_policy)
    gen = MenuGenerator(tiny_policy.tokenizer)
    cfg = GRPOConfig(steps=1, tasks_per_step=2, group_size=4, lr=1e-3, eval_tasks=0)
    rows = train_on_choices(tiny_policy, gen, tmp_path, cfg)
    yes1, no1 = _yes_no_logp(tiny_policy)
    assert rows[-1]["reward/total"] == 0.5  # the menu alternates, so every group has signal
    assert rows[-1]["rollout/groups_without_signal"] == 0.0
    assert rows[-1]["lr"] == 1e-3 and "loss/kl" not in rows[-1]  # beta 0: no reference model
    sign = -1 if negate else 1
    assert sign * (yes1 - yes0) > 0.05 and sign * (no1 - no0) < -0.05, (yes0, yes1, no0, no1)
    assert gen.syncs == 2  # at the start (an engine may hold other weights), after the step


# --- clipping ---------------------------------------------------------------------------


def test_off_policy_ratios_are_clipped_with_asymmetric_bounds(tiny_policy):
    """Row A (advantage +1) has ratio 1.25, row B (advantage -1) ratio 0.85. With
    eps_low 0.1 and eps_high 0.3, A is inside [0.9, 1.3] and B below it: B's term is clipped
    (constant, no gradient) and only A's ratio term drives the update. Swapped bounds
    ([0.7, 1.1]) would clip A instead; no clipping would let B through."""
    p = _prompt(tiny_policy, "Pick a colour.")
    rows = [Row(p, _action(tiny_policy, "red"), 1.0, []),
            Row(p, _action(tiny_policy, "a deep shade of blue"), -1.0, [])]
    with torch.no_grad():
        now, _ = _padded_logp(tiny_policy, rows)
    for r, x, ratio in zip(rows, now, (1.25, 0.85)):
        r.old_logp = x[: len(r.action_ids)] - math.log(ratio)
    got, stats = _update_grads(tiny_policy, rows, clip_eps_low=0.1, clip_eps_high=0.3)

    def loss():  # only A's unclipped ratio term, seq-mean-token-mean over the two rows
        lp, m = _padded_logp(tiny_policy, rows[:1])
        ratio = torch.exp(lp - rows[0].old_logp[None])
        return -(ratio * m).sum() / m.sum() / 2

    _assert_close(got, _reference_grads(tiny_policy, loss))
    n_a, n_b = len(rows[0].action_ids), len(rows[1].action_ids)
    assert n_a != n_b
    assert stats["loss/clip_frac"] == pytest.approx(n_b / (n_a + n_b))
    # the loss value: A's -1.25 per token, B's clipped -min(-0.85, -0.9) = 0.9 per token
    assert stats["loss/policy"] == pytest.approx((-1.25 + 0.9) / 2, rel=1e-5)


def test_on_policy_nothing_is_clipped_and_off_policy_epochs_clip(tiny_policy):
    rows = _rows(tiny_policy)
    _, on = _update_grads(tiny_policy, rows)
    assert on["loss/clip_frac"] == 0.0
    cfg = GRPOConfig(epochs=3, lr=5e-2, clip_eps_low=0.01, clip_eps_high=0.01)
    stats = update(cfg, tiny_policy, None, torch.optim.AdamW(tiny_policy.trainable_parameters(),
                                                             lr=cfg.lr), rows)
    assert stats["loss/clip_frac"] > 0.1


@pytest.mark.parametrize("epochs, minibatches", [(2, 1), (1, 2)])
def test_off_policy_old_logprobs_are_taken_before_the_first_step(tiny_policy, epochs,
                                                                 minibatches):
    """With a second epoch or minibatch, its ratios are against the policy before the first
    step (at the sampling temperature), not after it."""
    rows = _rows(tiny_policy)
    with torch.no_grad():
        before, _ = _padded_logp(tiny_policy, rows, temperature=0.5)
    cfg = GRPOConfig(epochs=epochs, minibatches=minibatches, lr=1e-2, temperature=0.5)
    update(cfg, tiny_policy, None, torch.optim.AdamW(tiny_policy.trainable_parameters(), lr=1e-2),
           rows)
    for r, x in zip(rows, before):
        assert torch.allclose(r.old_logp, x[: len(r.action_ids)], atol=1e-5)
    with torch.no_grad():
        after, _ = _padded_logp(tiny_policy, rows, temperature=0.5)
    assert not torch.allclose(after, before, atol=1e-3)  # the steps did move the policy


def test_minibatches_split_each_epoch_and_leave_the_global_rng_alone(tiny_policy):
    """One row per minibatch: each of the 3 optimizer steps sees exactly one row, so the mean
    loss is -mean(A) (on a zero learning rate, ratios stay 1) whatever the order; the order
    comes from the update's own generator, not the global RNG."""
    rows = _rows(tiny_policy)[:3]
    for r, a in zip(rows, (1.0, 2.0, 4.0)):
        r.advantage = a
    state = torch.get_rng_state()
    _, stats = _update_grads(tiny_policy, rows, minibatches=3)
    assert stats["loss/policy"] == pytest.approx(-7 / 3, rel=1e-5)
    assert torch.equal(torch.get_rng_state(), state)



def test_every_row_is_in_exactly_one_minibatch_per_epoch(tiny_policy, monkeypatch):
    """3 rows in 2 minibatches: sizes 2 and 1 (ceil), each row once per epoch."""
    seen = []
    shipped = grpo._minibatch_step

    def spy(cfg, policy, use_kl, opt, minibatch, stats):
        seen.append(sorted(id(r) for r in minibatch))
        return shipped(cfg, policy, use_kl, opt, minibatch, stats)

    monkeypatch.setattr(grpo, "_minibatch_step", spy)
    rows = _rows(tiny_policy)[:3]
    cfg = GRPOConfig(minibatches=2, epochs=2)
    update(cfg, tiny_policy, None, torch.optim.SGD(tiny_policy.trainable_parameters(), lr=0.0),
           rows)
    assert [len(m) for m in seen] == [2, 1, 2, 1]
    ids = sorted(id(r) for r in rows)
    assert sorted(seen[0] + seen[1]) == ids and sorted(seen[2] + seen[3]) == ids


def test_the_minibatch_order_comes_from_the_seed(tiny_policy, monkeypatch):
    """One row per minibatch: the order is the seed's (the same seed, the same order; another
    seed, another), not a function of the batch size."""
    order = []
    shipped = grpo._minibatch_step

    def spy(cfg, policy, use_kl, opt, minibatch, stats):
        order.append(id(minibatch[0]))
        return shipped(cfg, policy, use_kl, opt, minibatch, stats)

    monkeypatch.setattr(grpo, "_minibatch_step", spy)
    rows = _rows(tiny_policy)
    opt = torch.optim.SGD(tiny_policy.trainable_parameters(), lr=0.0)
    runs = []
    for seed in (5, 5, 6):
        order.clear()
        update(GRPOConfig(minibatches=len(rows)), tiny_policy, None, opt, rows, seed=seed)
        runs.append(list(order))
    assert runs[0] == runs[1] and runs[0] != runs[2]
    assert sorted(runs[0]) == sorted(id(r) for r in rows)


def test_gradient_norm_is_logged_and_clipped(tiny_policy):
    rows = _rows(tiny_policy)
    grads, stats = _update_grads(tiny_policy, rows)  # max_grad_norm never clips here
    norm = sum(float(g.norm() ** 2) for g in grads.values()) ** 0.5
    assert stats["loss/grad_norm"] == pytest.approx(norm, rel=1e-5) and norm > 1e-3
    # with a cap, SGD moves the weights by lr * grad * cap / norm
    before = {k: v.detach().clone() for k, v in tiny_policy.model.named_parameters()}
    cfg = GRPOConfig(max_grad_norm=norm / 10)
    stats = update(cfg, tiny_policy, None, torch.optim.SGD(tiny_policy.trainable_parameters(),
                                                           lr=1.0), rows)
    assert stats["loss/grad_norm"] == pytest.approx(norm, rel=1e-5)  # the norm before clipping
    after = dict(tiny_policy.model.named_parameters())  # tied weights counted once
    moved = sum(float((after[k] - before[k]).norm() ** 2) for k in before) ** 0.5
    assert moved == pytest.approx(norm / 10, rel=1e-3)


# --- KL ---------------------------------------------------------------------------------


def test_kl_term_adds_beta_times_the_k3_gradient(tiny_policy, tiny_model_path):
    from rlpost.policy import Policy

    ref = Policy(tiny_model_path, autocast=None).model
    torch.manual_seed(1)
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(0.05 * torch.randn_like(p))
    rows = _rows(tiny_policy)
    g0, s0 = _update_grads(tiny_policy, rows, ref=None, temperature=0.8)
    g1, s1 = _update_grads(tiny_policy, rows, ref=ref, beta=0.3, temperature=0.8)
    assert all(r.old_logp is None for r in rows)  # on-policy: only the reference pass runs

    def kl_loss():  # beta * seq-mean-token-mean of k3 = exp(ref - logp) - (ref - logp) - 1
        lp, m = _padded_logp(tiny_policy, rows, temperature=0.8)
        with torch.no_grad():
            ref_lp, _ = _padded_logp(tiny_policy, rows, model=ref, temperature=0.8)
        d = ref_lp - lp
        k3 = (torch.exp(d) - d - 1) * m
        return 0.3 * (k3.sum(1) / m.sum(1)).mean()

    g_kl = _reference_grads(tiny_policy, kl_loss)
    _assert_close({k: g1[k] - g0[k] for k in g0}, g_kl, rtol=1e-3)
    lp, m = _padded_logp(tiny_policy, rows, temperature=0.8)
    with torch.no_grad():
        d = _padded_logp(tiny_policy, rows, model=ref, temperature=0.8)[0] - lp
        token_mean_kl = float(((torch.exp(d) - d - 1) * m).sum() / m.sum())
    assert s1["loss/kl"] == pytest.approx(token_mean_kl, rel=1e-4) and token_mean_kl > 1e-4
    assert "loss/kl" not in s0
