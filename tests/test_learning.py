"""Learning regression tests on the bundled model with vLLM: a short, seeded GRPO run raises the
reward of a task the model starts poor at, and the same run with the advantages negated does not;
SFT lowers the loss of its own data. They check that training learns, not how fast.

The GRPO task (`OneWord`): open questions, reward 1 when the reply is a single word. The
bundled SmolLM2-135M-Instruct answers in sentences: at T=1 about one reply in ten is one word,
greedy almost none.
"""

from __future__ import annotations

import re

import pytest
from gymnasium.wrappers import TimeLimit

from rlpost.algos import advantages
from rlpost.algos.grpo import GRPOConfig, GRPORun, train
from rlpost.runner import Runner
from rlpost.env import Env
from rlpost.reward import Rubric
from rlpost.run import seed_everything
from rlpost.track import Tracker, read_metrics
from rlpost.types import Message

QUESTIONS = [
    "What is your favourite fruit?", "Which animal do you like most?", "Name a colour you like.",
    "What should I cook tonight?", "Where would you like to travel?", "What is a good pet?",
    "Which season is the best?", "What do you drink in the morning?", "Name a musical instrument.",
    "What is a good hobby?", "Which sport is the most fun?", "What is the best board game?",
    "What flower smells nicest?", "Which vegetable is healthiest?", "Name a famous city.",
    "What is a good name for a dog?", "Which planet is most interesting?", "Name a tree.",
    "What is the best dessert?", "What is a nice gift for a friend?", "Name a type of weather.",
    "What do you wear when it rains?", "Name something in the kitchen.", "What is a fast car?",
    "Which bird is prettiest?", "What do you read on holiday?", "Name a body of water.",
    "Which fish is tastiest?", "What is a good breakfast?", "Name a shape.",
    "What is the best way to relax?", "Which language would you learn?",
]
_ONE_WORD = re.compile(r"\W*[A-Za-z][\w'-]*\W*")


class OneWord(Env):
    """One turn: reward 1.0 when the reply is one word (punctuation around it allowed)."""

    def reset(self, seed=None, options=None):
        self.task = (options or {}).get("task_id", 0)
        obs = {"text": QUESTIONS[self.task], "images": [], "anchor": self.task}
        return obs, {"task_id": self.task}

    def messages(self):
        return [Message("user", QUESTIONS[self.task])]

    def step(self, action):
        ok = bool(_ONE_WORD.fullmatch(action.strip()))
        info = {"task_id": self.task, "valid": True, "success": ok,
                "reward_components": {"one_word": float(ok)}}
        return {"text": "", "images": [], "anchor": self.task}, float(ok), True, False, info

    def tasks(self, split):
        return list(range(24)) if split == "train" else list(range(24, len(QUESTIONS)))


CFG = GRPOConfig(steps=8, tasks_per_step=4, group_size=8, lr=1e-4, max_tokens=16, beta=0.0,
                 eval_every=8, eval_tasks=8, save_every=8, micro_batch_size=32)


def _grpo(engine, model_path, run_dir):
    from rlpost.policy import Policy

    seed_everything(0)
    policy = Policy(model_path)
    envs = [TimeLimit(OneWord(), 1) for _ in range(CFG.tasks_per_step * CFG.group_size)]
    with Tracker(run_dir, backends=("jsonl",)) as tracker:
        run = GRPORun(policy=policy, runner=Runner(envs, engine, policy.encode_chat),
                      rubric=Rubric(),
                      train_tasks=envs[0].unwrapped.tasks("train"),
                      eval_tasks=envs[0].unwrapped.tasks("test"),
                      tracker=tracker, run_dir=run_dir, seed=0)
        train(CFG, run)
    rows = read_metrics(run_dir)
    rewards = [r["reward/total"] for r in rows[1:]]
    return rows[0]["eval/success"], rows[-1]["eval/success"], rewards


@pytest.mark.parametrize("negate", [False, True], ids=["shipped", "advantages-negated"])
def test_grpo_raises_the_reward_and_negated_advantages_do_not(engine, model_path, tmp_path,
                                                             monkeypatch, negate):
    if negate:
        shipped = advantages.group_advantages
        monkeypatch.setattr(advantages, "group_advantages", lambda *a, **k: -shipped(*a, **k))
    before, after, rewards = _grpo(engine, model_path, tmp_path)
    first, last = sum(rewards[:2]) / 2, sum(rewards[-2:]) / 2
    print(f"negate={negate}: greedy {before:.3f} -> {after:.3f}; sampled reward by step "
          + " ".join(f"{r:.2f}" for r in rewards))
    assert before <= 0.25 and first <= 0.35  # the model starts poor at the task
    # measured: sampled reward 0.03 -> 0.94 and greedy 0 -> 1 (negated: 0.03 -> 0.00, 0 -> 0);
    # the engine's sampling RNG depends on the tests that ran before, hence the margins
    if negate:
        assert last <= first + 0.1 and after <= before
    else:
        assert last >= first + 0.3 and after >= before + 0.3


@pytest.mark.slow  # full fine-tuning of the 135M model on the CPU
@pytest.mark.parametrize("negate", [False, True], ids=["shipped", "loss-negated"])
def test_sft_lowers_the_loss_of_its_data(model_path, monkeypatch, negate):
    from rlpost.algos import sft
    from rlpost.policy import Policy

    if negate:
        shipped = sft.sft_loss
        monkeypatch.setattr(sft, "sft_loss", lambda *a: -shipped(*a))
    seed_everything(0)
    policy = Policy(model_path)
    data = [sft.SFTSample([Message("user", q), Message("assistant", a)], [1.0]) for q, a in [
        ("Capital of Peru?", "Lima."), ("Colour of grass?", "Green."),
        ("Opposite of hot?", "Cold."), ("Two plus two?", "Four."),
        ("Largest ocean?", "The Pacific."), ("Author of Hamlet?", "Shakespeare.")]]
    # one full batch per epoch: losses[k] is the loss of all the data before the k-th update
    res = sft.train_sft(policy, data, sft.SFTConfig(lr=1e-4, epochs=4, batch_size=6),
                        progress=False)
    losses = [abs(x) for x in res.losses]
    print(f"negate={negate}: sft loss by epoch " + " ".join(f"{x:.3f}" for x in losses))
    if negate:
        assert losses[-1] > losses[0]
    else:
        assert losses[-1] < 0.5 * losses[0]
