"""`rlpost/ToolUseMultiTurn-v0`: BFCL v4's multi-turn tool-use entries as episodes, played and
scored as bfcl-eval (2026.3.23) plays and scores them, with our own call parser and executor
(no `eval`).

Data: the categories of `ToolUseMultiTurnConfig.categories` (multi_turn_base, _miss_func,
_miss_param, _long_context: 200 entries each), concatenated in that order (a repeated category
counts once, at its first place, as ToolUse-v0 drops repeats); a task id is the index of an
entry. The train/test split is fixed by entry id (`rlpost.envs.tooluse.data.is_test` with
`test_fraction`); `tasks` raises ValueError on any other split name, as ToolUse-v0 does.

Episode: the entry's user turns come one at a time. Each `step(action)` is one model message:

- text that parses to calls (`rlpost.envs.tooluse.calls.parse_calls`: Python ``[f(a=1)]``,
  JSON or ``<tool_call>`` blocks) runs them (`executor.Executor`, on this episode's fresh API
  instances, only functions offered so far); the model gets one ``tool`` message per call with
  its result (cut to `max_result_chars` for display; scored whole up to
  `MAX_SCORED_RESULT_CHARS`) and acts again in the same turn;
- any other text (prose, a question to the user, "[]", or a call list that does not parse)
  ends the turn, as in bfcl, where a reply that does not decode to calls ends it; the next
  user turn follows, or after the last one the episode terminates. Prose is the ordinary way
  to end a turn, not an error: ``info["parse_error"]`` is set (to the parser's one-line
  reason) only when the text looks like an attempted call (`looks_like_call`: it starts with
  "[", "{", a code fence or ``name(``, or holds ``<tool_call>``) and does not parse;
- an empty or whitespace-only action (and one that is not text or is longer than the action
  space) is invalid: nothing changes, reward 0.0, ``info["valid"] = False`` (bfcl would end
  the turn; the env contract wants invalid actions inert).

A turn in which the model makes more than `max_steps_per_turn` call steps (bfcl's
``MAXIMUM_STEP_LIMIT``, 20) is force-quit, as bfcl does: the episode terminates and fails.
A call that makes the state too large (over `executor.MAX_STATE_NODES` nodes, or a directory
that contains itself: `Executor.state_error`, which stops every later call; without it a
model could make each step cost twice the one before) ends the episode the same way, after
that step: terminated, reward 0.0, ``success`` False, ``info["turn_failure"]`` = "turn <t>:
state too large (<why>)", and the anchor's state hash is "state-too-large".

Held-out functions (miss_func): their docs are missing from the system message; at the turn
bfcl hands them over (the entry's ``missed_function`` key, a turn with no question) the user
message says so (bfcl's wording) and carries them in ``Message.tools``, and they can be called
from then on.

Scoring (`scoring`, bfcl's rules): each turn is judged when it ends; ``info["turn_ended"]``,
``info["turn_reward"]`` (1.0 / 0.0), ``info["turn_passed"]`` (every ended turn so far),
``info["turn_failure"]`` (why, one line). The reward is 0.0 on every step but the last; with
``reward="episode"`` (default, bfcl's verdict) the last step gets 1.0 iff every turn passed;
with ``reward="turns"`` each passed turn pays 1/n_turns on the step that ends it (the episode's
total is the fraction of passed turns; a force-quit leaves the rest unpaid). ``success`` =
every turn passed. Every info (reset's and each step's) carries ``success`` (False until the
episode has ended with every turn passed) and ``reward_components`` as they stand
(``turns_passed``: passed turns / n_turns so far, ``all_turns``: float(success)): an episode
cut by the turn limit (gymnasium's TimeLimit, 32 steps, which the env cannot see) still ends
with both, as a failure.

Chat: a system message (instructions in BFCL's prompt style, ``tools=`` the offered function
docs in the form chat templates expect, converted as the single-step env converts them:
`rlpost.envs.tooluse.env.tool_schema`, with BFCL's Python hint on each description, which bfcl
leaves off the held-out docs), then the user, assistant and tool messages of the episode.
``obs["text"]`` is what the last step added (the tool results, or the next user message; at
most the observation space's 1 MiB); ``obs["anchor"]`` names the state: task, turn and a hash
of every instance's public attributes (`Executor.fingerprint`).

Where this differs from bfcl-eval (each on purpose):

- only offered functions run; bfcl runs any public method of the involved classes, held-out
  ones included (the ground truth of multi_turn_miss_func_49 calls ``tail`` two turns before
  it is handed over, so it cannot score 1 here);
- calls must be keyword-only literals (`parse_calls`); bfcl's decoder also takes positional
  arguments and expressions. Such a reply is text here and ends the turn;
- an action is at most 4,096 characters (the action space): the ground truth of
  multi_turn_long_context_8 and _18 needs one call of about 6,700, so they cannot score 1;
- executor refusals (private names, bad arguments, sizes, costs, the call budget) answer an
  error instead of running; instances share no long-context records (`executor`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from rlpost.envs.tooluse.calls import Call, CallParseError, format_calls, parse_calls
from rlpost.envs.tooluse.data import is_test
from rlpost.envs.tooluse.env import tool_schema
from rlpost.envs.tooluse.multi_turn.data import (
    ADDED_FUNCTIONS_MESSAGE,
    CATEGORIES,
    Entry,
    entry_docs,
    load_entries,
)
from rlpost.envs.tooluse.multi_turn.executor import Executor
from rlpost.envs.tooluse.multi_turn.scoring import Scorer

from rlpost.env import MAX_ACTION_CHARS, MAX_OBS_CHARS, Env, Observation, env_config
from rlpost.errors import RlpostError
from rlpost.types import Message

SYSTEM_PROMPT = (
    "You are an expert in composing function calls. Each user turn asks for something that "
    "you can do by calling the functions you are given. To call functions, reply with only "
    "the list of calls in Python syntax, with keyword arguments and literal values, and no "
    "other text: [func_name1(param1=value1, param2=value2), func_name2(param=value)]. The "
    "results come back as tool messages.\n\n"
    "Within a turn, keep calling functions until the user's request is done as well as you "
    "can do it; then reply in plain text without calls, which ends the turn, and the next "
    "user message follows. If no function fits the request, or it lacks a parameter that a "
    "function needs, say so in plain text instead of calling."
)


_CALL_START = re.compile(r"(\[|\{|```|[A-Za-z_][\w.]*\()")


def replay_actions(turns: list[list[Call]]) -> list[str]:
    """Actions that play `turns` (per user turn, its calls, e.g. `ground_truth_calls(entry)`):
    one step per turn with its calls (split where an action would pass `MAX_ACTION_CHARS`),
    then a text reply that ends the turn."""
    out = []
    for calls in turns:
        chunk: list[Call] = []
        for c in calls:
            if chunk and len(format_calls(chunk + [c])) > MAX_ACTION_CHARS:
                out.append(format_calls(chunk))
                chunk = []
            chunk.append(c)
        if chunk:
            out.append(format_calls(chunk))
        out.append("Done.")
    return out


def looks_like_call(text: str) -> bool:
    """Whether `text` looks like an attempted call list rather than prose: it starts with "[",
    "{", a code fence or ``name(``, or holds ``<tool_call>`` (``info["parse_error"]`` is set
    only for such text)."""
    body = text.strip()
    return "<tool_call>" in body or _CALL_START.match(body) is not None


@dataclass
class ToolUseMultiTurnConfig:
    """Which BFCL entries, the split, per-turn limits and the reward."""

    categories: tuple[str, ...] = CATEGORIES
    """Multi-turn categories, in task-id order (each 200 entries; a repeat counts once)."""
    test_fraction: float = 0.3
    """Share of entries in the test split (by a hash of the entry id, fixed; as ToolUse-v0)."""
    max_steps_per_turn: int = 20
    """Call steps allowed in one user turn; one more force-quits the episode (bfcl: 20)."""
    max_calls_per_turn: int = 100
    """Calls the executor runs in one user turn; later ones get an error result."""
    max_result_chars: int = 32_000
    """Characters of a call result shown to the model (the whole result is scored); the
    default shows every result of the shipped ground truth whole (the longest, of a
    long-context entry, has 31,706)."""
    reward: Literal["episode", "turns"] = "episode"
    """episode: 1.0 at the end iff every turn passed (bfcl); turns: 1/n_turns per passed turn."""

    def validate(self) -> None:
        """Raise RlpostError on a value no env can be built from."""
        name = type(self).__name__
        if not self.categories:
            raise RlpostError(f"{name}: categories must name one or more categories")
        unknown = [c for c in self.categories if c not in CATEGORIES]
        if unknown:
            raise RlpostError(f"{name}: unknown category {unknown[0]!r}; "
                              f"choose from {', '.join(CATEGORIES)}")
        if not 0.0 < self.test_fraction < 1.0:
            raise RlpostError(f"{name}: test_fraction must be in (0, 1), "
                              f"got {self.test_fraction}")
        if self.max_steps_per_turn < 1 or self.max_calls_per_turn < 1:
            raise RlpostError(f"{name}: max_steps_per_turn and max_calls_per_turn must be >= 1")
        if self.max_result_chars < 100:
            raise RlpostError(f"{name}: max_result_chars must be >= 100")
        if self.reward not in ("episode", "turns"):
            raise RlpostError(f"{name}: reward must be episode or turns, got {self.reward!r}")

    def category_order(self) -> tuple[str, ...]:
        """`categories` without repeats (first places kept): the order of task ids."""
        return tuple(dict.fromkeys(self.categories))


MAX_SCORED_RESULT_CHARS = 64_000
"""A call result kept for the response check is cut to this many characters (plus a mark):
the longest ground-truth result has 31,706, so a longer result can never equal one, and a
``find`` over a large tree (up to about a megabyte) is not kept whole by every step."""


def _scored(result: str) -> str:
    if len(result) <= MAX_SCORED_RESULT_CHARS:
        return result
    return f"{result[:MAX_SCORED_RESULT_CHARS]} ... [{len(result)} characters, cut]"


@cache
def _entries(categories: tuple[str, ...]) -> tuple[Entry, ...]:
    return tuple(load_entries(categories))


@cache
def _splits(categories: tuple[str, ...], test_fraction: float) -> dict[str, tuple[int, ...]]:
    test = [i for i, e in enumerate(_entries(categories)) if is_test(e.id, test_fraction)]
    held = set(test)
    train = [i for i in range(len(_entries(categories))) if i not in held]
    return {"train": tuple(train), "test": tuple(test)}


class ToolUseMultiTurnEnv(Env):
    """BFCL multi-turn episodes (see the module docstring)."""

    def __init__(self, config: ToolUseMultiTurnConfig | None = None, **overrides: Any):
        super().__init__()
        self.config = env_config(ToolUseMultiTurnConfig, config, overrides)
        self.entries = _entries(self.config.category_order())
        self.task_id: int = 0
        self._start(0)

    # -- tasks and reset -------------------------------------------------------------------
    def tasks(self, split: str) -> list[int]:
        splits = _splits(self.config.category_order(), self.config.test_fraction)
        if split not in splits:
            raise ValueError(f"unknown split {split!r}; use 'train' or 'test'")
        return list(splits[split])

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[Observation, dict[str, Any]]:
        super().reset(seed=seed)
        task, replay = self.reset_options(options, len(self.entries))
        self._start(task)
        for action in replay:
            self.step(action)
        record = {"task_id": task, **self.entry.record()}
        return self._obs(), {**self._info(valid=True), "task": record}

    def _start(self, task: int) -> None:
        self.task_id, self.entry = task, self.entries[task]
        cfg = self.config
        self.executor = Executor(self.entry.involved_classes, self.entry.initial_config,
                                 self.entry.long_context, cfg.max_calls_per_turn)
        self.scorer = Scorer(self.entry)
        docs, self._held = entry_docs(self.entry)
        self.system_tools = [tool_schema(d) for d in docs]
        self._offered = {d["name"] for d in docs}
        self.history: list[Message] = []
        self.model_results: list[str] = []
        self.turn_passed: list[bool] = []
        self.done, self.success = False, False
        self._fingerprint = self.executor.fingerprint()
        self._begin_turn(0)

    def _begin_turn(self, turn: int) -> None:
        self.turn, self.steps_in_turn, self.made_calls = turn, 0, False
        self.executor.new_turn()
        new = []
        if turn in self._held:
            held = self._held[turn]
            self._offered |= {d["name"] for d in held}
            new.append(Message("user", ADDED_FUNCTIONS_MESSAGE,
                               tools=[tool_schema(d) for d in held]))
        new += [Message(m["role"], m["content"]) for m in self.entry.turns[turn]]
        self.history += new
        self._text = "\n".join(m.content for m in new)

    # -- stepping --------------------------------------------------------------------------
    def step(self, action: str) -> tuple[Observation, float, bool, bool, dict[str, Any]]:
        action = self.action_text(action)  # not text, or too long: "" = invalid
        if self.done:
            return self._obs(), 0.0, True, False, self._info(valid=False)
        if not action.strip():
            return self._obs(), 0.0, False, False, self._info(valid=False)
        turn = self.turn
        self.history.append(Message("assistant", action))
        try:
            calls, parse_error = parse_calls(action), ""
        except CallParseError as e:  # prose ends the turn; only a failed call is an error
            calls, parse_error = [], str(e) if looks_like_call(action) else ""
        ended, reward, failure = False, 0.0, ""
        if calls:
            results = self.executor.execute(calls, self._offered)
            self.model_results += [_scored(r) for r in results]
            self.made_calls = True
            self.steps_in_turn += 1
            shown = [self._shown(r) for r in results]
            self.history += [Message("tool", s) for s in shown]
            self._text = "\n".join(shown)
            self._fingerprint = self.executor.fingerprint()
            if self.executor.state_error:
                ended, failure = True, (f"turn {turn}: state too large "
                                        f"({self.executor.state_error})")
            elif self.steps_in_turn > self.config.max_steps_per_turn:
                ended, failure = True, (f"turn {turn}: forced to quit after "
                                        f"{self.config.max_steps_per_turn} call steps")
            if ended:
                self.turn_passed.append(False)
                self._finish()
        else:
            ended = True
            check = self.scorer.check_turn(self.executor, self.made_calls, self.model_results)
            self.turn_passed.append(check.passed)
            failure = check.reason
            if check.passed and self.config.reward == "turns":
                reward = 1.0 / len(self.entry.turns)
            if turn + 1 < len(self.entry.turns):
                self._begin_turn(turn + 1)
            else:
                self._finish()
        if self.done and self.config.reward == "episode":
            reward = 1.0 if self.success else 0.0
        info = self._info(valid=True) | {
            "turn": turn, "turn_ended": ended, "calls": len(calls), "parse_error": parse_error,
            "turn_reward": 1.0 if ended and self.turn_passed[-1] else 0.0,
            "turn_failure": failure}
        return self._obs(), reward, self.done, False, info

    def _finish(self) -> None:
        self.done = True
        self.success = (len(self.turn_passed) == len(self.entry.turns)
                        and all(self.turn_passed))
        self._text = ""
        self.turn = len(self.entry.turns)

    def _shown(self, result: str) -> str:
        cap = self.config.max_result_chars
        if len(result) <= cap:
            return result
        return f"{result[:cap]} ... [{len(result) - cap} more characters cut]"

    # -- views -----------------------------------------------------------------------------
    def _obs(self) -> Observation:
        return {"text": self._text[:MAX_OBS_CHARS],
                "anchor": f"{self.task_id}|{self.turn}|{self._fingerprint}"}

    def _info(self, valid: bool) -> dict[str, Any]:
        components = {"turns_passed": sum(self.turn_passed) / len(self.entry.turns),
                      "all_turns": float(self.success)}
        return {"valid": valid, "task_id": self.task_id, "success": self.success,
                "reward_components": components,
                "turn": self.turn, "turn_ended": False, "turn_reward": 0.0, "turn_failure": "",
                "turn_passed": list(self.turn_passed), "calls": 0, "parse_error": ""}

    def messages(self) -> list[Message]:
        system = Message("system", SYSTEM_PROMPT, tools=list(self.system_tools))
        return [system] + [Message(m.role, m.content, tools=list(m.tools)) for m in self.history]
