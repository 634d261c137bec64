"""Every recipe preset constructs and validates without a GPU or a model."""

import importlib

import pytest

from rlpost.cli import main
from rlpost.errors import RlpostError
from rlpost.recipes import RECIPES


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
    cfg.algo.max_tokens = 4096
    with pytest.raises(RlpostError, match="exceed run.vllm.max_model_len"):
        cls_rl.validate(cfg)
