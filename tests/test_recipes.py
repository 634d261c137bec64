"""Every recipe preset constructs and validates without a GPU or a model."""

import importlib

import pytest

from rlpost.cli import main
from rlpost.errors import RlpostError
from rlpost.recipes import RECIPES
from rlpost.seeds import derive_seed


@pytest.mark.parametrize("name", list(RECIPES))
def test_every_preset_validates(name):
    module = importlib.import_module(RECIPES[name])
    assert module.__doc__ and "arXiv" in module.__doc__
    for preset, build in module.PRESETS.items():
        module.validate(build())


def test_paper_preset_is_paper_scale(capsys):
    assert main(["recipe", "show", "cls-rl", "--preset", "paper"]) == 0
    out = capsys.readouterr().out
    assert "Qwen/Qwen2-1.5B-Instruct" in out and "lr: 1.0e-06" in out and "beta: 0.04" in out


def test_invalid_algo_settings_are_rejected_before_loading(capsys, tmp_path):
    rc = main(["recipe", "run", "cls-rl", "--algo.group_size", "1", "--run.dir", str(tmp_path)])
    assert rc == 2
    assert "group_size must be >= 2" in capsys.readouterr().err
    from rlpost.recipes import cls_rl

    cfg = cls_rl.quick()
    cfg.algo.max_tokens = 1024
    with pytest.raises(RlpostError, match=r"algo.max_tokens \(1024\) leaves no room for a prompt"):
        cls_rl.validate(cfg)
    cfg.algo.max_tokens = 1023
    cls_rl.validate(cfg)
    cfg.run.track = ("jsonl", "bogus")  # rejected before the run directory is written
    with pytest.raises(RlpostError, match="run.track: unknown backend.s. bogus"):
        cls_rl.validate(cfg)
    from rlpost.recipes import eef

    cfg = eef.quick()
    cfg.validate()
    cfg.sft.max_len = 2048  # the bug case: prompts up to 3,500 tokens trained at 2,048
    with pytest.raises(RlpostError, match=r"sft.max_len \(2048\) is shorter than"):
        cfg.validate()


def _weighted_logprob(policy, samples) -> float:
    """Sum of the policy's logprobs of every loss-weighted token of the SFT samples."""
    import torch

    from rlpost.algos.sft import tokenize_sample

    total = 0.0
    with torch.no_grad():
        for s in samples:
            ids, w = tokenize_sample(policy.tokenizer, s, 8192)
            hidden = policy.model.get_decoder()(input_ids=torch.tensor([ids])).last_hidden_state
            weighted = torch.tensor(w[1:]) > 0  # hidden state t predicts token t + 1
            logits = policy.model.get_output_embeddings()(hidden[0, :-1][weighted]).float()
            targets = torch.tensor(ids[1:])[weighted]
            total += float(torch.log_softmax(logits, -1).gather(-1, targets[:, None]).sum())
    return total


@pytest.mark.slow
def test_eef_smoke_runs_bc_and_an_iteration(engine, model_path, tmp_path):
    """The eef recipe end to end on the bundled model and vLLM: the weak expert's 4 episodes (2
    successes), behaviour cloning on them, one EEF iteration, results and the model saved."""
    import json

    from rlpost.collect.episodes import to_samples
    from rlpost.envs.webshop.env import WebShopEnv
    from rlpost.envs.webshop.expert import Expert
    from rlpost.policy import Policy
    from rlpost.recipes import eef

    cfg = eef.smoke()
    cfg.run.dir = str(tmp_path / "eef")
    cfg.expert_tasks = 4
    results = eef.main(cfg, generator=engine, zero_shot=False)
    assert results["expert/episodes"] == 4.0 and results["expert/success"] == 0.5
    assert json.loads((tmp_path / "eef" / "results.json").read_text()) == results
    evals = [r for r in map(json.loads, (tmp_path / "eef" / "metrics.jsonl").read_text()
                            .splitlines()) if "eval/score" in r]
    assert [(r["eval/score"], r["eval/success"]) for r in evals] == [
        (results["bc/score"], results["bc/success"]), (results["eef_1/score"],
                                                       results["eef_1/success"])]
    # behaviour cloning raised the likelihood of the expert's successful actions
    env = WebShopEnv(cfg.env)
    wins = [e for e in (Expert(cfg.expert).play(env, t) for t in env.tasks("train")[:4])
            if e.success]
    from rlpost.collect.episodes import Episode

    data = to_samples(env, [Episode(e.task_id, e.actions, 1.0, True) for e in wins],
                      full_history=False)
    base = Policy(model_path)
    tuned = Policy(str(tmp_path / "eef" / "model"))
    assert _weighted_logprob(tuned, data) > _weighted_logprob(base, data) + 5.0


def _tuning(policy, cls=None, **overrides):
    from rlpost.recipes import eef
    from scripted import MenuGenerator

    cfg = eef.smoke()
    cfg.sft.lr = 1e-3
    for k, v in overrides.items():
        setattr(cfg, k, v)
    run = (cls or eef.EEF)(cfg, policy, MenuGenerator(policy.tokenizer))
    run.train_tasks = _won_and_failed(run.env, cfg.expert)
    run.collect_expert()
    assert [e.success for e in run.expert] == [True, False]
    return cfg, run


def _won_and_failed(env, expert_cfg) -> list[int]:
    """The first train tasks (from 200) the weak expert solves and fails; the failed one is
    solvable by the oracle after the expert's first action (a state EEF can simulate from)."""
    from rlpost.envs.webshop.expert import Expert
    from test_eef import _oracle_from

    won = failed = None
    for task in env.unwrapped.tasks("train")[200:]:
        ep = Expert(expert_cfg).play(env, task)
        if ep.success:
            won = won if won is not None else task
        elif failed is None and len(ep.actions) >= 2 and _oracle_from(
                env.unwrapped, task, ep.actions[:1]) == 1.0:
            failed = task
        if won is not None and failed is not None:
            return [won, failed]
    raise AssertionError("no won/failed pair of weak-expert tasks")


def _same_weights(a, b) -> bool:
    import torch

    return all(torch.equal(x, y) for (_, x), (_, y) in zip(a.named_tensors(), b.named_tensors()))


def test_an_eef_iteration_keeps_and_trains_on_a_spliced_episode(tiny_policy, monkeypatch):
    """iterate("eef") with the failure exploration's result given: the spliced episode of a
    failed expert task is kept, joins the data (with the expert's successes), and the SFT on it
    raises the likelihood of its weighted actions; a task RFT solved meanwhile drops it."""
    import math

    from rlpost.collect.eef import EEFResult, Label, state_indices
    from rlpost.collect.episodes import Episode, to_samples
    from rlpost.envs.webshop.expert import Expert
    from rlpost.recipes import eef
    from test_eef import _oracle_from

    policy = tiny_policy  # the recipe's logic, not the model, is under test
    cfg, run = _tuning(policy, iter_epochs=2, eef_states=3, eef_samples=2, eef_pick="latest",
                       eef_neutral_weight=0.1, eef_harmful_weight=0.2, temperature=0.9)
    cfg.run.seed = 4
    won, failed = run.train_tasks
    env = run.env.unwrapped
    assert _oracle_from(env, failed, run.expert[1].actions[:1]) == 1.0
    spliced = Episode(failed, list(env.actions), 1.0, True, "eef", [1.0] * len(env.actions))
    calls = []

    def explore_failures(runner, episodes, m, params, *args):
        assert runner is run.runner
        calls.append(([e.task_id for e in episodes], (m, params.temperature, *args)))
        return [EEFResult([Label.BENEFICIAL] * len(e.actions), spliced) for e in episodes]

    monkeypatch.setattr(eef, "explore_failures", explore_failures)
    data = to_samples(env, [spliced], full_history=False)
    before = _weighted_logprob(policy, data)
    stats = run.iterate(0, found=[Episode(won, ["search[x]"], 0.0, False)])
    # only the failed expert task RFT has not solved, with the config's settings
    assert calls == [([failed], (3, 0.9, derive_seed(4, "eef", 0), "latest", 0.1, 0.2, 2))]
    n_states = len(state_indices(len(run.expert[1].actions), 3))
    assert stats == {"iter/explore_success": 0.0, "iter/eef_failed_explored": 1.0,
                     "iter/eef_rollouts": 2.0 * n_states, "iter/eef_kept": 1.0,
                     "iter/episodes": 2.0}
    assert run.eef_kept == {failed: spliced} and run.generator.syncs == 1
    # the data: the expert's success and the spliced episode, one SFT sample per action
    n = len(to_samples(env, [run.expert[0], spliced], full_history=False))
    assert run.sft_step == math.ceil(n / cfg.sft.batch_size) * 2
    assert _weighted_logprob(policy, data) > before + 1.0
    # once exploration solves the task, its own success replaces the spliced episode, and
    # failures are no longer explored there
    solved = Episode(failed, Expert().play(env, failed).actions, 1.0, True)
    stats = run.iterate(1, found=[solved])
    assert stats == {"iter/explore_success": 1.0, "iter/eef_failed_explored": 0.0,
                     "iter/eef_rollouts": 0.0, "iter/eef_kept": 0.0, "iter/episodes": 2.0}
    assert run.solved == {failed: solved} and calls[-1][0] == []  # no failure left to explore


def test_an_rft_iteration_explores_no_failures(tiny_policy):
    """RFT's loop (which EEF extends) keeps the explored successes and nothing else."""
    from rlpost.collect.episodes import Episode
    from rlpost.envs.webshop.expert import Expert
    from rlpost.recipes import rft

    cfg, run = _tuning(tiny_policy, cls=rft.RFT)
    won, failed = run.train_tasks
    solved = Episode(failed, Expert().play(run.env, failed).actions, 1.0, True)
    stats = run.iterate(0, found=[solved, Episode(won, ["search[x]"], 0.0, False)])
    assert stats == {"iter/explore_success": 0.5, "iter/episodes": 2.0}
    assert run.solved == {failed: solved} and not hasattr(run, "eef_kept")
    assert run.training_data() == [run.expert[0], solved]


def test_behaviour_cloning_trains_on_the_expert_successes_only(tiny_policy, tiny_model_path):
    from rlpost.algos.sft import train_sft
    from rlpost.collect.episodes import to_samples
    from rlpost.policy import Policy

    cfg, run = _tuning(tiny_policy)
    run.behaviour_clone()
    reference = Policy(tiny_model_path, autocast=None)
    res = train_sft(reference, to_samples(run.env, run.expert[:1], full_history=False), cfg.sft,
                    progress=False)
    assert run.sft_step == res.steps > 0 and _same_weights(tiny_policy, reference)


def test_from_base_retrains_the_base_model_on_all_data(tiny_policy, tiny_model_path):
    """from_base: each iteration starts again from the weights the run began with (RFT's
    original recipe), with the full SFT settings."""
    import torch

    from rlpost.algos.sft import train_sft
    from rlpost.collect.episodes import to_samples
    from rlpost.policy import Policy

    cfg, run = _tuning(tiny_policy, from_base=True)
    with torch.no_grad():  # as if behaviour cloning had moved the weights
        for p in tiny_policy.model.parameters():
            p.add_(0.01)
    run.iterate(0, found=[])
    reference = Policy(tiny_model_path, autocast=None)
    train_sft(reference, to_samples(run.env, run.expert[:1], full_history=False), cfg.sft,
              progress=False)
    assert _same_weights(tiny_policy, reference)


def test_eef_presets_are_rfts_with_the_eef_fields():
    """The two recipes run the same stages on the same data: only EEF's own fields differ."""
    import dataclasses

    from rlpost.recipes import eef, rft

    assert set(eef.PRESETS) == set(rft.PRESETS)
    for name, build in rft.PRESETS.items():
        base, ext = dataclasses.asdict(build()), dataclasses.asdict(eef.PRESETS[name]())
        assert {k: v for k, v in ext.items() if not k.startswith("eef_")} == base
    assert (eef.quick().eef_states, eef.smoke().eef_samples) == (4, 1)
