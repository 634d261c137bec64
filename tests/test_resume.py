"""A GRPO run killed after a checkpoint and resumed ends exactly where the uninterrupted run
ends: weights, AdamW moments, LR schedule with warm-up, task sampler, and the Python, NumPy and
torch RNG streams (the scripted generator draws its answers from all three), on the tiny
model through the shipped `train`."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from rlpost.algos.grpo import GRPOConfig
from rlpost.policy import Policy
from rlpost.run import seed_everything
from scripted import MenuGenerator
from scripted import train_on_choices as _train

CFG = dict(steps=5, tasks_per_step=2, group_size=4, lr=1e-2, warmup_steps=3, beta=0.1,
           eval_tasks=0, save_every=1, samples_per_step=8)


def _samples(run_dir):
    lines = (run_dir / "samples.jsonl").read_text().splitlines()
    return [(s["step"], s["task_id"], s["completion"]) for s in map(json.loads, lines)]


def _adam_state(run_dir):
    state = torch.load(run_dir / "checkpoint" / "trainer.pt", weights_only=False)["optimizer"]
    return state["state"]


@pytest.fixture(scope="module")
def uninterrupted(tiny_model_path, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("whole")
    seed_everything(0)
    policy = Policy(tiny_model_path, autocast=None)
    metrics = _train(policy, MenuGenerator(policy.tokenizer, "random"), run_dir, GRPOConfig(**CFG))
    return run_dir, metrics, dict(policy.named_tensors())


def _new_process(tiny_model_path, seed):
    """What a restarted process has: other RNG states, the initial weights, a new engine."""
    random.seed(seed), np.random.seed(seed), torch.manual_seed(seed)
    policy = Policy(tiny_model_path, autocast=None)
    return policy, MenuGenerator(policy.tokenizer, "random")


def test_resumed_run_equals_the_uninterrupted_run(uninterrupted, tiny_model_path, tmp_path,
                                                  capsys):
    """Killed after step 2, resumed and killed again after step 4, resumed to the end."""
    whole_dir, whole, whole_weights = uninterrupted
    seed_everything(0)
    first = Policy(tiny_model_path, autocast=None)
    _train(first, MenuGenerator(first.tokenizer, "random"), tmp_path, GRPOConfig(**CFG),
           stop_after=2)
    assert json.loads((tmp_path / "checkpoint" / "state.json").read_text()) == {"step": 2}
    policy, gen = _new_process(tiny_model_path, 99)
    _train(policy, gen, tmp_path, GRPOConfig(**CFG), resume_step=2, stop_after=2)
    assert json.loads((tmp_path / "checkpoint" / "state.json").read_text()) == {"step": 4}
    capsys.readouterr()
    policy, gen = _new_process(tiny_model_path, 98)
    resumed = _train(policy, gen, tmp_path, GRPOConfig(**CFG), resume_step=4)
    assert gen.syncs == 1 + 1  # the resumed weights pushed to the engine, then one sync a step
    err = capsys.readouterr().err
    assert "grpo: 100%" in err and "5/5" in err  # the bar counts from the resumed step

    assert [m["step"] for m in resumed] == [0, 1, 2, 3, 4, 5]
    lr = CFG["lr"]
    assert [m["lr"] for m in resumed[1:]] == pytest.approx([lr / 3, 2 * lr / 3, lr, lr, lr])
    for key in ("lr", "reward/total", "loss/policy", "loss/kl", "loss/grad_norm"):
        assert [m[key] for m in resumed[1:]] == pytest.approx([m[key] for m in whole[1:]],
                                                              rel=1e-6, abs=1e-9), key
    assert _samples(tmp_path) == _samples(whole_dir)  # same tasks and same answers
    weights = dict(policy.named_tensors())
    for k, v in whole_weights.items():
        assert torch.allclose(weights[k], v, rtol=1e-6, atol=1e-8), k
    a, b = _adam_state(tmp_path), _adam_state(whole_dir)
    assert a.keys() == b.keys()
    for k in a:
        assert float(a[k]["step"]) == float(b[k]["step"]) == 5.0
        assert torch.allclose(a[k]["exp_avg_sq"], b[k]["exp_avg_sq"], rtol=1e-5, atol=1e-12)


def test_the_test_can_fail_without_the_rng_streams(uninterrupted, tiny_model_path, tmp_path,
                                                   monkeypatch):
    """The same resume with the checkpoint's RNG states ignored diverges from the
    uninterrupted run: the comparison above is sensitive to every stream it claims to check."""
    import rlpost.checkpoint as ckpt

    whole_dir, whole, _ = uninterrupted
    seed_everything(0)
    first = Policy(tiny_model_path, autocast=None)
    _train(first, MenuGenerator(first.tokenizer, "random"), tmp_path, GRPOConfig(**CFG),
           stop_after=2)
    monkeypatch.setattr(ckpt.random, "setstate", lambda state: None)
    monkeypatch.setattr(ckpt.np.random, "set_state", lambda state: None)
    monkeypatch.setattr(ckpt.torch, "set_rng_state", lambda state: None)
    random.seed(99), np.random.seed(99), torch.manual_seed(99)
    policy = Policy(tiny_model_path, autocast=None)
    _train(policy, MenuGenerator(policy.tokenizer, "random"), tmp_path, GRPOConfig(**CFG),
           resume_step=2)
    assert _samples(tmp_path) != _samples(whole_dir)
