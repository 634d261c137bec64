"""Checkpoint helpers that need no model: the task sampler stream and corrupt checkpoints."""

import json

import pytest

from rlpost.checkpoint import TaskSampler, latest_checkpoint, load_checkpoint
from rlpost.errors import RlpostError


def test_task_sampler_passes_without_replacement_and_resumes_its_stream():
    s = TaskSampler(list(range(10)), seed=3)
    first = s.sample(10)
    assert sorted(first) == list(range(10))
    s.sample(4)
    state = json.loads(json.dumps(s.state_dict(), default=list))  # survives serialisation
    expected = s.sample(9)
    resumed = TaskSampler(list(range(10)), seed=999)
    resumed.load_state_dict(state)
    assert resumed.sample(9) == expected


def test_empty_train_split_is_a_clear_error():
    with pytest.raises(RlpostError) as e:
        TaskSampler([], seed=0)
    assert str(e.value) == "no training tasks: the env's train split is empty"
    assert TaskSampler(list(range(10))).sample(10) == TaskSampler(list(range(10)), 0).sample(10)


def test_corrupt_checkpoint_raises_and_is_kept(tmp_path):
    ckpt = tmp_path / "checkpoint"
    ckpt.mkdir()
    (ckpt / "state.json").write_text(json.dumps({"step": 4}))
    (ckpt / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(RlpostError, match="corrupt"):
        load_checkpoint(tmp_path, policy=None, opt=None, sched=None, sampler=None)
    assert (ckpt / "model.safetensors").exists(), "nothing written before may be lost"


@pytest.mark.parametrize("state", ["{not json", '{"epoch": 3}', '{"step": "x"}'])
def test_a_resumed_runs_tracker_reports_a_corrupt_state_file_in_one_line(tmp_path, state):
    """The run's set-up reads the resume step before the trainer loads the checkpoint: a broken
    state.json is the same one-line error there, and nothing is removed."""
    from rlpost.checkpoint import checkpoint_step
    from rlpost.run import RunConfig, make_tracker

    (tmp_path / "checkpoint").mkdir()
    (tmp_path / "checkpoint" / "state.json").write_text(state)
    with pytest.raises(RlpostError, match=r"^checkpoint .*checkpoint is corrupt \("):
        make_tracker(RunConfig(track=("jsonl",)), tmp_path, {"a": 1})
    assert (tmp_path / "checkpoint" / "state.json").read_text() == state
    (tmp_path / "checkpoint" / "state.json").write_text('{"step": 7}')
    assert checkpoint_step(tmp_path) == 7 and checkpoint_step(tmp_path / "none") is None


def test_old_checkpoint_is_used_when_a_save_was_interrupted(tmp_path):
    (tmp_path / "checkpoint.old").mkdir()
    (tmp_path / "checkpoint.old" / "state.json").write_text(json.dumps({"step": 2}))
    (tmp_path / "checkpoint.tmp").mkdir()  # a half-written save
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoint.old"
    assert latest_checkpoint(tmp_path / "nothing-here") is None


# --- save and load on a real (tiny) model -----------------------------------------------------


def _trainer(policy, warmup=4):
    import torch

    opt = torch.optim.AdamW(policy.trainable_parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup))
    return opt, sched


def _one_step(policy, opt, sched):
    import torch

    loss = sum((p.float() ** 2).sum() for p in policy.trainable_parameters())
    opt.zero_grad()
    loss.backward()
    opt.step()
    sched.step()
    torch.rand(3)  # the step also moves the global RNG


def test_save_then_load_restores_everything(tiny_policy, tiny_model_path, tmp_path, capsys):
    import random

    import numpy as np
    import torch

    from rlpost.checkpoint import save_checkpoint
    from rlpost.policy import Policy

    opt, sched = _trainer(tiny_policy)
    sampler = TaskSampler(list(range(7)), seed=1)
    for _ in range(2):
        _one_step(tiny_policy, opt, sched)
        sampler.sample(3)
    random.seed(5), np.random.seed(5), torch.manual_seed(5)
    path = save_checkpoint(tmp_path, 2, tiny_policy, opt, sched, sampler)
    assert path == tmp_path / "checkpoint" and json.loads((path / "state.json").read_text()) == \
        {"step": 2}
    expected = (random.random(), float(np.random.rand()), float(torch.rand(())),
                sampler.sample(5), sched.get_last_lr())

    fresh = Policy(tiny_model_path, autocast=None)
    opt2, sched2 = _trainer(fresh)
    sampler2 = TaskSampler(list(range(7)), seed=99)
    random.seed(0), np.random.seed(0), torch.manual_seed(0)
    capsys.readouterr()
    assert load_checkpoint(tmp_path, fresh, opt2, sched2, sampler2) == 2
    assert capsys.readouterr().out == f"rlpost: resumed from {path} at step 2\n"
    got = (random.random(), float(np.random.rand()), float(torch.rand(())), sampler2.sample(5),
           sched2.get_last_lr())
    assert got == expected and sched2.last_epoch == 2
    for (name, a), (_, b) in zip(tiny_policy.named_tensors(), fresh.named_tensors()):
        assert torch.equal(a, b), name
    s1, s2 = opt.state_dict()["state"], opt2.state_dict()["state"]
    assert all(torch.equal(s1[k]["exp_avg"], s2[k]["exp_avg"]) for k in s1) and len(s1) == len(s2)


def test_saving_again_replaces_the_checkpoint_and_cleans_up(tiny_policy, tmp_path):
    from rlpost.checkpoint import save_checkpoint

    opt, sched = _trainer(tiny_policy)
    sampler = TaskSampler([1, 2, 3])
    (tmp_path / "checkpoint.tmp").mkdir()  # left by a run killed while writing
    (tmp_path / "checkpoint.tmp" / "junk").write_text("x")
    save_checkpoint(tmp_path, 1, tiny_policy, opt, sched, sampler)
    assert not (tmp_path / "checkpoint" / "junk").exists()  # the stale folder was cleared
    save_checkpoint(tmp_path, 2, tiny_policy, opt, sched, sampler)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]
    assert json.loads((tmp_path / "checkpoint" / "state.json").read_text()) == {"step": 2}


def test_a_checkpoint_of_another_model_is_refused(tiny_policy, tmp_path):
    import torch

    from rlpost.checkpoint import save_checkpoint

    opt, sched = _trainer(tiny_policy)
    save_checkpoint(tmp_path, 3, tiny_policy, opt, sched, TaskSampler([1]))
    from safetensors.torch import load_file, save_file

    path = tmp_path / "checkpoint" / "model.safetensors"
    good = load_file(path)

    def refused(weights) -> str:
        save_file(weights, path)
        with pytest.raises(RlpostError) as e:
            load_checkpoint(tmp_path, tiny_policy, opt, sched, TaskSampler([1]))
        return str(e.value)

    head = f"checkpoint {tmp_path / 'checkpoint'} does not match the model: "
    both = {k: v for k, v in good.items() if k != "model.norm.weight"} | {"extra.weight":
                                                                          torch.zeros(1)}
    assert refused(both) == head + "missing ['model.norm.weight'], unexpected ['extra.weight']"
    assert refused(good | {"extra.weight": torch.zeros(1)}) == \
        head + "missing [], unexpected ['extra.weight']"
    extra = {f"extra{i}.weight": torch.zeros(1) for i in range(5)}
    assert refused(good | extra) == \
        head + f"missing [], unexpected {sorted(extra)[:3]}"  # the first three
    layers = [k for k in tiny_policy.model.state_dict() if k.startswith("model.layers.0.")]
    assert len(layers) > 3
    msg = refused({k: v for k, v in good.items() if k not in layers})
    assert msg == head + f"missing {layers[:3]}, unexpected []"  # the first three, model order


@pytest.mark.parametrize("broken, error", [
    ("state.json", "JSONDecodeError: Expecting property name enclosed in double quotes: line 1 "
                   "column 2 (char 1)"),
    ("trainer.pt", "UnpicklingError: invalid load key, '{'.")])
def test_any_unreadable_file_is_a_corrupt_checkpoint(tiny_policy, tmp_path, broken, error):
    from rlpost.checkpoint import save_checkpoint

    opt, sched = _trainer(tiny_policy)
    save_checkpoint(tmp_path, 3, tiny_policy, opt, sched, TaskSampler([1]))
    (tmp_path / "checkpoint" / broken).write_text("{garbage")
    with pytest.raises(RlpostError) as e:
        load_checkpoint(tmp_path, tiny_policy, opt, sched, TaskSampler([1]))
    assert str(e.value) == (f"checkpoint {tmp_path / 'checkpoint'} is corrupt ({error}); move it "
                            "away to start fresh, or point --run.dir at another run")


def test_a_long_error_is_cut_to_its_first_120_characters(tmp_path, monkeypatch):
    import safetensors.torch

    (tmp_path / "checkpoint").mkdir()
    (tmp_path / "checkpoint" / "state.json").write_text('{"step": 1}')

    def fail(path):
        raise OSError("x" * 200 + "\nsecond line")

    monkeypatch.setattr(safetensors.torch, "load_file", fail)
    with pytest.raises(RlpostError, match=r"\(OSError: x{120}\); move it"):
        load_checkpoint(tmp_path, None, None, None, None)


def test_tied_weight_names_from_either_transformers_convention():
    import torch

    from rlpost.checkpoint import _tied_keys

    class Tied(torch.nn.Module):
        _tied_weights_keys = {"lm_head.weight": "model.embed_tokens.weight"}

    assert _tied_keys(Tied()) == {"lm_head.weight"}
    Tied._tied_weights_keys = ["lm_head.weight"]
    assert _tied_keys(Tied()) == {"lm_head.weight"}
    assert _tied_keys(torch.nn.Linear(1, 1)) == set()


def test_a_save_killed_between_its_two_renames_leaves_the_previous_checkpoint(
        tiny_policy, tmp_path, monkeypatch):
    from pathlib import Path

    from rlpost.checkpoint import save_checkpoint

    opt, sched = _trainer(tiny_policy)
    save_checkpoint(tmp_path, 1, tiny_policy, opt, sched, TaskSampler([1]))
    (tmp_path / "checkpoint.old").mkdir()  # a stale one from an earlier kill
    (tmp_path / "checkpoint.old" / "junk").write_text("x")
    shipped = Path.rename

    def killed(self, target):
        if Path(target).name == "checkpoint":
            raise KeyboardInterrupt  # the process dies here
        return shipped(self, target)

    monkeypatch.setattr(Path, "rename", killed)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, 2, tiny_policy, opt, sched, TaskSampler([1]))
    monkeypatch.undo()
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoint.old"
    assert json.loads((tmp_path / "checkpoint.old" / "state.json").read_text()) == {"step": 1}
    assert not (tmp_path / "checkpoint.old" / "junk").exists()
    assert load_checkpoint(tmp_path, tiny_policy, opt, sched, TaskSampler([1])) == 1
    save_checkpoint(tmp_path, 3, tiny_policy, opt, sched, TaskSampler([1]))  # and saving goes on
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]


def test_no_checkpoint_loads_nothing(tiny_policy, tmp_path):
    opt, sched = _trainer(tiny_policy)
    assert load_checkpoint(tmp_path, tiny_policy, opt, sched, TaskSampler([1])) == 0
    assert sched.last_epoch == 0


def test_task_sampler_draws_every_task_once_per_pass_across_calls():
    s = TaskSampler(["a", "b", "c"], seed=0)
    draws = s.sample(2) + s.sample(2) + s.sample(2)
    assert sorted(draws[:3]) == ["a", "b", "c"] and sorted(draws[3:]) == ["a", "b", "c"]
    assert TaskSampler(["a", "b", "c"], seed=0).sample(6) == draws
    assert s.sample(0) == []


def test_task_sampler_stream_is_pinned():
    """The exact stream of seed 3 (Python's Mersenne Twister shuffle, popped from the end): a
    change of seed use or order changes which tasks a run trains on."""
    assert TaskSampler(list(range(10)), seed=3).sample(12) == [3, 8, 2, 7, 4, 9, 0, 6, 5, 1, 7, 4]


def test_the_latest_complete_checkpoint_wins(tmp_path):
    for name, step in (("checkpoint", 5), ("checkpoint.old", 4)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "state.json").write_text(json.dumps({"step": step}))
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoint"
    (tmp_path / "checkpoint" / "state.json").unlink()  # killed before state.json was written
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoint.old"
