"""Lockstep multi-turn rollouts against a scripted generator (no model)."""

from rlpost.env import Env
from rlpost.generate import Completion, GenParams
from rlpost.rollout import rollout
from rlpost.types import Message


class Counter(Env):
    """Multi-turn toy env: the agent must say the numbers target-2, target-1, target in order."""

    max_turns = 5

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

    def __init__(self, stubborn=False):
        self.calls, self.stubborn = [], stubborn

    def generate(self, prompts, params):
        self.calls.append(len(prompts))
        out = []
        for p in prompts:
            target, n_said = p[0], p[1]
            text = "0" if self.stubborn else str(target - 2 + n_said)
            out.append(Completion([1, 2, n_said], [-0.5, -0.5, -0.5], text, "stop"))
        return out


def encode(messages):
    text = messages[0].content
    target = int(text.split()[2].rstrip(";"))
    said = text.split("so far ")[1]
    return [target, 0 if said == "[]" else said.count(",") + 1, 99]


def test_lockstep_multi_turn_groups():
    envs = [Counter() for _ in range(6)]
    gen = ScriptedGenerator()
    trajs = rollout(envs, [5, 9], group_size=3, generator=gen, encode=encode,
                    params=GenParams(), max_turns=5)
    assert len(trajs) == 6 and [t.group_id for t in trajs] == [0, 0, 0, 1, 1, 1]
    assert [t.task_id for t in trajs] == [5, 5, 5, 9, 9, 9]
    # three turns each, and ONE batched generate call per turn over all live episodes
    assert gen.calls == [6, 6, 6]
    for t in trajs:
        assert len(t.steps) == 3 and t.terminated and not t.truncated and t.success
        assert [s.action_text for s in t.steps][-1] == str(t.task_id)
        assert t.steps[1].prompt_ids[1] == 1  # the second prompt saw the first action
        assert t.steps[0].logprobs == [-0.5, -0.5, -0.5]


def test_max_turns_truncates_and_finished_episodes_leave_the_batch():
    envs = [Counter() for _ in range(2)]
    gen = ScriptedGenerator(stubborn=True)
    trajs = rollout(envs, [5, 7], 1, gen, encode, GenParams(), max_turns=4)
    assert gen.calls == [2, 2, 2, 2]
    assert all(t.truncated and not t.terminated and len(t.steps) == 4 for t in trajs)
    assert not any(t.success for t in trajs)


def test_overlong_prompt_truncates_episode():
    envs = [Counter()]
    trajs = rollout(envs, [5], 1, ScriptedGenerator(), encode, GenParams(), max_turns=3,
                    max_prompt_tokens=2)
    assert trajs[0].truncated and trajs[0].steps == []
