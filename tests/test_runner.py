"""The rollout runner: chunking over its env pool, seeds per chunk, greedy evaluation."""

import pytest

from rlpost.errors import RlpostError
from rlpost.generate import GenParams
from rlpost.reward import Rubric
from rlpost.runner import Runner
from rlpost.seeds import derive_seed
from test_rollout import Recording, ScriptedGenerator, encode, limited


def _runner(n_envs):
    envs = limited([Recording() for _ in range(n_envs)])
    return Runner(envs, ScriptedGenerator(), encode), envs


def test_play_runs_groups_in_chunks_of_the_pool_with_request_wide_group_ids():
    runner, envs = _runner(4)
    trajs = runner.play([5, 7, 9], GenParams(), seed=3, group_size=2,
                        prefixes=[["3"], [], ["7", "8"]])
    assert [t.task_id for t in trajs] == [5, 5, 7, 7, 9, 9]
    assert [t.group_id for t in trajs] == [0, 0, 1, 1, 2, 2]
    assert all(t.success for t in trajs)
    # two chunks (2 groups of 2, then 1): one generate call per turn of each chunk (Counter
    # ignores the replay: every episode takes 3 turns)
    assert runner.generator.calls == [4, 4, 4, 2, 2, 2]
    c0, c1 = derive_seed(3, "chunk", 0), derive_seed(3, "chunk", 1)
    assert [[seed for seed, _ in e.unwrapped.resets] for e in envs] == [
        [derive_seed(c0, "reset", 0), derive_seed(c1, "reset", 0)],
        [derive_seed(c0, "reset", 0), derive_seed(c1, "reset", 0)],
        [derive_seed(c0, "reset", 1)], [derive_seed(c0, "reset", 1)]]
    # each chunk got its own tasks' prefixes
    assert [opts.get("replay") for e in envs for _, opts in e.unwrapped.resets] == [
        ["3"], ["7", "8"], ["3"], ["7", "8"], [], []]
    turn_seeds = [p.seed for p in runner.generator.params]
    assert turn_seeds == [derive_seed(c0, "turn", k) for k in (1, 2, 3)] + [
        derive_seed(c1, "turn", k) for k in (1, 2, 3)]


def test_a_pool_env_without_a_turn_limit_is_refused_at_construction():
    with pytest.raises(RlpostError, match=r"has no turn limit: make it with rlpost.env.make or "
                       r"gymnasium.make, or wrap it in gymnasium.wrappers.TimeLimit$"):
        Runner([*limited([Recording()]), Recording()], ScriptedGenerator(), encode)


def test_a_group_larger_than_the_pool_is_an_error():
    runner, _ = _runner(2)
    with pytest.raises(ValueError, match="^a group of 3 needs 3 envs; the pool has 2$"):
        runner.play([5], GenParams(), seed=0, group_size=3)


def test_make_builds_a_pool_of_registered_envs_with_their_turn_limit():
    from rlpost.env import turn_limit

    runner = Runner.make("rlpost/GuessNumber-v0", None, 3, ScriptedGenerator(), encode,
                         max_turns=2, max_prompt_tokens=50)
    assert len(runner.envs) == 3 and [turn_limit(e) for e in runner.envs] == [2, 2, 2]
    assert runner.max_prompt_tokens == 50 and len({id(e) for e in runner.envs}) == 3
    with pytest.raises(RlpostError, match="at least one env, got n_envs=0"):
        Runner.make("rlpost/GuessNumber-v0", None, 0, ScriptedGenerator(), encode)


def test_evaluate_is_greedy_and_scores_with_the_rubric():
    runner, _ = _runner(2)
    runner.generator.stubborn = False
    ev = runner.evaluate([5, 7, 9], GenParams(temperature=0.8, max_tokens=3), seed=1,
                         rubric=Rubric([lambda ts: [2.0] * len(ts)], [0.5]))
    assert [p.temperature for p in runner.generator.params] == [0.0] * 6
    assert [p.max_tokens for p in runner.generator.params] == [3] * 6
    assert len(ev.trajectories) == 3
    assert ev.metrics["eval/success"] == 1.0 and ev.metrics["eval/score"] == 100.0
    assert ev.metrics["eval/total"] == 2.0  # env reward 1 + 0.5 * 2
    assert ev.metrics["eval/turns"] == 3.0


def test_evaluate_without_a_rubric_reports_the_env_reward():
    runner, _ = _runner(2)
    runner.generator.stubborn = True
    ev = runner.evaluate([5, 7], GenParams(), seed=0)
    assert ev.metrics["eval/score"] == 0.0 and ev.metrics["eval/total"] == 0.0
    assert ev.metrics["eval/truncated"] == 1.0 and ev.metrics["eval/success"] == 0.0


def test_play_and_make_refuse_bad_arguments_in_one_line():
    runner, _ = _runner(2)
    with pytest.raises(ValueError, match="^group_size must be >= 1, got 0$"):
        runner.play([5], GenParams(), seed=0, group_size=0)
    with pytest.raises(ValueError, match="^1 prefixes for 2 tasks: give one per task$"):
        runner.play([5, 7], GenParams(), seed=0, prefixes=[["3"]])
    for turns in (0, -1):
        with pytest.raises(RlpostError, match=f"^max_turns must be >= 1 .*got {turns}$"):
            Runner.make("rlpost/GuessNumber-v0", None, 2, ScriptedGenerator(), encode,
                        max_turns=turns)
    with pytest.raises(RlpostError, match="^config must be a GuessNumberConfig, got dict$"):
        Runner.make("rlpost/GuessNumber-v0", {"high": 4}, 2, ScriptedGenerator(), encode)


def test_make_accepts_the_smallest_pool_and_turn_limit():
    from rlpost.env import turn_limit

    runner = Runner.make("rlpost/GuessNumber-v0", None, 1, ScriptedGenerator(), encode,
                         max_turns=1)
    assert len(runner.envs) == 1 and turn_limit(runner.envs[0]) == 1
