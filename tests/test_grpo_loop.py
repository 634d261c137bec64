"""The shipped GRPO loop on the tiny model with scripted envs and a menu generator: the KL
reference, evaluation in chunks of the runner's pool, samples, the settings passed to rollouts
and their derived seeds, truncation before acting, checkpoints, the turn limit."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from rlpost.algos.grpo import GRPOConfig, GRPORun, train
from rlpost.env import env_tasks
from rlpost.reward import Rubric
from rlpost.runner import Runner
from rlpost.seeds import derive_seed
from rlpost.track import Tracker, read_metrics
from rlpost.types import Message
from scripted import NO, YES, ChoiceEnv, MenuGenerator, train_on_choices
from test_grpo_update import _action


def test_train_uses_the_initial_policy_as_kl_reference(tiny_policy, tiny_model_path, tmp_path):
    """beta > 0 in the loop: step 1 has KL exactly 0 (policy = reference), step 2 a positive
    KL, and the weights end elsewhere than without the KL term."""
    from rlpost.policy import Policy

    cfg = dict(steps=2, tasks_per_step=2, group_size=4, lr=1e-2, eval_tasks=0)
    with_kl = train_on_choices(tiny_policy, MenuGenerator(tiny_policy.tokenizer), tmp_path / "kl",
                     GRPOConfig(beta=2.0, **cfg))
    assert with_kl[1]["loss/kl"] == 0.0 and with_kl[2]["loss/kl"] > 1e-4
    plain = Policy(tiny_model_path, autocast=None)
    train_on_choices(plain, MenuGenerator(plain.tokenizer), tmp_path / "plain", GRPOConfig(**cfg))
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
    rows = train_on_choices(tiny_policy, gen, tmp_path, cfg, n_test=6, out=out)
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
    rows = train_on_choices(tiny_policy, MenuGenerator(tiny_policy.tokenizer), tmp_path / "b",
                  GRPOConfig(steps=1, tasks_per_step=2, group_size=2, eval_tasks=4), n_test=6)
    assert rows[0]["eval/success"] == 0.5 and rows[1]["eval/success"] == 0.5


def test_samples_record_prompt_completion_reward_and_advantage(tiny_policy, tmp_path):
    import json

    from rlpost.checkpoint import TaskSampler

    cfg = GRPOConfig(steps=2, tasks_per_step=2, group_size=2, lr=1e-3, eval_tasks=0,
                     samples_per_step=3, adv_eps=0.25)
    train_on_choices(tiny_policy, MenuGenerator(tiny_policy.tokenizer), tmp_path, cfg)
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
    train_on_choices(tiny_policy, MenuGenerator(tiny_policy.tokenizer), tmp_path, cfg)
    samples = [json.loads(x) for x in (tmp_path / "samples.jsonl").read_text().splitlines()]
    assert [s["advantage"] for s in samples] == [0.5, -0.5, 0.5, -0.5]


def test_the_loop_passes_its_settings_to_rollouts_and_logs_timings(tiny_policy, tmp_path):
    from rlpost.checkpoint import TaskSampler
    from rlpost.generate import GenParams

    cfg = GRPOConfig(steps=2, tasks_per_step=2, group_size=2, eval_tasks=0, temperature=0.7,
                     top_p=0.9, max_tokens=5)
    gen = MenuGenerator(tiny_policy.tokenizer)
    envs = [ChoiceEnv() for _ in range(4)]
    rows = train_on_choices(tiny_policy, gen, tmp_path, cfg, envs=envs)
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
    train_on_choices(tiny_policy, MenuGenerator(tiny_policy.tokenizer), tmp_path / "eval",
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
    rows = train_on_choices(tiny_policy, gen, tmp_path, cfg, max_prompt_tokens=3, n_test=2)
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
    train_on_choices(tiny_policy, gen, tmp_path, cfg, stop_after=2)
    assert json.loads((tmp_path / "checkpoint" / "state.json").read_text()) == {"step": 2}
    opt = torch.load(tmp_path / "checkpoint" / "trainer.pt", weights_only=False)["optimizer"]
    assert [(g["lr"], g["weight_decay"]) for g in opt["param_groups"]] == [(3e-4, 0.25)]
    train_on_choices(tiny_policy, gen, tmp_path, cfg, resume_step=2)
    assert json.loads((tmp_path / "checkpoint" / "state.json").read_text()) == {"step": 3}
    out = []
    rows = train_on_choices(tiny_policy, gen, tmp_path, cfg, resume_step=3, out=out)
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
