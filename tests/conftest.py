"""Shared fixtures: the bundled model (converted once) and ONE vLLM engine per test session."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")

# Loaded here once rather than by the first test that needs them: mutation testing forks one
# test run per mutant from a process that has imported this file (scripts/mutation.py), and
# each fork would otherwise import them again (~4 s)
import transformers.models.llama.modeling_llama  # noqa: F401, E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: F401, E402


def pytest_collection_modifyitems(items):
    """Every test that uses the vLLM engine is `slow`: `-m "not slow"` is the fast suite (and
    what mutation testing runs)."""
    for item in items:
        if {"engine", "_engine"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def model_path() -> str:
    from rlpost.policy import DEFAULT_MODEL, resolve_model

    return resolve_model(DEFAULT_MODEL)


@pytest.fixture(scope="session")
def _engine(model_path):
    from rlpost.generate.vllm import VLLMConfig, VLLMGenerator

    gen = VLLMGenerator(model_path, VLLMConfig(max_model_len=1024, kv_cache_gb=0.5), seed=0)
    yield gen


@pytest.fixture()
def engine(_engine, model_path):
    """The shared vLLM engine, holding the bundled model's original weights on entry."""
    from safetensors.torch import load_file

    weights = load_file(os.path.join(model_path, "model.safetensors"))
    _engine.load_weights(weights.items())
    return _engine


@pytest.fixture()
def policy(model_path):
    from rlpost.policy import Policy

    return Policy(model_path)


@pytest.fixture(scope="session")
def tiny_model_path(model_path, tmp_path_factory) -> str:
    """A tiny random Llama with the bundled tokenizer (see scripted.build_tiny_model)."""
    from scripted import build_tiny_model

    return build_tiny_model(model_path, tmp_path_factory.mktemp("tiny"))


@pytest.fixture()
def tiny_policy(tiny_model_path):
    """A fresh float32 policy on the tiny model (no autocast: gradients are compared exactly)."""
    from rlpost.policy import Policy

    return Policy(tiny_model_path, autocast=None)
