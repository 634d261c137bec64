"""Turn-by-turn scoring of a multi-turn episode, by bfcl-eval's multi-turn rules.

bfcl-eval (2026.3.23, ``eval_checker/multi_turn_eval/multi_turn_checker.py``) scores an entry
after inference: for each turn it runs the model's calls of that turn on the model's instances
and the turn's ground-truth calls on a separate set of instances (both carried over from the
previous turns), then

1. a turn whose ground truth is empty (miss_param / miss_func turns where the model should ask
   for what is missing, and a few base turns) is not checked: it passes whatever the model did
   (its calls still ran, so the next turn's state check sees them; bfcl's
   ``multi_turn_irrelevance_checker`` exists but its runner never calls it);
2. otherwise the model must have made at least one call in the turn (a step whose decoded call
   list is non-empty; the ones that failed count, text replies do not);
3. state check: for every instance, each public attribute (not starting with "_") of the
   ground truth's instance equals (``==``) the model's one;
4. response check: the ground truth's results of this turn form a sub-multiset of the model's
   results of all turns so far (order-free; each model result matches at most one).

The entry passes iff every turn passes; a model forced to quit (too many steps in one turn)
fails the entry. `Scorer` applies the same rules as each turn ends (the env needs per-turn
rewards), on the instances the episode's own `Executor` holds, and keeps checking the later
turns after a failure (bfcl stops at the first failure; the entry's verdict is the same).
Differences from bfcl, none of which changes the verdict of a run bfcl can score: a missing
attribute or a comparison that raises (a directory that contains itself makes ``==`` recurse
forever) is a mismatch rather than a crash. The comparisons walk at most the model's state,
which the env keeps within `executor.MAX_STATE_NODES` (an episode whose state outgrows it ends
before its turn is checked).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rlpost.envs.tooluse.multi_turn.data import Entry, ground_truth_calls
from rlpost.envs.tooluse.multi_turn.executor import Executor


@dataclass(frozen=True)
class TurnCheck:
    """The verdict on one turn; `reason` is a one-line why when it failed ("" when passed)."""

    passed: bool
    reason: str = ""
    checked: bool = True
    """False for a turn with empty ground truth (passed without a check)."""


class Scorer:
    """The ground-truth side of one episode: its own fresh instances, advanced one turn per
    `check_turn` call (turns must be checked in order, each once)."""

    def __init__(self, entry: Entry):
        self.entry = entry
        self.truth = Executor(entry.involved_classes, entry.initial_config, entry.long_context)
        self.calls = ground_truth_calls(entry)
        self.results: list[list[str]] = []
        """The ground truth's results, per checked turn."""

    def check_turn(self, model: Executor, made_calls: bool,
                   model_results: Sequence[str]) -> TurnCheck:
        """Run the next turn's ground truth and judge the model's state after the turn.
        `made_calls`: whether the model made a call in this turn; `model_results`: the model's
        results of all turns so far, this one included."""
        turn = len(self.results)
        calls = self.calls[turn]
        results = self.truth.execute(calls)
        self.truth.new_turn()
        self.results.append(results)
        if not calls:
            return TurnCheck(True, checked=False)
        if not made_calls:
            return TurnCheck(False, f"turn {turn}: no function call, but the turn needs calls")
        diffs = state_differences(model.instances, self.truth.instances)
        if diffs:
            return TurnCheck(False, f"turn {turn}: state differs from the ground truth's in "
                                    f"{', '.join(diffs[:5])}")
        missing = missing_results(results, model_results)
        if missing:
            first = missing[0] if len(missing[0]) <= 80 else missing[0][:77] + "..."
            return TurnCheck(False, f"turn {turn}: {len(missing)} ground-truth result(s) not "
                                    f"among the model's, e.g. {first!r}")
        return TurnCheck(True)


_MISSING = object()


def state_differences(model: dict[str, Any], truth: dict[str, Any]) -> list[str]:
    """``Class.attribute`` for every public attribute of a ground-truth instance that the
    model's instance of the same class lacks or holds a different value of (bfcl's
    ``state_checker``)."""
    out = []
    for cls, gt in truth.items():
        mine = model.get(cls)
        for attr, value in vars(gt).items():
            if attr.startswith("_"):
                continue
            other = getattr(mine, attr, _MISSING) if mine is not None else _MISSING
            try:
                same = other is not _MISSING and bool(other == value)
            except Exception:  # noqa: BLE001 - RecursionError on a cyclic tree, odd __eq__
                same = False
            if not same:
                out.append(f"{cls}.{attr}")
    return out


def missing_results(expected: Sequence[str], got: Sequence[str]) -> list[str]:
    """The items of `expected` left over after matching each to a distinct equal item of
    `got`, order-free (bfcl's ``_is_subsequence_unordered``)."""
    pool = list(got)
    missing = []
    for item in expected:
        try:
            pool.remove(item)
        except ValueError:
            missing.append(item)
    return missing
