"""MAE: TL-Training's per-turn split of tool dialogues that drops turns whose call failed, and
tool dialogues with realistic failed first attempts to split.

TL-Training: Ye et al., arXiv 2412.15495 (Findings EMNLP'25), section "Mitigating Adverse
Effects" (MAE); reference code github.com/Junjie-Ye/TL-Training ``code/mae/mae.py``
(``data_split``), cited below as "the reference".

`mae_split` follows ``data_split``: one sample per assistant turn, holding the history up to and
including it, trained on that turn only (the reference's ``finetune.py`` masks every earlier
turn). A turn is kept when it is the dialogue's last message, or when the next message is a tool
output that matches none of `ERROR_PATTERNS`; it is dropped when that output matches one, and
skipped when the next message is not a tool output (the reference's ``continue`` when the next
role is not ``function``: such turns are in no sample). Matching is the reference's
``sentence_extraction``: both texts lose every character that is not a letter, digit, CJK
ideograph or "^" (its character class keeps "^") and are lower-cased, then substring test.
So "'error'" matches any output containing "error", in any case and across punctuation.

`plain_sample` is the whole dialogue with every assistant turn weighted 1: plain SFT, which also
imitates the failed calls. (The reference's baseline without MAE is ``data_split(..., is_mae=
False)``: the same per-turn split with no pattern, `mae_split(messages, patterns=())`.)

`rlpost.envs.tooluse.dialogues.tool_dialogue` builds BFCL dialogues to split (ours: the
reference's data come from other tool sets with real outputs). Tool outputs are ``"tool"`` (or
the reference's ``"function"``) messages; rlpost's SFT trains assistant turns only, so other
roles are context.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rlpost.algos.sft import SFTSample
from rlpost.types import Message

ERROR_PATTERNS = (
    "is not defined", "positional argument", "unexpected keyword", "'related_searches'",
    "ConnectionError", '"error":', "not supported", "Invalid API call", "Response error",
    "Object of type SerpResults is not JSON serializable", "400 Client Error", "'error'",
    "slice indices must be integers or None or have an __index__ method", "connection error",
)
"""The reference's ``error_calling`` list (``mae.py:data_split``), in its order."""
TOOL_ROLES = ("tool", "function")
"""Roles of tool-output messages ("function" is the reference's)."""

_DROP = re.compile("[^\u4e00-\u9fa5^a-z^A-Z^0-9]")  # the reference's class, "^" literal inside


def normalize(text: str) -> str:
    """The reference's ``sentence_extraction``: drop what is not a letter, digit, CJK
    ideograph (U+4E00-U+9FA5) or "^", lower-case."""
    return _DROP.sub("", text).lower()


def is_error_output(text: str, patterns: Sequence[str] = ERROR_PATTERNS) -> bool:
    """Whether tool output `text` matches one of `patterns` (both `normalize`-d)."""
    t = normalize(text)
    return any(normalize(p) in t for p in patterns)


@dataclass
class MAECounts:
    """Assistant turns kept (one sample each), dropped (the next tool output is an error) and
    skipped (the next message is not a tool output), summed over dialogues."""

    kept: int = 0
    dropped: int = 0
    skipped: int = 0


def mae_split(messages: Sequence[Message], patterns: Sequence[str] = ERROR_PATTERNS,
              counts: MAECounts | None = None) -> list[SFTSample]:
    """The samples of one dialogue (module docstring): per kept assistant turn,
    ``messages[:i+1]`` with weight 1 on that turn and 0 on the earlier assistant turns. Adds
    to `counts` when given."""
    counts = MAECounts() if counts is None else counts
    out, seen = [], 0
    for i, m in enumerate(messages):
        if m.role != "assistant":
            continue
        seen += 1
        if i + 1 < len(messages):
            nxt = messages[i + 1]
            if nxt.role not in TOOL_ROLES:
                counts.skipped += 1
                continue
            if is_error_output(nxt.content, patterns):
                counts.dropped += 1
                continue
        counts.kept += 1
        out.append(SFTSample(list(messages[: i + 1]), [0.0] * (seen - 1) + [1.0]))
    return out


def mae_dataset(dialogues: Sequence[Sequence[Message]],
                patterns: Sequence[str] = ERROR_PATTERNS) -> tuple[list[SFTSample], MAECounts]:
    """`mae_split` of every dialogue, and the counts over all of them."""
    counts = MAECounts()
    samples = [s for d in dialogues for s in mae_split(d, patterns, counts)]
    return samples, counts


def plain_sample(messages: Sequence[Message]) -> SFTSample:
    """The whole dialogue, every assistant turn weight 1 (plain SFT)."""
    return SFTSample(list(messages), [1.0] * sum(m.role == "assistant" for m in messages))
