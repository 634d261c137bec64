"""Test doubles for driving the shipped GRPO loop without vLLM: a tiny random model with the
bundled tokenizer, a one-turn env with a known best action, and a generator that answers from
a fixed menu of actions. They stand in for the model and the engine only; the trainer, rollout,
reward, checkpoint and tracking code under test is the shipped code."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
from gymnasium.wrappers import TimeLimit

from rlpost.env import Env
from rlpost.generate import Completion
from rlpost.types import Message

YES, NO = "yes", "no thanks"
"""The two actions: YES earns reward 1, NO earns 0 (NO has more tokens than YES)."""


def build_tiny_model(bundled_path: str, dest: Path, seed: int = 0) -> str:
    """A 2-layer, 32-wide Llama with the bundled model's tokenizer and vocabulary, saved to
    `dest`: a real causal LM, fast enough for exact gradient checks on a CPU."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    config = AutoConfig.from_pretrained(bundled_path)
    config.update({"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                   "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8})
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.save_pretrained(dest)
    AutoTokenizer.from_pretrained(bundled_path).save_pretrained(dest)
    return str(dest)


class ChoiceEnv(Env):
    """One turn: the prompt names a task; reward 1.0 for the action YES, 0.0 for anything else."""

    def __init__(self, n_tasks: int = 8, n_test: int = 0):
        self.n_tasks, self.n_test, self.task, self.resets = n_tasks, n_test, None, []

    def reset(self, seed=None, options=None):
        self.task = (options or {}).get("task_id", 0)
        self.resets.append((seed, self.task))
        return {"text": self.prompt(), "images": [], "anchor": self.task}, {"task_id": self.task}

    def prompt(self) -> str:
        return f"Task {self.task}: answer yes or no."

    def messages(self):
        return [Message("user", self.prompt())]

    def step(self, action):
        ok = action.strip() == YES
        info = {"task_id": self.task, "valid": True, "success": ok,
                "reward_components": {"said_yes": float(ok)}}
        return {"text": "", "images": [], "anchor": self.task}, float(ok), True, False, info

    def tasks(self, split):
        if split == "train":
            return list(range(self.n_tasks))
        return list(range(100, 100 + self.n_test))


def limited(env: Env, turns: int = 1) -> TimeLimit:
    """`env` with gymnasium's turn limit, as rollouts require (rlpost.env.make adds it to
    registered envs)."""
    return TimeLimit(env, turns)


class MenuGenerator:
    """Answers every prompt with YES or NO (as token ids ending in end-of-turn).

    mode "alternate": the i-th prompt of a call gets YES when i is even, so every group of an
    even size holds both actions. mode "random": each answer draws from Python's, NumPy's and
    torch's global RNGs together, so a resumed run reproduces an uninterrupted one only when
    all three streams were restored.
    """

    def __init__(self, tokenizer, mode: str = "alternate"):
        end = tokenizer.convert_tokens_to_ids("<|im_end|>")
        self.ids = {a: tokenizer(a, add_special_tokens=False)["input_ids"] + [end]
                    for a in (YES, NO)}
        self.mode, self.calls, self.params, self.syncs = mode, [], [], 0

    def generate(self, prompts, params):
        out = []
        for i, p in enumerate(prompts):
            if self.mode == "alternate":
                action = YES if i % 2 == 0 else NO
            else:
                draw = random.random() + float(np.random.rand()) + float(torch.rand(()))
                action = YES if draw > 1.5 else NO
            ids = self.ids[action]
            out.append(Completion(list(ids), [-1.0] * len(ids), action, "stop"))
        self.calls.append(len(prompts))
        self.params.append(params)
        return out

    max_model_len = 4096

    def sync_weights(self, policy):
        for _ in policy.named_tensors():
            pass
        self.syncs += 1

    def close(self):
        pass


def colour_pixels(png_path, rgb: tuple[int, int, int], tol: int = 12) -> int:
    """How many pixels of a PNG are within `tol` of the colour `rgb` in every channel: a plotted
    curve leaves thousands of its colour, an empty plot none."""
    from PIL import Image

    img = np.asarray(Image.open(png_path).convert("RGB"), dtype=np.int16)
    return int((np.abs(img - np.array(rgb)) <= tol).all(-1).sum())


C0, C1 = (31, 119, 180), (255, 159, 74)
"""reward/total's colour (matplotlib's first line colour) and the first other reward key's (its
second, orange (255, 127, 14), drawn at alpha 0.75 on white)."""


def train_on_choices(policy, generator, run_dir, cfg, stop_after=None, resume_step=None, n_test=0,
           envs=None, max_prompt_tokens=None, out=None):
    """The shipped GRPO loop on ChoiceEnv copies (or `envs`) with run seed 3; returns the
    logged metrics (train's own result goes to out[0])."""
    from rlpost.algos.grpo import GRPORun, train
    from rlpost.env import env_tasks, turn_limit
    from rlpost.reward import Rubric
    from rlpost.runner import Runner
    from rlpost.track import Tracker, read_metrics

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
