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


@pytest.mark.slow
@pytest.mark.parametrize("name", ["eef"])  # rft runs the same stages minus EEF's simulation
def test_agent_tuning_smoke_runs_and_trains(name, engine, tmp_path):
    import json

    import torch
    from safetensors.torch import load_file

    module = importlib.import_module(RECIPES[name])
    cfg = module.PRESETS["smoke"]()
    cfg.run.dir = str(tmp_path / name)
    cfg.expert_tasks = 4
    results = module.main(cfg, generator=engine, zero_shot=False)
    assert 0.0 <= results["bc/score"] <= 100.0 and 0.0 <= results[f"{name}_1/success"] <= 1.0
    assert results["expert/episodes"] == 4.0
    saved = json.loads((tmp_path / name / "results.json").read_text())
    assert saved == results
    before = load_file(f"{engine_model_path(engine)}/model.safetensors")
    after = load_file(str(tmp_path / name / "model" / "model.safetensors"))
    changed = [k for k in before if not torch.equal(before[k], after[k].to(before[k].dtype))]
    assert changed, "SFT must change the weights"


def engine_model_path(engine) -> str:
    from rlpost.policy import DEFAULT_MODEL, resolve_model

    return resolve_model(DEFAULT_MODEL)


def test_rft_recipe_is_eef_without_failure_exploration():
    from rlpost.recipes import rft

    for build in rft.PRESETS.values():
        assert build().method == "rft"
    cfg = rft.PRESETS["smoke"]()
    cfg.method = "eef"
    with pytest.raises(RlpostError, match="method=rft"):
        rft.main(cfg)
