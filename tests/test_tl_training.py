"""The tl-training recipe: its SFT data per mode, config errors, and a smoke run on the bundled
model with vLLM: zero-shot eval, MAE + PKT SFT, two PPO steps with the IRM reward in which the
actor and the critic both change, and a run killed during PPO that resumes from its checkpoint
with the SFT model as the reference."""

from __future__ import annotations

import json

import pytest
import torch

from rlpost.errors import RlpostError
from rlpost.recipes import tl_training


def _tasks(n=12):
    from rlpost.env import env_tasks, make
    from rlpost.policy import load_tokenizer, resolve_model
    from rlpost.recipes.itool import prompt_tasks

    tok = load_tokenizer(resolve_model("smollm2-135m-instruct"))
    env = make(tl_training.ENV_ID, tl_training.smoke().env)
    encode = lambda msgs: tok(__import__("rlpost.chat", fromlist=["render_chat"]).render_chat(  # noqa: E731
        tok, msgs, add_generation_prompt=True), add_special_tokens=False)["input_ids"]
    tasks, _ = prompt_tasks(env, encode, env_tasks(env, "train")[:n], 10_000)
    return tasks, tok


def test_sft_samples_per_mode_share_the_dialogues():
    """plain: one sample per dialogue, every assistant turn weighted (failed calls too); mae:
    one per kept turn, failed turns dropped; pkt: MAE's samples with key-token weights."""
    tasks, tok = _tasks()
    plain, ps = tl_training.sft_samples(tasks, tok, "plain", 0.5, seed=3)
    mae, ms = tl_training.sft_samples(tasks, tok, "mae", 0.5, seed=3)
    pkt, ks = tl_training.sft_samples(tasks, tok, "pkt", 0.5, seed=3)
    failing = int(ps["data/failing"])
    assert 0 < failing < len(tasks) and ms["data/failing"] == failing
    assert len(plain) == len(tasks) and ps["data/dropped_turns"] == 0
    assert sum(len(s.weights) for s in plain) == len(tasks) + failing
    assert ms["data/dropped_turns"] == failing and len(mae) == len(tasks)
    assert all(s.weights[-1] == 1.0 and sum(s.weights) == 1.0 for s in mae)
    assert [s.messages for s in pkt] == [s.messages for s in mae]
    assert all(s.token_weights is not None and max(s.token_weights[-1]) > 1.0 for s in pkt)
    assert ks == ms


@pytest.mark.parametrize("field,value,msg", [("fail_prob", 1.5, "fail_prob"),
                                             ("sft_mode", "lora", "sft_mode"),
                                             ("eval_categories", ["irrelevance"], "eval_categories"),
                                             ("n_envs", 1, "n_envs")])
def test_config_errors(field, value, msg):
    cfg = tl_training.smoke()
    setattr(cfg, field, value)
    with pytest.raises(RlpostError, match=msg):
        cfg.validate()


def _weights(path):
    from safetensors.torch import load_file

    return load_file(path / "model.safetensors")


def test_smoke_run_trains_actor_and_critic_and_resumes(engine, tmp_path):
    from rlpost.algos.critic import Critic
    from rlpost.policy import Policy
    from rlpost.seeds import derive_seed

    cfg = tl_training.smoke()
    cfg.run.dir = str(tmp_path / "tl")
    partial = tl_training.main(cfg, generator=engine, stop_after=1)
    run_dir = tmp_path / "tl"
    assert json.loads((run_dir / "checkpoint" / "state.json").read_text()) == {"step": 1}
    assert "ppo/ast_acc" not in partial and "sft/ast_acc" in partial
    sft = _weights(run_dir / "sft_model")
    base = Policy(cfg.run.model)
    assert any(not torch.equal(v, base.model.state_dict()[k]) for k, v in sft.items())
    results = tl_training.main(cfg, generator=engine)  # resumes at step 1
    assert json.loads((run_dir / "checkpoint" / "state.json").read_text()) == {"step": 2}
    assert json.loads((run_dir / "results.json").read_text()) == results
    assert results["sft/ast_acc"] == partial["sft/ast_acc"]
    for stage in ("zero_shot", "sft", "ppo"):
        assert {f"{stage}/{k}" for k in ("ast_acc", "ts", "pi", "cf", "irm")} <= set(results)
    # the actor moved away from the SFT model, and the critic from its initialisation
    final = _weights(run_dir / "checkpoint")
    assert max(float((final[k] - v).abs().max()) for k, v in sft.items()) > 1e-6
    extra = torch.load(run_dir / "checkpoint" / "extra.pt", weights_only=False)
    start = Critic(base, cfg.algo.critic, seed=derive_seed(cfg.run.seed, "critic"))
    assert not torch.equal(extra["critic"]["head.weight"], start.head.weight.detach())
    backbone = {k.removeprefix("backbone."): v for k, v in extra["critic"].items()
                if k.startswith("backbone.")}
    assert max(float((backbone[k] - sft[f"model.{k}"]).abs().max()) for k in backbone) > 1e-7
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    ppo_steps = [r["step"] for r in rows if "loss/value" in r]
    assert ppo_steps == [1, 2]  # step 1 kept once across the resume
    assert [r["step"] for r in rows if "eval/ast_acc" in r] == [0, 2]
    assert (run_dir / "sft" / "metrics.jsonl").exists() and (run_dir / "model").exists()
