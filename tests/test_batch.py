"""Trajectories -> training rows, micro-batching, and the per-step rollout metrics."""

from __future__ import annotations

import pytest

from rlpost.algos.batch import (Row, micro_batches, pack, prefix_breaks, rows_from_trajectories,
                                step_metrics)
from rlpost.types import Step, Trajectory


def _step(prompt, action, reward=0.0, valid=True, finish="stop", advantage=0.0):
    return Step(list(prompt), list(action), [-0.1] * len(action), "a", reward, {"valid": valid},
                finish, advantage=advantage)


def test_rows_one_per_step_with_tokens_carrying_the_step_advantage():
    t1 = Trajectory(0, 0, [_step([1, 2], [3], advantage=0.5), _step([1, 2, 3, 4], []),
                           _step([9], [5, 6], advantage=0.25)], advantage=9.0)
    t2 = Trajectory(1, 1, [_step([7], [8, 8, 8], advantage=-2.0)], advantage=9.0)
    rows = rows_from_trajectories([t1, t2, Trajectory(2, 2)])
    assert [(r.prompt_ids, r.action_ids, r.advantage) for r in rows] == [
        ([1, 2], [3], 0.5), ([9], [5, 6], 0.25), ([7], [8, 8, 8], -2.0)]
    assert rows[1].sample_logprobs == [-0.1, -0.1] and rows[0].old_logp is None


def _row(prompt, n):
    return Row(list(prompt), [0] * n, 0.0, [])


def test_micro_batches_keep_groups_together_then_longest_singles_first():
    g = [_row([1, 1], n) for n in (1, 2, 3, 4, 5)]  # one group of 5 sharing a prompt
    singles = [_row([2], 1), _row([3, 3, 3], 4), _row([4], 2)]
    pair = [_row([5], 1), _row([5], 1)]
    batches = list(micro_batches(g + singles + pair, 2))
    # the group in chunks of 2 (its leftover single joins the singles), the pair as one chunk,
    # then the singles by total length (prompt + action), longest first
    assert batches[:3] == [g[0:2], g[2:4], pair]
    assert [[len(r.prompt_ids) + len(r.action_ids) for r in b] for b in batches[3:]] == [[7, 7],
                                                                                     [3, 2]]
    assert batches[3] == [g[4], singles[1]]  # ties keep their order
    flat = [id(r) for b in batches for r in b]
    assert sorted(flat) == sorted(id(r) for r in g + singles + pair)  # each row exactly once
    assert all(len(b) <= 2 for b in batches)
    assert list(micro_batches([], 4)) == []


def _traj(group, reward, n_steps=1, tokens=2, success=False, truncated=False, comps=None,
          finish="stop", valid=True):
    steps = [_step([1], [0] * tokens, finish=finish, valid=valid) for _ in range(n_steps)]
    return Trajectory(0, group, steps, reward=reward, components=comps or {}, success=success,
                      truncated=truncated)


def test_step_metrics_rollout():
    trajs = [_traj(0, 1.0, n_steps=2, tokens=3, success=True, comps={"acc": 1.0, "fmt": 1.0}),
             _traj(0, 0.0, n_steps=1, tokens=6, comps={"acc": 0.0, "fmt": 1.0},
                   finish="length", valid=False),
             _traj(1, 0.5, n_steps=1, tokens=1, truncated=True, comps={"acc": 0.5}),
             _traj(1, 0.5, n_steps=0, comps={"acc": 0.5})]
    m = step_metrics(trajs)
    assert m == pytest.approx({
        "reward/total": 0.5, "reward/acc": 0.5, "reward/fmt": 1.0,
        "rollout/success": 0.25, "rollout/turns": 1.0,
        "rollout/completion_tokens": (3 + 3 + 6 + 1) / 4, "rollout/hit_max_tokens": 0.25,
        "rollout/truncated": 0.25, "rollout/invalid_actions": 0.25,
        "rollout/tokens": 13.0, "reward/std": (1 / 6) ** 0.5,
        "rollout/groups_without_signal": 0.5, "rollout/prefix_breaks": 1.0})


def test_step_metrics_eval_prefix_and_empty():
    trajs = [_traj(0, 1.0, success=True, comps={"acc": 1.0}), _traj(1, 0.0, comps={"acc": 0.0})]
    m = step_metrics(trajs, prefix="eval")
    assert m == pytest.approx({"eval/total": 0.5, "eval/acc": 0.5, "eval/success": 0.5,
                               "eval/turns": 1.0, "eval/completion_tokens": 2.0,
                               "eval/hit_max_tokens": 0.0, "eval/truncated": 0.0,
                               "eval/invalid_actions": 0.0})
    assert step_metrics([]) == {}
    one = step_metrics([_traj(0, 2.0)])
    assert one["reward/std"] == 0.0 and one["rollout/groups_without_signal"] == 1.0


def test_step_metrics_single_step_pair_and_missing_valid_flag():
    one = step_metrics([_traj(0, 1.0, tokens=5, finish="length", valid=False)])
    assert (one["rollout/completion_tokens"], one["rollout/hit_max_tokens"],
            one["rollout/invalid_actions"]) == (5.0, 1.0, 1.0)
    pair = step_metrics([_traj(0, 0.1), _traj(0, 0.4)])
    assert pair["reward/std"] == pytest.approx(0.3 / 2 ** 0.5) and pair["reward/total"] == 0.25
    no_flag = _traj(0, 0.0)
    no_flag.steps[0].info = {}  # envs that never reject an action need not say "valid"
    assert step_metrics([no_flag])["rollout/invalid_actions"] == 0.0


def _turns(*spec):
    """A trajectory from (prompt, action, advantage) triples."""
    steps = [Step(list(p), list(a), [-0.1 * (i + 1)] * len(a), "a", advantage=adv)
             for i, (p, a, adv) in enumerate(spec)]
    return Trajectory(0, 0, steps)


def test_prefix_breaks_count_turns_whose_prompt_does_not_extend_the_last():
    ok = _turns(([1, 2], [3, 4], 0.5), ([1, 2, 3, 4, 9], [5], 0.25), ([1, 2, 3, 4, 9, 5, 8], [6], 0.0))
    assert prefix_breaks(ok) == 0
    windowed = _turns(([1, 2], [3, 4], 0.5), ([1, 7, 9], [5], 0.25), ([1, 7, 9, 5, 8], [6], 0.0))
    assert prefix_breaks(windowed) == 1
    retokenized = _turns(([1, 2], [3, 4], 0.5), ([1, 2, 3, 40, 9], [5], 0.25))
    assert prefix_breaks(retokenized) == 1 and prefix_breaks(_turns(([1], [2], 0.0))) == 0


def test_pack_masks_the_env_turns_and_keeps_each_actions_advantage():
    t = _turns(([1, 2], [3, 4], 0.5), ([1, 2, 3, 4, 9], [5], 0.25), ([1, 2, 3, 4, 9, 5, 8], [6], -1.0))
    row = pack(t)
    assert (row.prompt_ids, row.action_ids) == ([1, 2], [3, 4, 9, 5, 8, 6])
    assert row.loss_mask == [True, True, False, True, False, True]
    assert row.token_advantages == [0.5, 0.5, 0.0, 0.25, 0.0, -1.0]
    assert row.sample_logprobs == pytest.approx([-0.1, -0.1, 0.0, -0.2, 0.0, -0.3])
    assert (row.n_steps, row.trained) == (3, 4)
    with pytest.raises(ValueError, match="not append-only"):
        pack(_turns(([1, 2], [3], 0.0), ([1, 9], [4], 0.0)))
    # rows: packed only when asked, without breaks, and with more than one acting step
    assert len(rows_from_trajectories([t])) == 3
    assert [r.n_steps for r in rows_from_trajectories([t], pack_turns=True)] == [3]
    broken = _turns(([1, 2], [3], 0.1), ([1, 9], [4], 0.2))
    assert [r.action_ids for r in rows_from_trajectories([broken], pack_turns=True)] == [[3], [4]]
    single = _turns(([1, 2], [3], 0.1))
    assert rows_from_trajectories([single], pack_turns=True)[0].loss_mask is None
