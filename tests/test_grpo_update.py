"""GRPO's update as shipped: direction, asymmetric clipping off-policy, the KL term, and exact
accumulation over micro-batches, through `grpo.update` (the step `train` calls) and through
`train` itself, on a tiny random model so gradients can be compared exactly.

Each expected value comes from the formulas written out here in plain torch (DeepSeekMath
GRPO, eq. 3; the k3 KL estimator), not from the functions under test.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from rlpost.algos import advantages, grpo
from rlpost.algos.batch import Row
from rlpost.algos.grpo import GRPOConfig, GRPORun, train, update
from rlpost.runner import Runner
from rlpost.policy import action_logprobs, rows_logprobs
from rlpost.reward import Rubric
from rlpost.track import Tracker, read_metrics
from rlpost.types import Message
from rlpost.env import env_tasks, turn_limit
from rlpost.seeds import derive_seed
from scripted import NO, YES, ChoiceEnv, MenuGenerator, limited

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


def _train(policy, generator, run_dir, cfg, stop_after=None, resume_step=None, n_test=0,
           envs=None, max_prompt_tokens=None, out=None):
    """Train on ChoiceEnv; returns the logged metrics (train's own result goes to out[0])."""
    envs = envs or [ChoiceEnv(n_test=n_test) for _ in range(cfg.tasks_per_step * cfg.group_size)]
    envs = [e if turn_limit(e) else limited(e) for e in envs]
    with Tracker(run_dir, backends=("jsonl",), resume_step=resume_step) as tracker:
        runner = Runner(envs, generator, policy.encode_chat, max_prompt_tokens)
        run = GRPORun(policy=policy, runner=runner, rubric=Rubric(),
                      train_tasks=env_tasks(envs[0], "train"),
                      eval_tasks=env_tasks(envs[0], "test"),
                      tracker=tracker, run_dir=run_dir, seed=3)
        result = train(cfg, run, stop_after=stop_after)
    if out is not None:
        out.append(result)
    return read_metrics(run_dir)


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
    rows = _train(tiny_policy, gen, tmp_path, cfg)
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


def test_train_uses_the_initial_policy_as_kl_reference(tiny_policy, tiny_model_path, tmp_path):
    """beta > 0 in the loop: step 1 has KL exactly 0 (policy = reference), step 2 a positive
    KL, and the weights end elsewhere than without the KL term."""
    from rlpost.policy import Policy

    cfg = dict(steps=2, tasks_per_step=2, group_size=4, lr=1e-2, eval_tasks=0)
    with_kl = _train(tiny_policy, MenuGenerator(tiny_policy.tokenizer), tmp_path / "kl",
                     GRPOConfig(beta=2.0, **cfg))
    assert with_kl[1]["loss/kl"] == 0.0 and with_kl[2]["loss/kl"] > 1e-4
    plain = Policy(tiny_model_path, autocast=None)
    _train(plain, MenuGenerator(plain.tokenizer), tmp_path / "plain", GRPOConfig(**cfg))
    a, b = dict(tiny_policy.named_tensors()), dict(plain.named_tensors())
    assert max(float((a[k] - b[k]).abs().max()) for k in a) > 1e-4


# --- evaluation and samples ----------------------------------------------------------------


def test_greedy_eval_runs_in_chunks_of_the_env_pool_and_weights_them(tiny_policy, tmp_path):
    """4 envs, 5 eval tasks: chunks of 4 and 1. The menu answers YES to every other prompt of a
    call, so the chunks score 2/4 and 1/1: 3/5 over the tasks (an unweighted mean would be 3/4)."""
    gen = MenuGenerator(tiny_policy.tokenizer)
    cfg = GRPOConfig(steps=3, tasks_per_step=2, group_size=2, lr=1e-3, eval_every=2, eval_tasks=5,
                     samples_per_step=3, max_tokens=9)
    out = []
    rows = _train(tiny_policy, gen, tmp_path, cfg, n_test=6, out=out)
    evals = {r["step"]: r for r in rows if "eval/success" in r}
    assert out[0] == {k: v for k, v in evals[3].items() if k.startswith("eval/")}
    assert list(evals) == [0, 2, 3]  # before training, every eval_every steps, at the end
    for r in evals.values():
        assert r["eval/success"] == pytest.approx(0.6) and r["eval/total"] == pytest.approx(0.6)
        assert r["eval/env/said_yes"] == pytest.approx(0.6) and r["eval/turns"] == 1.0
    assert "eval/accuracy" not in evals[0]  # the metric says what it measures
    # eval before step 1; steps 1, 2, 3 train on 4 rollouts; evals after steps 2 and 3
    assert gen.calls == [4, 1, 4, 4, 4, 1, 4, 4, 1]
    from rlpost.generate import GenParams

    greedy = GenParams(temperature=0.0, max_tokens=cfg.max_tokens)
    unseeded = [replace(x, seed=None) for x in gen.params]
    assert unseeded[:2] == [greedy, greedy] and gen.params[2].temperature == 1.0
    rows = _train(tiny_policy, MenuGenerator(tiny_policy.tokenizer), tmp_path / "b",
                  GRPOConfig(steps=1, tasks_per_step=2, group_size=2, eval_tasks=4), n_test=6)
    assert rows[0]["eval/success"] == 0.5 and rows[1]["eval/success"] == 0.5


def test_samples_record_prompt_completion_reward_and_advantage(tiny_policy, tmp_path):
    import json

    from rlpost.checkpoint import TaskSampler

    cfg = GRPOConfig(steps=2, tasks_per_step=2, group_size=2, lr=1e-3, eval_tasks=0,
                     samples_per_step=3, adv_eps=0.25)
    _train(tiny_policy, MenuGenerator(tiny_policy.tokenizer), tmp_path, cfg)
    samples = [json.loads(x) for x in (tmp_path / "samples.jsonl").read_text().splitlines()]
    assert [s["step"] for s in samples] == [1, 1, 1, 2, 2, 2]
    # group of rewards (1, 0): centred +-0.5 over the unbiased std (float64) plus adv_eps
    a = float(0.5 / (torch.tensor([1.0, 0.0], dtype=torch.float64).std() + 0.25))
    for s in samples:
        yes = s["completion"] == YES
        assert s["reward"] == s["r/env"] == s["r/env/said_yes"] == float(yes)
        assert s["advantage"] == (a if yes else -a)
        task = int(s["task_id"])
        assert s["prompt"] == tiny_policy.tokenizer.decode(
            tiny_policy.encode_chat([Message("user", f"Task {task}: answer yes or no.")]))
    assert [s["completion"] for s in samples[:3]] == [YES, NO, YES]
    draws = TaskSampler(ChoiceEnv().tasks("train"), seed=3)  # the run's seed
    first, second = draws.sample(2), draws.sample(2)
    assert [int(s["task_id"]) for s in samples] == [first[0], first[0], first[1],
                                                     second[0], second[0], second[1]]


def test_dr_grpo_advantages_are_not_scaled(tiny_policy, tmp_path):
    import json

    cfg = GRPOConfig(steps=1, tasks_per_step=2, group_size=2, eval_tasks=0, samples_per_step=4,
                     scale_rewards=False)
    _train(tiny_policy, MenuGenerator(tiny_policy.tokenizer), tmp_path, cfg)
    samples = [json.loads(x) for x in (tmp_path / "samples.jsonl").read_text().splitlines()]
    assert [s["advantage"] for s in samples] == [0.5, -0.5, 0.5, -0.5]


def test_the_loop_passes_its_settings_to_rollouts_and_logs_timings(tiny_policy, tmp_path):
    from rlpost.checkpoint import TaskSampler
    from rlpost.generate import GenParams

    cfg = GRPOConfig(steps=2, tasks_per_step=2, group_size=2, eval_tasks=0, temperature=0.7,
                     top_p=0.9, max_tokens=5)
    gen = MenuGenerator(tiny_policy.tokenizer)
    envs = [ChoiceEnv() for _ in range(4)]
    rows = _train(tiny_policy, gen, tmp_path, cfg, envs=envs)
    # each turn's call is seeded from the rollout's seed (reproducible sampling)
    assert [replace(x, seed=None) for x in gen.params] == [GenParams(0.7, 0.9, 5)] * 2
    # the step's seed comes from the run's; the batch is one chunk of the runner
    step_seeds = [derive_seed(derive_seed(3, "rollout", step), "chunk", 0) for step in (1, 2)]
    assert [x.seed for x in gen.params] == [derive_seed(s, "turn", 1) for s in step_seeds]
    # the G copies of each group share its reset seed, derived from the step's and its index
    for k in (0, 1):
        reset = [derive_seed(step_seeds[k], "reset", g) for g in (0, 1)]
        assert [e.resets[k][0] for e in envs] == [reset[0]] * 2 + [reset[1]] * 2
    # greedy evals run in chunks of the pool: chunk c resets with seeds derived from the eval's
    evals = [ChoiceEnv(n_test=3) for _ in range(2)]
    _train(tiny_policy, MenuGenerator(tiny_policy.tokenizer), tmp_path / "eval",
           GRPOConfig(steps=1, tasks_per_step=1, group_size=2, eval_tasks=3), envs=evals)
    task = TaskSampler(evals[0].tasks("train"), seed=3).sample(1)[0]
    ev = [derive_seed(derive_seed(3, "eval"), "chunk", c) for c in (0, 1)]
    e00, e01, e10 = (derive_seed(ev[0], "reset", 0), derive_seed(ev[0], "reset", 1),
                     derive_seed(ev[1], "reset", 0))
    s1 = derive_seed(step_seeds[0], "reset", 0)
    assert [e.resets for e in evals] == [[(e00, 100), (e10, 102), (s1, task), (e00, 100),
                                          (e10, 102)], [(e01, 101), (s1, task), (e01, 101)]]
    for r in rows[1:]:
        parts = r["perf/rollout_s"] + r["perf/update_s"] + r["perf/sync_s"]
        assert 0 < r["perf/rollout_s"] and 0 < r["perf/update_s"] and 0 < r["perf/sync_s"]
        assert r["perf/step_s"] == pytest.approx(parts) and r["perf/step_s"] < 60
        assert r["perf/rollout_tokens_per_s"] == pytest.approx(r["rollout/tokens"]
                                                               / r["perf/rollout_s"])
        assert r["rollout/tokens"] == 2 * (len(_action(tiny_policy, YES))
                                           + len(_action(tiny_policy, NO)))


def test_a_batch_truncated_before_acting_trains_nothing(tiny_policy, tmp_path):
    import json

    before = {k: v.clone() for k, v in tiny_policy.named_tensors()}
    gen = MenuGenerator(tiny_policy.tokenizer)
    cfg = GRPOConfig(steps=1, tasks_per_step=2, group_size=2, eval_tasks=2)
    rows = _train(tiny_policy, gen, tmp_path, cfg, max_prompt_tokens=3, n_test=2)
    assert gen.calls == [] and rows[1]["rollout/truncated"] == 1.0  # evals too: no call at all
    assert rows[0]["eval/truncated"] == 1.0 and rows[0]["eval/success"] == 0.0
    assert "loss/policy" not in rows[1]
    assert all(torch.equal(before[k], v) for k, v in tiny_policy.named_tensors())
    samples = [json.loads(x) for x in (tmp_path / "samples.jsonl").read_text().splitlines()]
    assert [(s["prompt"], s["completion"]) for s in samples] == [("", ""), ("", "")]


def test_saves_every_k_steps_and_at_the_end_and_a_finished_run_is_a_no_op(tiny_policy, tmp_path):
    import json

    gen = MenuGenerator(tiny_policy.tokenizer)
    cfg = GRPOConfig(steps=3, tasks_per_step=2, group_size=2, eval_tasks=0, save_every=2,
                     lr=3e-4, weight_decay=0.25)
    _train(tiny_policy, gen, tmp_path, cfg, stop_after=2)
    assert json.loads((tmp_path / "checkpoint" / "state.json").read_text()) == {"step": 2}
    opt = torch.load(tmp_path / "checkpoint" / "trainer.pt", weights_only=False)["optimizer"]
    assert [(g["lr"], g["weight_decay"]) for g in opt["param_groups"]] == [(3e-4, 0.25)]
    _train(tiny_policy, gen, tmp_path, cfg, resume_step=2)
    assert json.loads((tmp_path / "checkpoint" / "state.json").read_text()) == {"step": 3}
    out = []
    rows = _train(tiny_policy, gen, tmp_path, cfg, resume_step=3, out=out)
    assert out == [{}] and [r["step"] for r in rows] == [0, 1, 2, 3]


def test_the_turn_limit_given_to_make_overrides_the_registered_one(tiny_policy, tmp_path):
    """GuessNumber (registered limit 6) never ends on the menu's answers (no number in them):
    episodes run to the limit given to make, else to the registered one."""
    from rlpost.env import make

    for max_turns, turns in ((2, 2.0), (None, 6.0)):
        envs = [make("rlpost/GuessNumber-v0", max_turns=max_turns) for _ in range(4)]
        cfg = GRPOConfig(steps=1, tasks_per_step=2, group_size=2, eval_tasks=0)
        with Tracker(tmp_path / str(max_turns), backends=("jsonl",)) as tracker:
            runner = Runner(envs, MenuGenerator(tiny_policy.tokenizer), tiny_policy.encode_chat)
            run = GRPORun(policy=tiny_policy, runner=runner, rubric=Rubric(), train_tasks=env_tasks(envs[0], "train"),
                          eval_tasks=[], tracker=tracker, run_dir=tmp_path / str(max_turns))
            train(cfg, run)
        row = read_metrics(tmp_path / str(max_turns))[1]
        assert row["rollout/turns"] == turns and row["rollout/truncated"] == 1.0
