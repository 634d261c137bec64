"""Shared fixtures: the bundled model (converted once) and ONE vLLM engine per test session."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")


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
    _engine.update_weights(weights.items())
    return _engine


@pytest.fixture()
def policy(model_path):
    from rlpost.policy import Policy

    return Policy(model_path)
