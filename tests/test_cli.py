"""The CLI: listing, config overrides, and one-line errors instead of tracebacks."""

import subprocess
import sys

import pytest

from rlpost.cli import main
from rlpost.config import apply_overrides, load_yaml, save_yaml
from rlpost.errors import RlpostError
from rlpost.recipes import cls_rl


def _error_line(capsys) -> str:
    """The last stderr line is the error; no traceback anywhere (libraries may log above it)."""
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    last = err.splitlines()[-1]
    assert last.startswith("error: ")
    return last


def test_recipe_list(capsys):
    assert main(["recipe", "list"]) == 0
    out = capsys.readouterr().out
    assert "cls-rl" in out and "no-think-cls-rl" in out


def test_unknown_recipe_suggests(capsys):
    assert main(["recipe", "run", "cls-lr"]) == 2
    assert "did you mean 'cls-rl'" in _error_line(capsys)


def test_unknown_recipe_from_console_script_is_one_line():
    p = subprocess.run([sys.executable, "-m", "rlpost.cli", "recipe", "run", "nope"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    assert p.stderr.strip().count("\n") == 0 and p.stderr.startswith("error: unknown recipe")


@pytest.mark.parametrize("args, message", [
    (["--algo.lrr", "1e-6"], "did you mean --algo.lr"),
    (["--algo.lr", "fast"], "--algo.lr: expected float"),
    (["--algo.loss_agg", "mean"], "is not one of"),
    (["--algo.steps"], "needs a value"),
    (["--preset", "huge"], "unknown preset"),
    (["algo.lr=1"], "unexpected argument"),
    (["--algo.steps", "1e400"], "--algo.steps: expected int, got '1e400'"),
    (["--algo.steps", "1e-3"], "--algo.steps: expected int, got '1e-3'"),
    (["--algo.top_p", "0"], "top_p must be in (0, 1]"),
    (["--algo.temperature", "nan"], "temperature must be finite and >= 0"),
])
def test_bad_overrides(capsys, args, message):
    assert main(["recipe", "show", "cls-rl", *args]) == 2
    assert message in _error_line(capsys)


def test_overrides_and_yaml_roundtrip(tmp_path):
    cfg = apply_overrides(cls_rl.quick(), ["--algo.lr", "3e-6", "--algo.scale_rewards=false",
                                           "--run.track", "jsonl", "--algo.dual_clip", "none"])
    assert cfg.algo.lr == 3e-6 and cfg.algo.scale_rewards is False
    assert cfg.run.track == ("jsonl",) and cfg.algo.dual_clip is None
    save_yaml(cfg, tmp_path / "c.yaml")
    again = load_yaml(cls_rl.quick(), tmp_path / "c.yaml")
    assert again == cfg
    (tmp_path / "bad.yaml").write_text("algo: [1, 2")
    with pytest.raises(RlpostError, match="not valid YAML"):
        load_yaml(cls_rl.quick(), tmp_path / "bad.yaml")


def test_help_lists_documented_options(capsys):
    assert main(["recipe", "run", "cls-rl", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--algo.group_size" in out and "samples per task" in out


def test_help_names_choices_and_keeps_inherited_field_docs(capsys):
    """eef's Config extends rft's: the inherited fields keep their docs; a Literal field lists
    its choices; optional and list fields say so."""
    assert main(["recipe", "run", "eef", "--help"]) == 0
    lines = capsys.readouterr().out.splitlines()

    def entry(option):
        i = next(k for k, line in enumerate(lines) if line.startswith(f"  --{option} ("))
        return lines[i].strip(), lines[i + 1].strip()

    assert entry("eef_pick")[0] == "--eef_pick (one of earliest|latest, default 'earliest')"
    assert entry("iter_epochs") == ("--iter_epochs (int, default 1)", "Epochs over all kept data "
                                    "in each iteration (continuing from the current weights).")
    assert entry("max_prompt_tokens")[0] == "--max_prompt_tokens (int or None, default 3500)"
    assert entry("sft.lora_targets")[0].startswith("--sft.lora_targets (list of str, default (")
    assert entry("run.generator")[0] == "--run.generator (one of vllm|hf, default 'vllm')"


def test_integers_written_in_exponent_form_are_integers():
    cfg = apply_overrides(cls_rl.quick(), ["--algo.steps", "1e3", "--algo.group_size", "4.0"])
    assert (cfg.algo.steps, cfg.algo.group_size) == (1000, 4)


@pytest.mark.parametrize("args, message", [
    (["--max_tokens", "0"], "max_tokens must be >= 1"),
    (["--expert_tasks", "-3"], "expert_tasks must be >= 0"),
    (["--temperature", "-1"], "temperature must be finite and >= 0"),
    (["--max_prompt_tokens", "0"], "max_prompt_tokens must be None or in [1, "),
    (["--eef_harmful_weight", "-5"], "must be in [0, 1]"),
])
def test_agent_tuning_configs_refuse_values_no_run_can_use(capsys, args, message):
    assert main(["recipe", "show", "eef", "--preset", "smoke", *args]) == 2
    assert message in _error_line(capsys)


def test_a_run_directory_that_cannot_be_one_is_a_one_line_error(capsys, tmp_path):
    (tmp_path / "afile").write_text("x")
    assert main(["recipe", "run", "cls-rl", "--preset", "smoke",
                 "--run.dir", str(tmp_path / "afile")]) == 2
    assert _error_line(capsys) == f"error: cannot use {tmp_path / 'afile'} as the run directory: File exists"


def test_agent_tuning_refuses_a_run_directory_it_cannot_resume(capsys, tmp_path):
    (tmp_path / "metrics.jsonl").write_text("{}\n")
    assert main(["recipe", "run", "rft", "--preset", "smoke", "--run.dir", str(tmp_path)]) == 2
    assert _error_line(capsys).endswith("runs do not resume yet (no checkpoint between stages): "
                                        "choose another --run.dir")
    assert (tmp_path / "metrics.jsonl").read_text() == "{}\n"


def test_bad_model_path(capsys, tmp_path):
    rc = main(["recipe", "run", "cls-rl", "--preset", "smoke", "--run.dir", str(tmp_path / "r"),
               "--run.model", str(tmp_path / "no-such-model")])
    assert rc == 2
    assert "does not exist" in _error_line(capsys)


@pytest.mark.slow  # starts (and fails to start) its own vLLM engine
def test_too_little_kv_cache_memory(capsys, tmp_path, model_path):
    rc = main(["recipe", "run", "cls-rl", "--preset", "smoke", "--run.dir", str(tmp_path / "r"),
               "--run.vllm.kv_cache_gb", "0.0001"])
    assert rc == 2
    err = _error_line(capsys)
    assert "too little memory for the vLLM KV cache" in err and "--run.vllm" in err
