"""Transformers generator: the fallback where vLLM is missing, and the reference for tests.

Same contract as the vLLM generator (`rlpost.generate.Generator`): temperature, top_p (nucleus,
Holtzman et al. 2020, as vLLM's `apply_top_k_top_p`), max_tokens and stop strings are honoured,
sampling stops at every end id of the model's generation config, and the logprobs are those of
the distribution sampled from (vLLM's "processed_logprobs"). It holds its own copy of the model
(so generation never sees half-updated training weights); `sync_weights` copies into it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import torch

from rlpost.errors import RlpostError
from rlpost.generate import Completion, GenParams, Prompt, as_prompt
from rlpost.policy import load_tokenizer

if TYPE_CHECKING:
    from rlpost.policy import Policy


def top_p_logprobs(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """logits [B, V] -> logprobs [B, V] of the nucleus distribution: the most probable tokens
    whose mass first reaches `top_p` keep their renormalised probability, the rest get -inf
    (at least the most probable token is kept)."""
    if top_p >= 1.0:
        return torch.log_softmax(logits, -1)
    probs = torch.softmax(logits, -1)
    sorted_p, order = probs.sort(-1, descending=True)
    before = sorted_p.cumsum(-1) - sorted_p  # mass of the more probable tokens
    drop_sorted = before >= top_p
    drop_sorted[:, 0] = False
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return torch.log_softmax(logits.masked_fill(drop, float("-inf")), -1)


def end_ids(model, tokenizer) -> set[int]:
    """The token ids that end a generation: the tokenizer's EOS and every `eos_token_id` of the
    model's generation config (vLLM stops on both)."""
    ids = {tokenizer.eos_token_id}
    cfg_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids.update(cfg_eos if isinstance(cfg_eos, (list, tuple)) else [cfg_eos])
    return {int(i) for i in ids if i is not None}


class HFGenerator:
    def __init__(self, model_path: str, dtype: str = "float32", device: str = "cpu",
                 batch_size: int = 16, seed: int = 0):
        from transformers import AutoModelForCausalLM

        self.tokenizer = load_tokenizer(model_path)
        self.model = AutoModelForCausalLM.from_pretrained(model_path, dtype=getattr(torch, dtype))
        self.model.to(device).eval()
        self.device, self.batch_size = torch.device(device), batch_size
        self.rng = torch.Generator(device=device).manual_seed(seed)
        self.max_model_len = int(self.model.config.max_position_embeddings)
        self.end_ids = end_ids(self.model, self.tokenizer)

    @torch.no_grad()
    def generate(self, prompts: Sequence[Prompt | Sequence[int]],
                 params: GenParams) -> list[Completion]:
        """Completions of `prompts` (see `Generator`), in batches of `batch_size`. Raises
        RlpostError for prompts with images (this generator loads causal LMs, text only) and
        ValueError for a prompt longer than the context or with ids outside the vocabulary."""
        ids: list[list[int]] = []
        for p in map(as_prompt, prompts):
            if p.images:
                raise RlpostError(f"the prompt has {len(p.images)} image(s) but the transformers "
                                  "generator runs text-only causal LMs")
            if len(p.ids) > self.max_model_len:
                raise ValueError(f"a prompt of {len(p.ids)} tokens is longer than the model's "
                                 f"context ({self.max_model_len})")
            if min(p.ids) < 0 or max(p.ids) >= self.model.config.vocab_size:
                raise ValueError(f"prompt token ids must be in [0, {self.model.config.vocab_size})")
            ids.append(p.ids)
        out: list[Completion] = []
        for i in range(0, len(ids), self.batch_size):
            out += self._generate_batch(ids[i : i + self.batch_size], params)
        return out

    def _generate_batch(self, prompts: list[list[int]], params: GenParams) -> list[Completion]:
        """Left-padded batch, token by token with a KV cache; sampling from our own RNG."""
        pad = self.tokenizer.pad_token_id
        rng = self.rng
        if params.seed is not None:
            rng = torch.Generator(device=self.device).manual_seed(params.seed)
        B, T = len(prompts), max(len(p) for p in prompts)
        ids = torch.full((B, T), pad, dtype=torch.long)
        attn = torch.zeros((B, T), dtype=torch.long)
        for i, p in enumerate(prompts):
            ids[i, T - len(p) :] = torch.tensor(p)
            attn[i, T - len(p) :] = 1
        ids, attn = ids.to(self.device), attn.to(self.device)
        position_ids = (attn.cumsum(-1) - 1).clamp(min=0)
        tokens: list[list[int]] = [[] for _ in range(B)]
        logps: list[list[float]] = [[] for _ in range(B)]
        done = [False] * B
        past, step_ids = None, ids
        for _ in range(params.max_tokens):
            out = self.model(input_ids=step_ids, attention_mask=attn, position_ids=position_ids,
                             past_key_values=past, use_cache=True)
            past = out.past_key_values
            logits = out.logits[:, -1].float()
            if params.temperature > 0:
                logprobs = top_p_logprobs(logits / params.temperature, params.top_p)
                nxt = torch.multinomial(logprobs.exp(), 1, generator=rng).squeeze(-1)
            else:
                logprobs = torch.log_softmax(logits, -1)
                nxt = logits.argmax(-1)
            for i in range(B):
                if not done[i]:
                    tokens[i].append(int(nxt[i]))
                    logps[i].append(float(logprobs[i, nxt[i]]))
                    done[i] = int(nxt[i]) in self.end_ids or self._hit_stop(tokens[i], params.stop)
            if all(done):
                break
            step_ids = nxt[:, None]
            attn = torch.cat([attn, torch.ones((B, 1), dtype=attn.dtype, device=attn.device)], 1)
            position_ids = position_ids[:, -1:] + 1
        return [
            Completion(t, lp, self.tokenizer.decode(t, skip_special_tokens=True),
                       "stop" if d else "length")
            for t, lp, d in zip(tokens, logps, done)
        ]

    def _hit_stop(self, tokens: list[int], stop: list[str]) -> bool:
        if not stop:
            return False
        tail = self.tokenizer.decode(tokens[-8:], skip_special_tokens=True)
        return any(s in tail for s in stop)

    def sync_weights(self, policy: Policy) -> None:
        self.load_weights(policy.named_tensors())

    @torch.no_grad()
    def load_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
        state = self.model.state_dict()
        for name, t in named_tensors:
            state[name].copy_(t)

    def close(self) -> None:
        del self.model
