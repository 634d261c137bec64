"""`rlpost/ToolUse-v0`: single-step function calling on BFCL v4's AST categories (Berkeley
Function Calling Leaderboard; data from the installed bfcl-eval, see `data`).

Tasks: the entries of the configured categories, sorted by category name and then by the
numbers in the entry id (``live_simple_12-3-0``), the first `max_tasks_per_category` of each;
a task id is an index into that list. An entry is a test task iff
``data.is_test(id, test_fraction)``, so the splits are disjoint and an entry keeps its split
whatever else is configured.

Prompt (`messages`), as BFCL prompts a chat model without native tool calling
(``bfcl_eval/constants/default_prompts.py``, the default "classic" python/plaintext format),
in our own words and without its multi-turn paragraph (one step here):

- a system message: `INSTRUCTIONS` (persona, task, the call format
  ``[func_name1(params_name1=params_value1, ...), func_name2(params)]``), followed by the
  entry's own system message when its question has one (BFCL appends it the same way), with
  ``tools=`` the entry's function docs (`tool_schema`): the chat renderer passes them to a
  template with tool support, or writes them as JSON into the system message;
- then the entry's question turns (user, and a few live_irrelevance histories with assistant
  turns).

The docs are converted to the form Hugging Face chat templates expect,
``{"type": "function", "function": {name, description, parameters}}``, with BFCL's types
mapped to JSON Schema as bfcl-eval maps them for function-calling models
(``bfcl_eval/constants/type_mappings.py:GORILLA_TO_OPENAPI``: dict -> object, float -> number,
tuple -> array, any -> string), and BFCL's hint " Note that the provided function is in Python 3
syntax." appended to each description, as BFCL does for every prompt. The text fallback
therefore shows JSON Schema too, where BFCL's prompt mode shows its raw docs ("type": "dict").
Names keep their dots unless `underscore_names`.

Action: the model's text; `calls.parse_calls` reads a Python call list, JSON or
``<tool_call>`` blocks (BFCL's prompt mode reads the Python form only).

Reward (`grade`):

- Tasks that need calls: an answer that does not parse is invalid (``info["valid"] = False``)
  and scores `invalid_penalty` (0.0 by default: BFCL counts a decoder failure as a wrong answer,
  nothing worse). A parsed answer ("[]" included) is valid and scores ``accuracy + format``:
  accuracy 1.0 iff `ast_check.check` passes it, format `format_reward`.
- Irrelevance tasks: any non-empty answer is valid; accuracy 1.0 iff it makes no call (prose,
  an unparsable answer or "[]", as in BFCL).
- An empty or whitespace-only answer is invalid everywhere, irrelevance tasks included (where
  BFCL would count it as no call): "" is also what an out-of-space action becomes
  (`Env.action_text`).

``info`` of the step: ``valid``, ``success`` (accuracy 1.0), ``reward_components`` (accuracy,
format, invalid), ``error_type`` (BFCL's, "" when correct), ``error``, ``calls`` (BFCL's decoded
form, None when the answer did not parse). The step ends the episode; stepping after the end
never raises (reward 0.0, valid False, terminated True).
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from rlpost.envs.tooluse.ast_check import (
    AST_CATEGORIES,
    IRRELEVANCE_CATEGORIES,
    Verdict,
    check,
    expects_no_call,
)
from rlpost.envs.tooluse.calls import CallParseError, parse_calls
from rlpost.envs.tooluse.data import data_dir, is_test, read_jsonl

from rlpost.env import Env, Observation, env_config
from rlpost.errors import RlpostError
from rlpost.types import Message

DEFAULT_CATEGORIES = ("simple_python", "multiple", "parallel", "parallel_multiple",
                      "irrelevance", "live_simple", "live_multiple", "live_parallel",
                      "live_parallel_multiple", "live_irrelevance")
CATEGORIES = AST_CATEGORIES + IRRELEVANCE_CATEGORIES + ("live_relevance",)
"""Every category the env serves; live_relevance (not a default) scores 1.0 for any call."""

INSTRUCTIONS = (
    "You are an expert at composing function calls. You are given a question and a set of "
    "functions you can call. Based on the question, make one or more function calls that "
    "achieve its purpose. If none of the functions can be used, say so. If the question lacks "
    "a parameter that a function requires, say so too.\n"
    "Return only the function calls in your response.\n\n"
    "If you decide to call any of the functions, you MUST write the calls in the format "
    "[func_name1(params_name1=params_value1, params_name2=params_value2...), "
    "func_name2(params)]\n"
    "Do NOT include any other text in the response."
)
PYTHON_HINT = " Note that the provided function is in Python 3 syntax."
"""BFCL's language hint, appended to every function description."""
JSON_SCHEMA_TYPES = {"dict": "object", "float": "number", "tuple": "array", "any": "string"}
"""BFCL types that JSON Schema names differently (the others are the same)."""


@dataclass
class ToolUseConfig:
    """Which BFCL entries, their splits and the reward's knobs."""

    categories: list[str] = field(default_factory=lambda: list(DEFAULT_CATEGORIES))
    """BFCL categories to serve (see `CATEGORIES`); default: the Python AST ones and the
    irrelevance ones."""
    test_fraction: float = 0.3
    """Share of entries in the test split (by a hash of the entry id)."""
    max_tasks_per_category: int | None = None
    """Keep only the first N entries of each category (None = all)."""
    invalid_penalty: float = 0.0
    """Reward of an answer that does not parse (or is empty) on a task that needs calls."""
    format_reward: float = 0.0
    """Added to the reward of every valid answer (a parsed call list; on irrelevance tasks
    any non-empty answer)."""
    underscore_names: bool = False
    """Show function names with "." replaced by "_" and expect them so (BFCL's
    underscore_to_dot, for templates or APIs that refuse dots in tool names)."""

    def validate(self) -> None:
        """Raise RlpostError on a value no env can be built from."""
        unknown = [c for c in self.categories if c not in CATEGORIES]
        if unknown or not self.categories:
            raise RlpostError(f"ToolUseConfig: unknown or no categories {unknown}; "
                              f"choose from {', '.join(CATEGORIES)}")
        if not 0.0 < self.test_fraction < 1.0:
            raise RlpostError(f"ToolUseConfig: test_fraction must be in (0, 1), "
                              f"got {self.test_fraction}")
        if self.max_tasks_per_category is not None and self.max_tasks_per_category < 1:
            raise RlpostError("ToolUseConfig: max_tasks_per_category must be >= 1 or None")
        if not (math.isfinite(self.invalid_penalty) and math.isfinite(self.format_reward)):
            raise RlpostError("ToolUseConfig: invalid_penalty and format_reward must be finite")


def _id_key(entry_id: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", entry_id))


@cache
def load_category(category: str) -> tuple[dict[str, Any], ...]:
    """The entries of `category` (id, category, question, functions, ground_truth) in id
    order; loaded once per process. Treat them as read-only."""
    d = data_dir()
    answers: dict[str, list] = {}
    answer_file = d / "possible_answer" / f"BFCL_v4_{category}.json"
    if category not in IRRELEVANCE_CATEGORIES and category != "live_relevance":
        answers = {a["id"]: a["ground_truth"] for a in read_jsonl(answer_file)}
    out = []
    for e in read_jsonl(d / f"BFCL_v4_{category}.json"):
        if category in AST_CATEGORIES and e["id"] not in answers:
            raise RlpostError(f"BFCL entry {e['id']} has no possible answer in {answer_file}")
        out.append({"id": e["id"], "category": category, "question": e["question"][0],
                    "functions": e["function"], "ground_truth": answers.get(e["id"], [])})
    return tuple(sorted(out, key=lambda r: _id_key(r["id"])))


def _json_schema(node: Any) -> Any:
    """A BFCL parameter schema in JSON Schema's type names, recursively (a copy)."""
    if isinstance(node, list):
        return [_json_schema(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for k, v in node.items():
        if k == "type" and isinstance(v, str):
            out[k] = JSON_SCHEMA_TYPES.get(v, v)
        elif k == "properties" and isinstance(v, dict):
            out[k] = {p: _json_schema(s) for p, s in v.items()}
        elif k == "items":
            out[k] = _json_schema(v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def tool_schema(doc: dict[str, Any], underscore_names: bool = False) -> dict[str, Any]:
    """One BFCL function doc as a chat template's tool (see the module docstring)."""
    name = doc["name"].replace(".", "_") if underscore_names else doc["name"]
    return {"type": "function", "function": {
        "name": name, "description": doc.get("description", "") + PYTHON_HINT,
        "parameters": _json_schema(doc.get("parameters", {"type": "dict", "properties": {}}))}}


def grade(text: str, task: dict[str, Any], cfg: ToolUseConfig) -> tuple[float, dict[str, Any]]:
    """(reward, info) of answer `text` to `task` (a `load_category` record); see the module
    docstring for the rules."""
    calls, error = None, "empty answer"
    if text.strip():
        try:
            calls = parse_calls(text)
        except CallParseError as e:
            error = str(e)
    no_call = expects_no_call(task["category"])
    valid = bool(text.strip()) and (calls is not None or no_call)
    if valid:
        verdict = check(calls, task["functions"], task["ground_truth"], task["category"],
                        underscore_to_dot=cfg.underscore_names)
        accuracy, fmt, penalty = float(verdict.valid), float(cfg.format_reward), 0.0
    else:
        verdict = Verdict(False, "ast_decoder:decoder_failed", error)
        accuracy, fmt, penalty = 0.0, 0.0, float(cfg.invalid_penalty)
    return accuracy + fmt + penalty, {
        "valid": valid, "success": accuracy == 1.0,
        "reward_components": {"accuracy": accuracy, "format": fmt, "invalid": penalty},
        "error_type": verdict.error_type, "error": verdict.error,
        "calls": None if calls is None else [c.as_bfcl() for c in calls]}


class ToolUseEnv(Env):
    """Single-step BFCL function calling; see the module docstring."""

    def __init__(self, config: ToolUseConfig | None = None, **overrides: Any):
        super().__init__()
        self.cfg = env_config(ToolUseConfig, config, overrides)
        self.records: list[dict[str, Any]] = []
        for category in sorted(set(self.cfg.categories)):
            self.records += load_category(category)[:self.cfg.max_tasks_per_category]
        test = [is_test(r["id"], self.cfg.test_fraction) for r in self.records]
        self._train = [i for i, t in enumerate(test) if not t]
        self._test = [i for i, t in enumerate(test) if t]
        self.task_id: int | None = None
        self.done = True
        self.success = False

    def tasks(self, split: str) -> list[int]:
        """Task ids (indices into `records`) of ``"train"`` or ``"test"``."""
        if split == "train":
            return list(self._train)
        if split == "test":
            return list(self._test)
        raise ValueError(f"unknown split {split!r}; use 'train' or 'test'")

    def task_record(self, task_id: int) -> dict[str, Any]:
        """A copy of task `task_id`'s entry with its ground truth (reset's ``info["task"]``)."""
        return {"task_id": task_id, **copy.deepcopy(self.records[task_id])}

    def question(self, task_id: int) -> str:
        """The text of the entry's question turns (obs["text"] while the episode runs)."""
        return "\n\n".join(m["content"] for m in self.records[task_id]["question"])

    def tools(self, task_id: int) -> list[dict[str, Any]]:
        """The entry's function docs as chat-template tools (`tool_schema`)."""
        return [tool_schema(f, self.cfg.underscore_names)
                for f in self.records[task_id]["functions"]]

    def _obs(self) -> Observation:
        live = not self.done and self.task_id is not None
        return {"text": self.question(self.task_id) if live else "", "anchor": str(self.task_id)}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[Observation, dict[str, Any]]:
        """Start task ``options["task_id"]`` (any task id), else a train task drawn with
        `seed`; then apply ``options["replay"]`` (the first action ends the episode)."""
        super().reset(seed=seed)
        self.task_id, replay = self.reset_options(options, len(self.records))
        self.done, self.success = False, False
        obs = self._obs()
        info: dict[str, Any] = {"task_id": self.task_id, "valid": True, "reward_components": {}}
        for action in replay:
            obs, _, terminated, truncated, info = self.step(action)
            if terminated or truncated:
                break
        return obs, {**info, "category": self.records[self.task_id]["category"],
                     "task": self.task_record(self.task_id)}

    def messages(self) -> list[Message]:
        """The system message (instructions, the entry's own system text, the tools), then
        the entry's question turns."""
        if self.task_id is None:
            raise RuntimeError("call reset() before messages()")
        turns = self.records[self.task_id]["question"]
        system = INSTRUCTIONS
        if turns and turns[0]["role"] == "system":
            system, turns = f"{system}\n\n{turns[0]['content']}", turns[1:]
        return [Message("system", system, tools=self.tools(self.task_id))] + [
            Message(m["role"], m["content"]) for m in turns]

    def step(self, action: str) -> tuple[Observation, float, bool, bool, dict[str, Any]]:
        """Grade the answer (`grade`) and end the episode."""
        if self.done or self.task_id is None:
            info = {"task_id": self.task_id, "valid": False, "success": self.success,
                    "reward_components": {"accuracy": 0.0, "format": 0.0, "invalid": 0.0},
                    "error_type": "", "error": "the episode has ended", "calls": None}
            return self._obs(), 0.0, True, False, info
        reward, info = grade(self.action_text(action), self.records[self.task_id], self.cfg)
        self.done, self.success = True, info["success"]
        return self._obs(), reward, True, False, {"task_id": self.task_id, **info}
