"""PKT: TL-Training's prioritised key tokens, as per-token SFT loss weights.

TL-Training: Ye et al., arXiv 2412.15495 (Findings EMNLP'25), section "Prioritizing Key Tokens"
(PKT); reference code github.com/Junjie-Ye/TL-Training ``code/pkt/utils.py`` (``GCELoss.forward``
and ``ToolTrainer.compute_loss``), cited below as "the reference".

Key tokens of an assistant turn that calls tools (the reference: ``compute_loss``'s ``pre``):

- the first token of the called function's name;
- for every other candidate tool whose name shares a non-empty prefix with it, the token where
  the called name diverges from that candidate (the reference's
  ``longest_common_prefix_length`` against each ``Function:`` name of the prompt, the
  identical name removed; a candidate sharing no prefix adds nothing, the first token already
  covers it). When the called name is a prefix of the candidate the divergence is the token
  of the "(" after it.

Parameter-end tokens (the reference's ``para``, ``extract_parameters_with_indices``): the last
token of each argument value (for a non-empty string, its last character inside the quotes).

Weights, per turn (``GCELoss.forward``, ``max_weight`` 9 in ``finetune.sh``): with N_key key
tokens, N_para parameter-end tokens and N_other the rest of the turn's target tokens (content
and end-of-turn token, as `rlpost.algos.sft.assistant_spans`):
w_key = min(N_other / N_key, max_weight) when N_key < N_other, else 1; every other token 1.
The reference's loss is then (w_key sum_key l + sum_para l + sum_other l) / sum_t w_t, which is
`rlpost.algos.sft.sft_loss` (weighted token mean) on these weights: no new loss is needed. One
difference in normalisation: the reference takes that mean per conversation (per-device batch 1,
``finetune.sh``) and data parallelism then averages the per-conversation losses of its 4 GPUs;
rlpost's SFT divides a batch's weighted sum by the batch's total weight. `SFTConfig.batch_size=1`
gives the reference's per-conversation loss exactly (at batch 1 instead of 4).

Where this differs from the reference, and why:

- positions come from characters (the answer's Python syntax tree and the tokenizer's offset
  mapping), where the reference matches token strings of CodeLlama's tokenizer (a hard-coded
  list of closing tokens such as ``"',"`` or ``'")'``; it lacks ``'",'`` although its data
  quote strings with ``json.dumps``, ``mae.py:format_transfor``, so a string value followed
  by another argument is not found); the divergence point is the character-level common
  prefix, mapped to its token (the reference compares name tokens, which differ between prompt
  and answer with some tokenizers);
- parameter-end tokens get weight 1, as in the reference, and only leave the count N_other
  (the reference's off-by-one between label and token positions makes it mark the closing
  token after each value instead; the count is the same). A token both key and parameter end
  counts as key (the reference would count its loss twice);
- every call of a turn contributes its name's key tokens (the reference reads the first call
  only: its data has one call per turn); every assistant turn of a sample may get weights
  (the reference trains on the last turn only; `rlpost.collect.mae.mae_split` makes that the
  only weighted one).
"""

from __future__ import annotations

import ast
import math
from collections.abc import Sequence
from typing import Any

from rlpost.algos.sft import SFTSample, _content_span, assistant_spans
from rlpost.chat import render_chat
from rlpost.types import Message


def common_prefix(a: str, b: str) -> int:
    """Length of the longest common prefix of `a` and `b` (characters)."""
    n = min(len(a), len(b))
    return next((i for i in range(n) if a[i] != b[i]), n)


def _char_index(src: str, line_starts: list[int], lineno: int, byte_col: int) -> int:
    """Character offset in `src` of an ast position (1-based line, UTF-8 byte column)."""
    start = line_starts[lineno - 1]
    line = src[start:].split("\n", 1)[0]
    return start + len(line.encode("utf-8")[:byte_col].decode("utf-8"))


def _call_list(text: str) -> tuple[list[ast.Call], str, int]:
    """(call nodes, parsed source, offset of source in `text`) of a Python call list with
    keyword arguments only (brackets optional; `ast.parse`, nothing is evaluated).
    Raises ValueError otherwise."""
    lead = len(text) - len(text.lstrip())
    body = text.strip()
    src, shift = (body, lead) if body.startswith("[") else (f"[{body}]", lead - 1)
    try:
        tree = ast.parse(src, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        raise ValueError(f"pkt: not a Python call list ({type(e).__name__})") from None
    nodes = tree.body.elts if isinstance(tree.body, ast.List) else None
    if nodes is None or not all(isinstance(n, ast.Call) and not n.args
                                and all(k.arg for k in n.keywords) for n in nodes):
        raise ValueError("pkt: not a Python call list of keyword-only calls")
    return nodes, src, shift


def call_positions(text: str, names: Sequence[str]) -> tuple[list[int], list[int]]:
    """(key characters, parameter-end characters) of the Python call list `text` (offsets into
    `text`, e.g. what `calls.format_calls` writes; brackets optional): per call, the first
    character of its name and, per candidate in `names` other than the call's name that shares
    a non-empty prefix with it, the first character after that prefix; per argument, the last
    character of its value (inside the quotes for a non-empty string).
    Raises ValueError when `text` is not a Python call list."""
    nodes, src, shift = _call_list(text)
    starts = [0]
    for line in src.split("\n")[:-1]:
        starts.append(starts[-1] + len(line) + 1)

    def at(lineno: int, col: int) -> int:
        return _char_index(src, starts, lineno, col) + shift

    keys: list[int] = []
    ends: list[int] = []
    for node in nodes:
        f = node.func
        begin, stop = at(f.lineno, f.col_offset), at(f.end_lineno, f.end_col_offset)
        name = text[begin:stop]
        if "".join(name.split()) != name:
            raise ValueError(f"pkt: function name {name!r} is written with spaces")
        keys.append(begin)
        for other in names:
            k = common_prefix(name, other)
            if other != name and k > 0:
                keys.append(begin + k)
        for kw in node.keywords:
            v = kw.value
            end = at(v.end_lineno, v.end_col_offset)  # exclusive
            last = end - 1
            if isinstance(v, ast.Constant) and isinstance(v.value, str) and v.value:
                quote = 3 if text[end - 3:end] in ('"""', "'''") else 1
                last = end - 1 - quote
            ends.append(last)
    return keys, ends


def key_weights(span_offsets: Sequence[tuple[int, int]], keys: Sequence[int],
                ends: Sequence[int], max_weight: float = 9.0) -> list[float]:
    """Per-token weights of one turn's target span from the character offsets of its tokens
    (``(start, end)``, end exclusive, in the same text as `keys` and `ends`): the rule of the
    module docstring. A character no token covers is ignored. Raises ValueError when
    `max_weight` is not finite and > 0."""
    if not (0 < max_weight < math.inf):
        raise ValueError(f"pkt: max_weight must be finite and > 0, got {max_weight}")

    def token_of(c: int) -> int | None:
        return next((i for i, (s, e) in enumerate(span_offsets) if s <= c < e), None)

    key = {t for t in map(token_of, keys) if t is not None}
    para = {t for t in map(token_of, ends) if t is not None} - key
    n_other = len(span_offsets) - len(key) - len(para)
    w = min(n_other / len(key), max_weight) if key and len(key) < n_other else 1.0
    return [w if i in key else 1.0 for i in range(len(span_offsets))]


def _names(tools: Sequence[Any]) -> list[str]:
    """Tool names from names, BFCL docs ``{"name"}`` or chat tools ``{"function": {"name"}}``."""
    out = []
    for t in tools:
        if isinstance(t, str):
            out.append(t)
        elif isinstance(t, dict) and "function" in t:
            out.append(t["function"]["name"])
        elif isinstance(t, dict):
            out.append(t["name"])
        else:
            raise ValueError(f"pkt: a tool must be a name or a dict with one, got {t!r}")
    return out


def _turn_weights(tokenizer, messages: Sequence[Message], full: str,
                  offsets: list[tuple[int, int]], span: list[int], i: int,
                  names: Sequence[str], max_weight: float) -> list[float]:
    start, _, _ = _content_span(tokenizer, messages, i, full)
    keys, ends = call_positions(messages[i].content, names)
    return key_weights([offsets[t] for t in span], [start + c for c in keys],
                       [start + c for c in ends], max_weight)


def _encode(tokenizer, messages: Sequence[Message]):
    ids, spans = assistant_spans(tokenizer, messages)
    full = render_chat(tokenizer, messages)
    enc = tokenizer(full, return_offsets_mapping=True, add_special_tokens=False)
    if list(enc["input_ids"]) != ids:  # the same call as assistant_spans': cannot differ
        raise RuntimeError("pkt: tokenization is not deterministic")
    return full, [tuple(o) for o in enc["offset_mapping"]], spans


def _signature(node: ast.Call) -> tuple[str, tuple[str, ...]]:
    return ast.unparse(node.func), tuple(k.arg for k in node.keywords)


def pkt_weights(tokenizer, messages: Sequence[Message], calls: Sequence[Any],
                tools: Sequence[Any], max_weight: float = 9.0) -> list[float]:
    """Per-token weights of the LAST assistant message of `messages` (one per token of its
    target span as `assistant_spans` gives it: content and end-of-turn token), which must be
    the Python call list of `calls` (objects with ``name`` and ``arguments``, e.g.
    `rlpost.envs.tooluse.calls.Call`; the text e.g. ``format_calls(calls)``); `tools` are the
    candidate tools (names, BFCL docs or chat-template tool dicts). Rule: the module
    docstring. Raises ValueError when there is no assistant message or its content is not a
    call list with the names and argument names of `calls`."""
    idx = [i for i, m in enumerate(messages) if m.role == "assistant"]
    if not idx:
        raise ValueError("pkt: no assistant message")
    nodes, _, _ = _call_list(messages[idx[-1]].content)
    if [_signature(n) for n in nodes] != [(c.name, tuple(c.arguments)) for c in calls]:
        raise ValueError("pkt: the last assistant message is not the given calls")
    full, offsets, spans = _encode(tokenizer, messages)
    return _turn_weights(tokenizer, messages, full, offsets, spans[-1], idx[-1],
                         _names(tools), max_weight)


def is_call_answer(text: str) -> bool:
    """Whether `text` is a Python call list of keyword-only calls with at least one call
    (what PKT weights; values are not checked)."""
    try:
        return bool(_call_list(text)[0])
    except ValueError:
        return False


def pkt_sample(messages: Sequence[Message], tokenizer, tools: Sequence[Any] | None = None,
               max_weight: float = 9.0, weights: Sequence[float] | None = None) -> SFTSample:
    """An `SFTSample` of `messages` whose assistant turns that are call lists
    (`is_call_answer`) carry PKT token weights (`pkt_weights`' rule) and whose other turns
    weight 1 per token. `weights` (one per assistant message, default all 1) are the turns'
    sample weights; a turn of weight 0 keeps token weights 1 (it is not trained). `tools`
    default to the tools carried by the messages (`Message.tools`).
    Raises ValueError when `weights` does not have one value per assistant message."""
    idx = [i for i, m in enumerate(messages) if m.role == "assistant"]
    weights = [1.0] * len(idx) if weights is None else [float(w) for w in weights]
    if len(weights) != len(idx):
        raise ValueError(f"pkt: {len(idx)} assistant messages but {len(weights)} weights")
    if tools is None:
        tools = [t for m in messages for t in m.tools]
    names = _names(tools)
    full, offsets, spans = _encode(tokenizer, messages)
    token_weights = []
    for i, span, w in zip(idx, spans, weights):
        if w != 0 and is_call_answer(messages[i].content):
            token_weights.append(_turn_weights(tokenizer, messages, full, offsets, span, i,
                                               names, max_weight))
        else:
            token_weights.append([1.0] * len(span))
    return SFTSample(list(messages), weights, token_weights)
