"""IRM: TL-Training's error-category reward for tool calls, and the paper's TS/PI/CF scores.

TL-Training: Ye et al., "TL-Training: A Task-Feature-Based Framework for Training LLMs in Tool
Use", arXiv 2412.15495 (Findings EMNLP'25), section "Introducing a Reward Mechanism" (IRM);
reference code github.com/Junjie-Ye/TL-Training, ``code/irm/dschat/rlhf/ppo_trainer.py:
test_answer_for_reward`` (``test_data_type == "tool_code"``), cited below as "the reference".

The reference reads ONE call ``name(k='v', ...)`` with a regex and decides, in this order:

1. no ``name(...)`` in the answer (its regex raises) -> -2; the name is not one of the prompt's
   tools -> -2;
2. the name differs from the gold call's -> -1.5;
3. with hal = a key not among the called function's parameters, red = a parameter of the
   function that the gold call does not give, miss = a gold key the answer leaves out:
   hal & red & miss -> -1.8; hal & (red | miss) -> -1.3; red & miss -> -1.0; hal -> -0.8;
   red | miss -> -0.5;
4. any value differs from the gold one -> -0.25; else +1.

Here, on BFCL task records (`rlpost.envs.tooluse.env.load_category`):

- the answer is parsed with `calls.parse_calls` (Python call list, JSON or ``<tool_call>``; never
  `eval`); a parse failure, an empty answer or an empty call list (``[]``) is "unparsable";
- miss counts only gold keys that are required: BFCL's ground truth lists optional parameters
  with "" among their acceptable values, and leaving those out is right;
- "exact" means `ast_check.check` passes the answer (BFCL's rules: any listed value, strings
  normalised), where the reference compares the values as strings; a call without
  hal/red/miss that the check refuses is "wrong_values";
- several calls (parallel categories; the reference has none): any unknown name makes the answer
  "unknown_tool"; otherwise the answer's names must be the gold calls' names with the same
  counts (as a multiset), else "wrong_tool". Each gold call, in order, is then paired with the
  not-yet-paired answer call of its name whose category is the least bad (ties: the earliest),
  as BFCL's no-order checker pairs greedily, and the answer's category is the worst of its
  calls' (lowest reward) unless the whole answer passes the check ("exact"). The verdict's
  hallucinated/redundant/missing flags are those of any call (so with several calls they may
  be more than the worst call's own);
- tasks that expect no call (irrelevance categories): no call (prose, an unparsable answer,
  ``[]``) is "exact"; a call to a name not among the tools is "unknown_tool" (the reference
  checks the name before anything else), any other call "wrong_tool". An empty answer is
  "unparsable" everywhere (the env counts it invalid too).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rlpost.envs.tooluse.ast_check import check, check_call, expects_no_call
from rlpost.envs.tooluse.calls import Call, CallParseError, parse_calls

from rlpost.types import Trajectory

IRM_REWARDS: dict[str, float] = {
    "unparsable": -2.0,
    "unknown_tool": -2.0,
    "wrong_tool": -1.5,
    "hallucinated_redundant_missing": -1.8,
    "hallucinated_and_redundant_or_missing": -1.3,
    "redundant_and_missing": -1.0,
    "hallucinated": -0.8,
    "redundant_or_missing": -0.5,
    "wrong_values": -0.25,
    "exact": 1.0,
}
"""Reward of each error category (``ppo_trainer.py:test_answer_for_reward``'s return values;
"unparsable" is its exception branch, "unknown_tool" its name-not-in-functions branch)."""


@dataclass(frozen=True)
class IRMVerdict:
    """IRM's reading of one answer: its `category` (a key of `IRM_REWARDS`), the parameter
    flags (any call's), whether the tools were selected right (TS), the parameter names
    identified right (PI: tools right and no flag) and the whole answer exact (CF)."""

    category: str
    hallucinated: bool = False
    redundant: bool = False
    missing: bool = False
    tool_selected: bool = False
    params_identified: bool = False
    exact: bool = False

    @property
    def reward(self) -> float:
        """`IRM_REWARDS` of the category."""
        return IRM_REWARDS[self.category]


def flag_category(hallucinated: bool, redundant: bool, missing: bool) -> str | None:
    """The category of a call with the right name from its parameter flags, in the
    reference's order (``test_answer_for_reward``, the p_hal/p_redundant/p_missing chain);
    None when no flag is set (the values decide)."""
    if hallucinated and redundant and missing:
        return "hallucinated_redundant_missing"
    if hallucinated and (redundant or missing):
        return "hallucinated_and_redundant_or_missing"
    if redundant and missing:
        return "redundant_and_missing"
    if hallucinated:
        return "hallucinated"
    if redundant or missing:
        return "redundant_or_missing"
    return None


def _doc(functions: Sequence[dict], name: str) -> dict:
    return next(f for f in functions if f.get("name") == name)


def call_flags(call: Call, doc: dict, gold: dict[str, list[Any]]) -> tuple[bool, bool, bool]:
    """(hallucinated, redundant, missing) of `call` against its function's BFCL `doc` and the
    gold call's ``{param: [acceptable values]}``: a key outside the doc's properties; a doc
    property the gold call does not list; a gold parameter without "" among its values (so
    required) that the call leaves out."""
    props = (doc.get("parameters") or {}).get("properties", {})
    keys = set(call.arguments)
    hallucinated = any(k not in props for k in keys)
    redundant = any(k in props and k not in gold for k in keys)
    missing = any(k not in keys and "" not in options for k, options in gold.items())
    return hallucinated, redundant, missing


def _call_category(call: Call, doc: dict, expected: dict) -> tuple[str, tuple[bool, ...]]:
    gold = next(iter(expected.values()))
    flags = call_flags(call, doc, gold)
    category = flag_category(*flags)
    if category is None:
        ok = check_call(doc, (call.name, call.arguments), expected).valid
        category = "exact" if ok else "wrong_values"
    return category, flags


def _parse(text: str) -> list[Call] | None:
    try:
        return parse_calls(text)
    except CallParseError:
        return None


def categorize(text: str, task: dict[str, Any]) -> IRMVerdict:
    """IRM's verdict on answer `text` to `task`, a BFCL record (``category``, ``functions``,
    ``ground_truth``, as `load_category` gives them); rules in the module docstring.
    Raises KeyError when the record lacks one of those fields."""
    category, functions, truth = task["category"], task["functions"], task["ground_truth"]
    names = {f.get("name") for f in functions}
    if not text.strip():
        return IRMVerdict("unparsable")
    calls = _parse(text)
    if expects_no_call(category):
        if not calls:
            return IRMVerdict("exact", tool_selected=True, params_identified=True, exact=True)
        bad = any(c.name not in names for c in calls)
        return IRMVerdict("unknown_tool" if bad else "wrong_tool")
    if not calls:
        return IRMVerdict("unparsable")
    if any(c.name not in names for c in calls):
        return IRMVerdict("unknown_tool")
    gold_names = [next(iter(g)) for g in truth]
    if Counter(c.name for c in calls) != Counter(gold_names):
        return IRMVerdict("wrong_tool")
    free = list(range(len(calls)))
    worst, any_flags = "exact", [False, False, False]
    for name, expected in zip(gold_names, truth):
        doc = _doc(functions, name)
        options = [(j, *_call_category(calls[j], doc, expected))
                   for j in free if calls[j].name == name]
        j, cat, flags = min(options, key=lambda o: (-IRM_REWARDS[o[1]], o[0]))
        free.remove(j)
        any_flags = [a or f for a, f in zip(any_flags, flags)]
        if IRM_REWARDS[cat] < IRM_REWARDS[worst]:
            worst = cat
    exact = check(calls, functions, truth, category).valid
    if exact:
        worst = "exact"
    elif worst == "exact":
        worst = "wrong_values"
    hal, red, miss = any_flags
    return IRMVerdict(worst, hal, red, miss, tool_selected=True,
                      params_identified=not (hal or red or miss), exact=exact)


def irm_reward(text: str, task: dict[str, Any]) -> float:
    """`IRM_REWARDS` of `categorize(text, task)`."""
    return categorize(text, task).reward


def irm_reward_fn(trajs: list[Trajectory]) -> list[float]:
    """RewardFn "irm": `irm_reward` of each trajectory's completion on its task record
    (``t.task``, reset's ``info["task"]``)."""
    return [irm_reward(t.completion_text, t.task) for t in trajs]


irm_reward_fn.__name__ = "irm"


def selection_scores(verdicts: Sequence[IRMVerdict]) -> dict[str, float]:
    """The paper's three scores over `verdicts` (its single-turn results, reference repo
    ``figures/result-single.png``: TS / PI / CF), each a share in [0, 1]: ``TS`` tool
    selection (the right function names; on no-call tasks, no call), ``PI`` parameter
    identification (TS and no hallucinated, redundant or missing key), ``CF`` content filling
    (the answer exact).
    Raises ValueError on an empty list."""
    if not verdicts:
        raise ValueError("selection_scores: no verdicts")
    n = len(verdicts)
    return {"TS": sum(v.tool_selected for v in verdicts) / n,
            "PI": sum(v.params_identified for v in verdicts) / n,
            "CF": sum(v.exact for v in verdicts) / n}
