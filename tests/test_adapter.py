"""A third-party gymnasium env (text in, text out, no rlpost base class, no messages()) trains
with GRPO through ChatAdapter."""

from __future__ import annotations

import string

import gymnasium as gym
import pytest
import torch
from gymnasium import spaces
from scripted import NO, YES, MenuGenerator

from rlpost.adapter import OMITTED, ChatAdapter
from rlpost.algos.grpo import GRPOConfig, GRPORun, train
from rlpost.runner import Runner
from rlpost.env import check_env, turn_limit
from rlpost.errors import RlpostError
from rlpost.reward import Rubric
from rlpost.track import Tracker, read_metrics


class Politeness(gym.Env):
    """Written as a third party would: the env asks for consent `rounds` times; saying "yes" each
    time earns 1 at the end, anything else ends the episode with 0."""

    metadata = {"render_modes": []}

    def __init__(self, rounds: int = 2):
        self.rounds = rounds
        self.observation_space = spaces.Text(200, charset=string.printable)
        self.action_space = spaces.Text(50)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.asked, self.name = 0, ["Ann", "Bob", "Cy"][int(self.np_random.integers(3))]
        return f"Hello {self.name}, may I?", {}

    def step(self, action):
        if action.strip() != YES:
            return "Goodbye.", 0.0, True, False, {}
        self.asked += 1
        if self.asked == self.rounds:
            return "Thank you!", 1.0, True, False, {}
        return f"Round {self.asked + 1}, may I?", 0.0, False, False, {}


@pytest.fixture(scope="module", autouse=True)
def _registered():
    gym.register("thirdparty/Politeness-v0", entry_point=Politeness, max_episode_steps=5)
    yield
    del gym.registry["thirdparty/Politeness-v0"]


def _env(**kw):
    return ChatAdapter(gym.make("thirdparty/Politeness-v0"), **kw)


def test_the_adapter_renders_turns_and_keeps_the_env_limit():
    env = _env(system_prompt="Answer yes or no.")
    assert turn_limit(env) == 5
    obs, info = env.reset(options={"task_id": 7})
    assert info["task_id"] == 7 and obs == {"text": obs["text"], "anchor": obs["text"]}
    assert env.reset(options={"task_id": 7})[0] == obs  # a task is a seed: same start
    env.step(YES)
    obs, reward, term, trunc, info = env.step(YES)
    assert (obs["text"], reward, term, trunc, info["success"]) == ("Thank you!", 1.0, True, False,
                                                                   True)
    msgs = env.messages()
    assert [(m.role, m.content) for m in msgs] == [
        ("system", "Answer yes or no."), ("user", msgs[1].content), ("assistant", YES),
        ("user", "Round 2, may I?"), ("assistant", YES), ("user", "Thank you!")]
    assert msgs[1].content.startswith("Hello ")
    last = _env(history=2)
    _, info = last.reset(options={"task_id": 7, "replay": [YES, YES]})
    assert info["task"] == {"task_id": 7, "seed": 7}  # kept through the replay
    assert [(m.role, m.content) for m in last.messages()] == [
        ("user", OMITTED), ("assistant", YES), ("user", "Round 2, may I?"), ("assistant", YES),
        ("user", "Thank you!")]
    env.reset(options={"task_id": 1})
    *_, info = env.step(NO)
    assert info["success"] is False and info["valid"] is True
    assert env.tasks("train") == list(range(1000)) and env.tasks("test")[0] == 1_000_000
    with pytest.raises(RlpostError, match="history must be >= 1"):
        _env(history=0)


def test_the_adapted_env_honours_rlposts_contract():
    check_env(_env(), n_random_actions=50)


def test_gymnasiums_checker_passes_on_the_adapter_and_a_reset_always_names_its_task():
    import warnings

    from gymnasium.utils.env_checker import check_env as gym_check_env

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any other warning fails the test
        # the checker recommends checking `env.unwrapped`: the adapter is the env under test
        warnings.filterwarnings("ignore", message=".*different from the unwrapped version")
        gym_check_env(_env(history=2), skip_render_check=True)
    env = _env()
    assert env.reset(seed=4)[1]["task"] == {"task_id": 4, "seed": 4}
    assert env.reset(seed=4, options={"task_id": 9})[1]["task_id"] == 9
    drawn = env.reset()[1]["task_id"]
    assert drawn in env.tasks("train") and env.step(YES)[4]["task_id"] == drawn


def test_gymnasium_re_creates_the_adapter_from_its_spec_with_the_same_settings():
    env = _env(system_prompt="S", history=2, render=repr, n_train=7, n_test=3, test_offset=50)
    again = gym.make(env.spec)
    assert isinstance(again, ChatAdapter)
    assert (again.system_prompt, again.history, again.render, again.n_train, again.n_test,
            again.test_offset) == ("S", 2, repr, 7, 3, 50)
    assert again.tasks("test") == [50, 51, 52] and turn_limit(again) == 5


def test_the_smallest_settings_are_accepted_and_bad_ones_named():
    env = _env(history=1, n_train=1, n_test=0)
    assert env.tasks("train") == [0] and env.tasks("test") == []
    env.reset(options={"task_id": 0})
    assert env.total == 0.0 and env.actions == [] and len(env.texts) == 1
    with pytest.raises(RlpostError, match="^ChatAdapter: history must be >= 1 or None$"):
        _env(history=0)
    for bad in (dict(n_train=0), dict(n_test=-1)):
        with pytest.raises(RlpostError, match="^ChatAdapter: n_train must be >= 1 and n_test >= 0$"):
            _env(**bad)


def test_the_turn_limit_inside_the_adapter_counts_from_the_replayed_state():
    """gymnasium.make's TimeLimit sits inside the adapter: replayed actions must not use it up
    (EEF and the runner's prefixes start episodes from replayed states)."""
    gym.register("thirdparty/Politeness5-v0", entry_point=Politeness, max_episode_steps=2,
                 kwargs={"rounds": 5})
    try:
        env = ChatAdapter(gym.make("thirdparty/Politeness5-v0"))
        env.reset(options={"task_id": 1, "replay": [YES]})
        assert env.step(YES)[3] is False and env.step(YES)[3] is True  # 2 turns after replay
        env.reset(options={"task_id": 1})
        assert env.step(YES)[3] is False and env.step(YES)[3] is True
    finally:
        del gym.registry["thirdparty/Politeness5-v0"]


def test_grpo_trains_a_third_party_env_through_the_adapter(tiny_policy, tmp_path):
    """The menu alternates YES / NO per prompt, so each group has successes and failures; the
    update must raise the logprob of YES at the env's first prompt."""
    envs = [_env(history=1) for _ in range(8)]
    probe = _env(history=1)
    probe.reset(options={"task_id": 0})
    prompt = tiny_policy.encode_chat(probe.messages())
    end = tiny_policy.tokenizer.convert_tokens_to_ids("<|im_end|>")
    yes = tiny_policy.tokenizer(YES, add_special_tokens=False)["input_ids"] + [end]

    def logp():
        from rlpost.policy import rows_logprobs

        with torch.no_grad():
            lp, _ = rows_logprobs(tiny_policy.model, [(prompt, yes)],
                                  tiny_policy.tokenizer.pad_token_id)
        return float(lp.sum())

    before = logp()
    cfg = GRPOConfig(steps=2, tasks_per_step=2, group_size=4, lr=1e-3, eval_tasks=0)
    with Tracker(tmp_path, backends=("jsonl",)) as tracker:
        runner = Runner(envs, MenuGenerator(tiny_policy.tokenizer), tiny_policy.encode_chat)
        run = GRPORun(policy=tiny_policy, runner=runner, rubric=Rubric(), train_tasks=envs[0].tasks("train"),
                      eval_tasks=[], tracker=tracker, run_dir=tmp_path)
        train(cfg, run)
    rows = read_metrics(tmp_path)
    # half the first answers are YES; of those, the second answer alternates again
    assert rows[1]["rollout/turns"] > 1.0 and rows[1]["reward/total"] > 0
    assert logp() > before + 0.1
