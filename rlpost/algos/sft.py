"""SFT: supervised fine-tuning on multi-turn chats with per-token loss weights, full or LoRA.

For behaviour cloning, rejection-sampling fine-tuning, EEF (loss only on the kept agent turns,
harmful ones weighted 0) and TL-Training (per-token weights). Math:
- each token t of a conversation has a weight w_t: that of its assistant message (times an
  optional per-token weight) on the message's content and end-of-turn token, 0 elsewhere;
- loss of an optimizer step = -(sum_t w_t logp_t) / (sum_t w_t) over every weighted token of
  its batch of conversations (weighted token-mean NLL, `sft_loss`); micro-batches divide by the
  batch's total weight, so gradient accumulation is exact.
"""

from __future__ import annotations

import math
import random
import sys
import time
import typing
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass

import torch

from rlpost import learn
from rlpost.errors import RlpostError
from rlpost.learn import Schedule
from rlpost.policy import LoRAConfig, Policy
from rlpost.track import Tracker
from rlpost.chat import render_chat
from rlpost.types import Message

SCHEDULES = typing.get_args(Schedule)
_SENTINEL = "\x00rlpost-sft-content\x00"


@dataclass
class SFTSample:
    """One conversation to imitate."""

    messages: list[Message]
    """system/user/assistant turns."""
    weights: list[float]
    """One per ASSISTANT message, in order: 0 = no loss on that turn, 1 = normal, other = scale."""
    token_weights: list[list[float]] | None = None
    """Optional: per assistant message, one weight per token of its target span (content and
    end-of-turn token, see `assistant_spans`); multiplies `weights`."""


# --- tokenization ------------------------------------------------------------------------


def _render(tokenizer, messages: Sequence[Message]) -> str:
    return render_chat(tokenizer, messages)


def _content_span(tokenizer, messages: Sequence[Message], i: int, full: str) -> tuple[int, int, int]:
    """(content start, content end, end of the message's render) of assistant message i in `full`."""
    prefix, cur = _render(tokenizer, messages[:i]), _render(tokenizer, messages[: i + 1])
    if not (cur.startswith(prefix) and full.startswith(cur)):
        raise RlpostError(
            f"sft: the chat template does not render message {i} as an extension of the earlier "
            "ones (it rewrites history); cannot locate assistant tokens")
    new, content = cur[len(prefix):], messages[i].content
    # the template's layout around a unique sentinel gives the exact place of the content
    probe = _render(tokenizer, [*messages[:i], Message("assistant", _SENTINEL)])
    if probe.startswith(prefix) and probe.count(_SENTINEL) == 1:
        head, tail = probe[len(prefix):].split(_SENTINEL)
        if new == head + content + tail:
            start = len(prefix) + len(head)
            return start, start + len(content), len(cur)
    at = new.rfind(content) if content else -1  # template transforms the content: best effort
    if at < 0:
        raise RlpostError(f"sft: assistant message {i}'s content is not in the chat template's "
                          "render of it (does the template rewrite assistant turns?)")
    return len(prefix) + at, len(prefix) + at + len(content), len(cur)


def assistant_spans(tokenizer, messages: Sequence[Message]) -> tuple[list[int], list[list[int]]]:
    """Token ids of the whole conversation (chat template, no generation prompt) and, per
    assistant message, the indices of its target tokens: those overlapping its content, plus the
    end-of-turn token that follows it (e.g. SmolLM2's ``<|im_end|>``), so the model learns to stop."""
    full = _render(tokenizer, messages)
    enc = tokenizer(full, return_offsets_mapping=True, add_special_tokens=False)
    ids, offsets = list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]
    spans: list[list[int]] = []
    for i, m in enumerate(messages):
        if m.role != "assistant":
            continue
        start, end, turn_end = _content_span(tokenizer, messages, i, full)
        nxt = next((t for t, (s, e) in enumerate(offsets) if s >= end and e > s), None)
        stop = offsets[nxt][1] if nxt is not None and offsets[nxt][0] < turn_end else end
        spans.append([t for t, (s, e) in enumerate(offsets) if s < stop and e > start])
    return ids, spans


def tokenize_sample(tokenizer, sample: SFTSample, max_len: int) -> tuple[list[int], list[float]]:
    """Token ids of the whole conversation (chat template, no generation prompt) and a per-token
    loss weight: each assistant message's content and end-of-turn tokens get that message's
    weight (times its `token_weights`), every other token 0. Truncated on the right to max_len."""
    ids, spans = assistant_spans(tokenizer, sample.messages)
    if len(sample.weights) != len(spans):
        raise RlpostError(f"sft: sample has {len(spans)} assistant messages but "
                          f"{len(sample.weights)} weights (one per assistant message)")
    if sample.token_weights is not None and len(sample.token_weights) != len(spans):
        raise RlpostError(f"sft: sample has {len(spans)} assistant messages but token_weights "
                          f"for {len(sample.token_weights)}")
    weights = [0.0] * len(ids)
    for k, (span, w) in enumerate(zip(spans, sample.weights)):
        per_tok = [1.0] * len(span)
        if sample.token_weights is not None:
            per_tok = [float(x) for x in sample.token_weights[k]]
            if len(per_tok) != len(span):
                raise RlpostError(f"sft: token_weights[{k}] has {len(per_tok)} values but "
                                  f"assistant message {k} has {len(span)} target tokens")
        for t, x in zip(span, per_tok):
            weights[t] = float(w) * x
    if any(w < 0 or not math.isfinite(w) for w in weights):
        raise RlpostError("sft: loss weights must be finite and >= 0")
    return ids[:max_len], weights[:max_len]


# --- pure math ---------------------------------------------------------------------------


def sft_loss(logprobs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """logprobs, weights [N] of target tokens -> weighted token-mean NLL
    -(w * lp).sum() / w.sum(); 0 when w.sum() == 0."""
    total = weights.sum()
    weighted = torch.where(weights != 0, weights * logprobs, torch.zeros_like(logprobs))
    return -weighted.sum() / torch.where(total == 0, torch.ones_like(total), total)


# --- config ------------------------------------------------------------------------------


@dataclass
class SFTConfig:
    """SFT hyper-parameters."""

    lr: float = 2e-5
    """AdamW learning rate (after warm-up)."""
    epochs: int = 2
    """Passes over the samples."""
    batch_size: int = 8
    """Conversations per optimizer step."""
    micro_batch_tokens: int = 4096
    """Padded tokens per forward/backward (gradient accumulation inside a batch); a longer
    conversation goes alone."""
    max_len: int = 2048
    """Tokens per conversation; longer ones are truncated on the right."""
    grad_clip: float = 1.0
    """Gradient clipping (global L2 norm); 0 = no clipping."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    warmup_steps: int = 0
    """Linear LR warm-up steps."""
    schedule: Schedule = "constant"
    """LR after warm-up: constant, or cosine decay towards 0 at the last step."""
    lora: bool = False
    """Train LoRA adapters instead of all weights; merged into the model at the end."""
    lora_r: int = 16
    """LoRA rank."""
    lora_alpha: int = 32
    """LoRA scaling numerator (scale = alpha / r)."""
    lora_dropout: float = 0.0
    """Dropout on the LoRA input."""
    lora_targets: tuple[str, ...] = LoRAConfig.targets
    """Names of the linear modules that get adapters."""
    seed: int = 0
    """Seeds the per-epoch shuffle and the LoRA initialisation."""

    def lora_config(self) -> LoRAConfig:
        """The adapters `Policy.lora` trains when `lora` is set."""
        return LoRAConfig(self.lora_r, self.lora_alpha, self.lora_dropout,
                          tuple(self.lora_targets), self.seed)

    def validate(self) -> None:
        """Raise RlpostError on settings no run can use."""
        checks = [(0 < self.lr < math.inf, "lr must be finite and > 0"),
                  (self.epochs >= 1, "epochs must be >= 1"),
                  (self.batch_size >= 1, "batch_size must be >= 1"),
                  (self.micro_batch_tokens >= 1, "micro_batch_tokens must be >= 1"),
                  (self.max_len >= 2, "max_len must be >= 2 (a target needs a token before it)"),
                  (self.grad_clip >= 0, "grad_clip must be >= 0 (0 = no clipping)"),
                  (0 <= self.weight_decay < math.inf, "weight_decay must be finite and >= 0"),
                  (self.warmup_steps >= 0, "warmup_steps must be >= 0"),
                  (self.schedule in SCHEDULES, f"schedule must be one of {', '.join(SCHEDULES)}"),
                  (self.lora_r >= 1, "lora_r must be >= 1"),
                  (0 < self.lora_alpha < math.inf, "lora_alpha must be finite and > 0"),
                  (0 <= self.lora_dropout < 1, "lora_dropout must be in [0, 1)"),
                  (len(self.lora_targets) > 0, "lora_targets must name at least one module")]
        for ok, message in checks:
            if not ok:
                raise RlpostError(f"sft: {message}")


@dataclass
class SFTResult:
    steps: int
    """Optimizer steps taken."""
    losses: list[float]
    """Loss of each optimizer step."""
    tokens: int
    """Weighted target tokens trained on, summed over epochs."""
    dropped: int
    """Samples with no weighted token after truncation (not trained on)."""
    truncated: int
    """Samples longer than max_len, cut on the right."""
    lost_target_tokens: int
    """Weighted target tokens cut off by that truncation (never trained on)."""
    seconds: float
    """Wall time of `train_sft`."""


# --- one batch ---------------------------------------------------------------------------

Seq = tuple[list[int], list[float]]


def _target_weight(seq: Seq) -> float:
    """Total weight of a sequence's targets (token 0 is never a target)."""
    return sum(seq[1][1:])


def _pack(batch: Sequence[Seq], micro_batch_tokens: int) -> list[list[Seq]]:
    """Longest first, as many per micro-batch as fit `micro_batch_tokens` padded tokens."""
    out: list[list[Seq]] = []
    for seq in sorted(batch, key=lambda s: len(s[0]), reverse=True):
        if out and len(out[-1][0][0]) * (len(out[-1]) + 1) <= micro_batch_tokens:
            out[-1].append(seq)
        else:
            out.append([seq])
    return out


def _accumulate(policy: Policy, batch: Sequence[Seq], micro_batch_tokens: int) -> tuple[float, int]:
    """Forward/backward of one batch in micro-batches, ADDING to `.grad`. Returns (loss, weighted
    tokens); the loss and gradient equal `sft_loss` over all weighted targets of the batch."""
    model, device, pad = policy.model, policy.device, policy.tokenizer.pad_token_id or 0
    total_w = sum(_target_weight(s) for s in batch)
    if total_w <= 0:
        return 0.0, 0
    loss_sum, n_tok = 0.0, 0
    for mb in _pack(batch, micro_batch_tokens):
        T, B = len(mb[0][0]), len(mb)
        ids = torch.full((B, T), pad, dtype=torch.long)
        attn = torch.zeros((B, T), dtype=torch.long)
        w = torch.zeros((B, T), dtype=torch.float32)
        for i, (s_ids, s_w) in enumerate(mb):
            ids[i, : len(s_ids)] = torch.tensor(s_ids, dtype=torch.long)
            attn[i, : len(s_ids)] = 1
            w[i, : len(s_w)] = torch.tensor(s_w, dtype=torch.float32)
        ids, attn, w = ids.to(device), attn.to(device), w.to(device)
        select = w[:, 1:] > 0  # hidden state at t predicts token t + 1
        if not bool(select.any()):
            continue
        with policy.autocast_ctx():
            hidden = model.get_decoder()(input_ids=ids, attention_mask=attn).last_hidden_state
            logits = model.get_output_embeddings()(hidden[:, :-1][select]).float()
        lp = torch.log_softmax(logits, dim=-1).gather(-1, ids[:, 1:][select][:, None]).squeeze(-1)
        ws = w[:, 1:][select]
        loss = sft_loss(lp, ws) * (ws.sum() / total_w)  # this micro-batch's share of the batch loss
        learn.backward(loss)
        loss_sum += float(loss.detach())
        n_tok += int(select.sum())
    return loss_sum, n_tok


# --- the loop ----------------------------------------------------------------------------


def train_sft(policy: Policy, samples: Sequence[SFTSample], cfg: SFTConfig,
              tracker: Tracker | None = None, step_offset: int = 0,
              progress: bool = True) -> SFTResult:
    """Fine-tune `policy` in place on `samples`. Logs sft/loss, sft/lr, sft/grad_norm and
    sft/tokens at step `step_offset + k` for the k-th optimizer step (k from 1); samples cut by
    max_len, and their lost target tokens, are counted in the result and reported on stderr. With cfg.lora
    the adapters are merged at the end, so `policy.model` is again a plain HF model with its
    original parameter names. No sample with a weighted token: nothing is trained (steps 0).
    The model is left in eval mode."""
    cfg.validate()
    t0 = time.perf_counter()
    seqs: list[Seq] = []
    truncated = lost = 0
    for s in samples:
        ids, weights = tokenize_sample(policy.tokenizer, s, sys.maxsize)
        if len(ids) > cfg.max_len:
            truncated += 1
            lost += sum(w > 0 for w in weights[cfg.max_len :])
        seq = (ids[: cfg.max_len], weights[: cfg.max_len])
        if _target_weight(seq) > 0:
            seqs.append(seq)
    dropped = len(samples) - len(seqs)
    if truncated:
        print(f"rlpost: sft: {truncated} of {len(samples)} samples exceed max_len {cfg.max_len}; "
              f"{lost} target tokens cut off (raise sft.max_len to train them)", file=sys.stderr)
    if not seqs:
        policy.model.eval()
        return SFTResult(0, [], 0, dropped, truncated, lost, time.perf_counter() - t0)
    try:
        with policy.lora(cfg.lora_config()) if cfg.lora else nullcontext():
            losses, tokens = _epochs(policy, seqs, cfg, tracker, step_offset, progress)
    finally:
        policy.model.eval()
    return SFTResult(len(losses), losses, tokens, dropped, truncated, lost,
                     time.perf_counter() - t0)


def _epochs(policy: Policy, seqs: list[Seq], cfg: SFTConfig, tracker: Tracker | None,
            step_offset: int, progress: bool) -> tuple[list[float], int]:
    """The optimizer steps over `cfg.epochs` shuffled passes; returns (losses, tokens)."""
    per_epoch = -(-len(seqs) // cfg.batch_size)
    total_steps = per_epoch * cfg.epochs
    losses: list[float] = []
    skipped = tokens = 0
    params = policy.trainable_parameters()
    opt, sched = learn.make_optimizer(params, cfg.lr, cfg.weight_decay, cfg.warmup_steps,
                                      cfg.schedule, total_steps)
    bar = None
    if progress:
        from tqdm import tqdm

        tty = sys.stderr.isatty()
        bar = tqdm(total=total_steps, desc="sft", unit="step", mininterval=0.5 if tty else 30.0,
                   dynamic_ncols=tty, file=sys.stderr)
    rng = random.Random(cfg.seed)
    policy.model.train()
    try:
        for _ in range(cfg.epochs):
            order = list(range(len(seqs)))
            rng.shuffle(order)
            for b in range(per_epoch):
                batch = [seqs[i] for i in order[b * cfg.batch_size : (b + 1) * cfg.batch_size]]
                opt.zero_grad(set_to_none=True)
                loss, n_tok = _accumulate(policy, batch, cfg.micro_batch_tokens)
                lr = sched.get_last_lr()[0]
                result = learn.step(params, opt, cfg.grad_clip if cfg.grad_clip > 0 else math.inf,
                                    loss)
                sched.step()
                losses.append(loss)
                tokens += n_tok
                skipped += not result.stepped
                if tracker is not None:
                    tracker.log({"sft/loss": loss, "sft/lr": lr, "sft/grad_norm": result.grad_norm,
                                 "sft/tokens": n_tok, "sft/skipped_steps": skipped},
                                step_offset + len(losses))
                if bar is not None:
                    bar.set_postfix({"loss": f"{loss:.3f}"}, refresh=False)
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return losses, tokens
