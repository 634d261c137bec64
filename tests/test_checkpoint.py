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
    with pytest.raises(RlpostError, match="no training tasks"):
        TaskSampler([], seed=0)


def test_corrupt_checkpoint_raises_and_is_kept(tmp_path):
    ckpt = tmp_path / "checkpoint"
    ckpt.mkdir()
    (ckpt / "state.json").write_text(json.dumps({"step": 4}))
    (ckpt / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(RlpostError, match="corrupt"):
        load_checkpoint(tmp_path, policy=None, opt=None, sched=None, sampler=None)
    assert (ckpt / "model.safetensors").exists(), "nothing written before may be lost"


def test_old_checkpoint_is_used_when_a_save_was_interrupted(tmp_path):
    (tmp_path / "checkpoint.old").mkdir()
    (tmp_path / "checkpoint.old" / "state.json").write_text(json.dumps({"step": 2}))
    (tmp_path / "checkpoint.tmp").mkdir()  # a half-written save
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoint.old"
    assert latest_checkpoint(tmp_path / "nothing-here") is None
