"""Transformers generator: the fallback where vLLM is missing, and the reference for tests.

Same interface as the vLLM generator. It holds its own copy of the model (so generation never
sees half-updated training weights) and `update_weights` copies tensors into it.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from rlpost.generate import Completion, GenParams
from rlpost.policy import load_tokenizer


class HFGenerator:
    def __init__(self, model_path: str, dtype: str = "float32", device: str = "cpu",
                 batch_size: int = 16, seed: int = 0):
        from transformers import AutoModelForCausalLM

        self.tokenizer = load_tokenizer(model_path)
        self.model = AutoModelForCausalLM.from_pretrained(model_path, dtype=getattr(torch, dtype))
        self.model.to(device).eval()
        self.device, self.batch_size = torch.device(device), batch_size
        self.rng = torch.Generator(device=device).manual_seed(seed)

    @torch.no_grad()
    def generate(self, prompts: list[list[int]], params: GenParams) -> list[Completion]:
        out: list[Completion] = []
        for i in range(0, len(prompts), self.batch_size):
            out += self._generate_batch(prompts[i : i + self.batch_size], params)
        return out

    def _generate_batch(self, prompts: list[list[int]], params: GenParams) -> list[Completion]:
        """Left-padded batch, token by token with a KV cache; sampling from our own RNG."""
        pad, eos = self.tokenizer.pad_token_id, self.tokenizer.eos_token_id
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
                logprobs = torch.log_softmax(logits / params.temperature, -1)
                nxt = torch.multinomial(logprobs.exp(), 1, generator=self.rng).squeeze(-1)
            else:
                logprobs = torch.log_softmax(logits, -1)
                nxt = logits.argmax(-1)
            for i in range(B):
                if not done[i]:
                    tokens[i].append(int(nxt[i]))
                    logps[i].append(float(logprobs[i, nxt[i]]))
                    done[i] = int(nxt[i]) == eos or self._hit_stop(tokens[i], params.stop)
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

    @torch.no_grad()
    def update_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
        state = self.model.state_dict()
        for name, t in named_tensors:
            state[name].copy_(t)

    def close(self) -> None:
        del self.model
