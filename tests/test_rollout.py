"""Lockstep multi-turn rollouts against a scripted generator (no model)."""

from dataclasses import replace

import pytest
from gymnasium.wrappers import TimeLimit

from rlpost.env import Env
from rlpost.generate import Completion, GenParams
from rlpost.rollout import rollout
from rlpost.seeds import derive_seed
from rlpost.types import Message


class Counter(Env):
    """Multi-turn toy env: the agent must say the numbers target-2, target-1, target in order."""

    def reset(self, seed=None, options=None):
        self.target, self.said = int(options["task_id"]), []
        return self._obs(), {"task_id": self.target}

    def _obs(self):
        return {"text": f"said {self.said}", "images": [], "anchor": tuple(self.said)}

    def messages(self):
        return [Message("user", f"count to {self.target}; so far {self.said}")]

    def step(self, action):
        self.said.append(action)
        done = action == str(self.target)
        ok = self.said[-3:] == [str(self.target - 2), str(self.target - 1), str(self.target)]
        info = {"task_id": self.target, "valid": True, "success": ok,
                "reward_components": {"hit": float(done)}}
        return self._obs(), float(ok), done, False, info

    def tasks(self, split):
        return [5, 7, 9]


class ScriptedGenerator:
    """Answers from the prompt text: copy-1 start, then +1; one call per turn is recorded."""

    max_model_len = 1000

    def __init__(self, stubborn=False, finish="stop"):
        self.calls, self.params, self.stubborn, self.finish = [], [], stubborn, finish

    def generate(self, prompts, params):
        self.calls.append(len(prompts))
        self.params.append(params)
        out = []
        for p in prompts:
            target, n_said = p.ids[0], p.ids[1]
            text = "0" if self.stubborn else str(target - 2 + n_said)
            out.append(Completion([1, 2, n_said], [-0.5, -0.5, -0.5], text, self.finish))
        return out


def encode(messages):
    text = messages[0].content
    target = int(text.split()[2].rstrip(";"))
    said = text.split("so far ")[1]
    return [target, 0 if said == "[]" else said.count(",") + 1, 99]


def test_lockstep_multi_turn_groups():
    envs = limited([Counter() for _ in range(6)])
    gen = ScriptedGenerator()
    trajs = rollout(envs, [5, 9], group_size=3, generator=gen, encode=encode,
                    params=GenParams())
    assert len(trajs) == 6 and [t.group_id for t in trajs] == [0, 0, 0, 1, 1, 1]
    assert [t.task_id for t in trajs] == [5, 5, 5, 9, 9, 9]
    # three turns each, and ONE batched generate call per turn over all live episodes
    assert gen.calls == [6, 6, 6]
    for t in trajs:
        assert len(t.steps) == 3 and t.terminated and not t.truncated and t.success
        assert [s.action_text for s in t.steps][-1] == str(t.task_id)
        assert t.steps[1].prompt_ids[1] == 1  # the second prompt saw the first action
        assert t.steps[0].sample_logprobs == [-0.5, -0.5, -0.5]


def test_the_turn_limit_truncates_and_finished_episodes_leave_the_batch():
    envs = limited([Counter() for _ in range(2)], 4)
    gen = ScriptedGenerator(stubborn=True)
    trajs = rollout(envs, [5, 7], 1, gen, encode, GenParams())
    assert gen.calls == [2, 2, 2, 2]
    assert all(t.truncated and not t.terminated and len(t.steps) == 4 for t in trajs)
    assert not any(t.success for t in trajs)


def test_overlong_prompt_truncates_episode():
    envs = limited([Counter()], 3)
    trajs = rollout(envs, [5], 1, ScriptedGenerator(), encode, GenParams(),
                    max_prompt_tokens=2)
    assert trajs[0].truncated and trajs[0].steps == [] and trajs[0].success is False


class Recording(Counter):
    """Counter that records how it was reset and can end episodes by truncation itself."""

    def __init__(self, truncate_after=None):
        self.resets, self.truncate_after = [], truncate_after

    def reset(self, seed=None, options=None):
        self.resets.append((seed, dict(options)))
        return super().reset(seed, options)


    def step(self, action):
        obs, r, term, trunc, info = super().step(action)
        trunc = self.truncate_after is not None and len(self.said) >= self.truncate_after
        return obs, r, term, trunc, info


def limited(envs, n=5):
    """The envs with a turn limit of n (gymnasium's TimeLimit), as rollouts require."""
    return [TimeLimit(e, n) for e in envs]


def growing(messages):
    """Prompt ids that grow by one token per said number: [target, n_said, 99, 0 * n_said]."""
    ids = encode(messages)
    return ids + [0] * ids[1]


def test_prompt_guard_boundary_is_inclusive():
    fits = rollout(limited([Counter()], 3), [5], 1, ScriptedGenerator(), encode, GenParams(),
                   max_prompt_tokens=3)
    assert not fits[0].truncated and fits[0].terminated and len(fits[0].steps) == 3


def test_prompt_guard_truncates_mid_episode_and_the_rest_of_the_batch_goes_on():
    # prompts have 3, 4, 5 tokens on turns 1-3: with a limit of 4 the third turn never starts
    envs = limited([Counter(), Counter()])
    gen = ScriptedGenerator()
    trajs = rollout(envs, [5, 7], 1, gen, growing, GenParams(), max_prompt_tokens=4)
    assert gen.calls == [2, 2]
    for t in trajs:
        assert t.truncated and not t.terminated and len(t.steps) == 2 and not t.success
    trajs = rollout(envs, [5, 7], 1, ScriptedGenerator(), growing, GenParams(),
                    max_prompt_tokens=5)
    assert all(t.terminated and not t.truncated and len(t.steps) == 3 for t in trajs)


def test_turn_limit_boundary():
    exact = rollout(limited([Counter()], 3), [9], 1, ScriptedGenerator(), encode, GenParams())
    assert exact[0].terminated and not exact[0].truncated and exact[0].success
    short = rollout(limited([Counter()], 2), [9], 1, ScriptedGenerator(), encode, GenParams())
    assert short[0].truncated and not short[0].terminated and len(short[0].steps) == 2
    assert not short[0].success


def test_env_truncation_ends_the_episode():
    gen = ScriptedGenerator(stubborn=True)
    trajs = rollout(limited([Recording(truncate_after=2), Recording()], 4), [5, 7], 1, gen,
                    encode, GenParams())
    assert gen.calls == [2, 2, 1, 1]
    assert trajs[0].truncated and len(trajs[0].steps) == 2
    assert trajs[1].truncated and len(trajs[1].steps) == 4


def test_reset_seeds_options_and_recorded_steps():
    envs = [Recording() for _ in range(4)]
    trajs = rollout(limited(envs), [5, 7], 2, ScriptedGenerator(), encode, GenParams(), seed=40,
                    prefixes=[["3"], ["5", "6"]])
    r0, r1 = derive_seed(40, "reset", 0), derive_seed(40, "reset", 1)
    assert [e.resets for e in envs] == [
        [(r0, {"task_id": 5, "replay": ["3"]})], [(r0, {"task_id": 5, "replay": ["3"]})],
        [(r1, {"task_id": 7, "replay": ["5", "6"]})], [(r1, {"task_id": 7, "replay": ["5", "6"]})]]
    s = trajs[0].steps[0]
    assert (s.prompt_ids, s.action_ids, s.sample_logprobs, s.finish_reason) == ([5, 0, 99], [1, 2, 0],
                                                                         [-0.5] * 3, "stop")
    assert [x.reward for x in trajs[0].steps] == [0.0, 0.0, 1.0]
    assert trajs[0].steps[-1].info["reward_components"] == {"hit": 1.0}
    plain, gen, params = Recording(), ScriptedGenerator(finish="length"), GenParams(0.3, 0.9, 7)
    t, = rollout(limited([plain]), [5], 1, gen, encode, params)
    assert plain.resets == [(derive_seed(0, "reset", 0), {"task_id": 5})]  # no replay key
    assert [replace(x, seed=None) for x in gen.params] == [params] * 3
    assert [x.seed for x in gen.params] == [derive_seed(0, "turn", k) for k in (1, 2, 3)]
    assert [s.finish_reason for s in t.steps] == ["length"] * 3


class Pictures(Counter):
    """Counter whose chat carries an image per message (as a screenshot env's would)."""

    def messages(self):
        return [Message("user", m.content, [f"img-{self.target}-{len(self.said)}"])
                for m in super().messages()]


def test_the_chats_images_go_to_the_generator_with_the_prompt():
    gen = ScriptedGenerator()
    seen = []
    original = gen.generate

    def generate(prompts, params):
        seen.append([(p.ids, p.images) for p in prompts])
        return original(prompts, params)

    gen.generate = generate
    rollout(limited([Pictures(), Pictures()]), [5, 7], 1, gen, encode, GenParams())
    assert seen[0] == [([5, 0, 99], ["img-5-0"]), ([7, 0, 99], ["img-7-0"])]
    assert seen[1] == [([5, 1, 99], ["img-5-1"]), ([7, 1, 99], ["img-7-1"])]


def test_too_few_envs_is_an_error():
    with pytest.raises(ValueError, match="needs 4 envs, got 3"):
        rollout(limited([Counter() for _ in range(3)]), [5, 7], 2, ScriptedGenerator(), encode,
                GenParams())


def test_the_context_guard_defaults_to_the_generators_room():
    """The bug case: with no max_prompt_tokens an over-long prompt reached the engine, which
    rejects the whole batch. The default limit is max_model_len - max_tokens."""
    gen = ScriptedGenerator()
    gen.max_model_len = 6  # prompts of 3, 4, 5 tokens; max_tokens 2 leaves room for 4
    trajs = rollout(limited([Counter(), Counter()]), [5, 7], 1, gen, growing,
                    GenParams(max_tokens=2))
    assert gen.calls == [2, 2] and all(t.truncated and len(t.steps) == 2 for t in trajs)
    gen = ScriptedGenerator()
    gen.max_model_len = 7  # room for 5: the episodes finish
    trajs = rollout(limited([Counter(), Counter()]), [5, 7], 1, gen, growing,
                    GenParams(max_tokens=2))
    assert all(t.terminated and len(t.steps) == 3 for t in trajs)
    # a caller's lower limit wins; a higher one cannot exceed the context
    gen = ScriptedGenerator()
    gen.max_model_len = 7
    trajs = rollout(limited([Counter()]), [5], 1, gen, growing, GenParams(max_tokens=2),
                    max_prompt_tokens=100)
    assert trajs[0].terminated
    trajs = rollout(limited([Counter()]), [5], 1, gen, growing, GenParams(max_tokens=2),
                    max_prompt_tokens=4)
    assert trajs[0].truncated and len(trajs[0].steps) == 2
    with pytest.raises(ValueError, match="no room for a prompt"):
        rollout(limited([Counter()]), [5], 1, gen, growing, GenParams(max_tokens=7))


def test_each_step_records_the_anchor_of_the_state_it_acted_from():
    t, = rollout(limited([Counter()]), [5], 1, ScriptedGenerator(), encode, GenParams())
    assert [s.anchor for s in t.steps] == [(), ("3",), ("3", "4")]


def test_an_env_without_a_turn_limit_is_an_error():
    with pytest.raises(ValueError, match="has no turn limit"):
        rollout([Counter()], [5], 1, ScriptedGenerator(), encode, GenParams())


def test_trajectories_carry_their_task_and_last_conversation():
    t, = rollout(limited([Counter()]), [5], 1, ScriptedGenerator(), encode, GenParams())
    assert t.task == {"task_id": 5}  # the env gives no record: the id
    assert [(m.role, m.content) for m in t.messages] == [
        ("user", "count to 5; so far ['3', '4']"), ("assistant", "5")]
