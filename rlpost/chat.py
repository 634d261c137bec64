"""Chat messages -> the text a tokenizer's chat template makes of them: the one place that
calls `apply_chat_template` (the policy's prompts and SFT's targets render alike).

Tools: a message may carry function schemas (`Message.tools`, OpenAI/BFCL JSON-schema dicts).
When the tokenizer's chat template has tool support (it reads a ``tools`` variable, as the
Qwen2.5, Llama-3.1 and Hermes templates do) they are passed as ``tools=``; otherwise they are
written into that message's content as JSON after a header, the way BFCL prompts models without
native tool calling (``bfcl_eval/constants/default_prompts.py``: "Here is a list of functions
in JSON format that you can invoke.").
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from rlpost.types import Message

TOOLS_HEADER = "Here is a list of functions in JSON format that you can invoke."


_COMMENT = re.compile(r"\{#.*?#\}", re.DOTALL)
_READS_TOOLS = re.compile(r"\{[{%](?:(?![%}]\}).)*\btools\b", re.DOTALL)


def supports_tools(tokenizer: Any) -> bool:
    """Whether the tokenizer's chat template reads a ``tools`` variable: the name inside a
    Jinja ``{{ }}`` or ``{% %}`` tag (comments and plain text do not count)."""
    template = getattr(tokenizer, "chat_template", None)
    return isinstance(template, str) and bool(_READS_TOOLS.search(_COMMENT.sub("", template)))


def tools_text(tools: Sequence[dict[str, Any]]) -> str:
    """The tool docs as text (header + indented JSON), for templates without tool support."""
    return f"{TOOLS_HEADER}\n{json.dumps(list(tools), indent=2, ensure_ascii=False)}\n"


def chat_dicts(messages: Sequence[Message], native_tools: bool) -> tuple[list[dict], list[dict]]:
    """(message dicts, tools for ``tools=``) of `messages`: with `native_tools` the tools of
    every message go to ``tools=``; without, each message's tools are appended to its content."""
    dicts, tools = [], []
    for m in messages:
        d = m.as_dict()
        if m.tools:
            if native_tools:
                tools.extend(m.tools)
            else:
                d["content"] = f"{d['content']}\n\n{tools_text(m.tools)}" if d["content"] \
                    else tools_text(m.tools)
        dicts.append(d)
    return dicts, tools


def render_chat(tokenizer: Any, messages: Sequence[Message],
                add_generation_prompt: bool = False) -> str:
    """The chat template's text of `messages` ("" for none), tools placed as described above."""
    if not messages:
        return ""
    dicts, tools = chat_dicts(messages, supports_tools(tokenizer))
    kwargs = {"tools": tools} if tools else {}
    return tokenizer.apply_chat_template(dicts, add_generation_prompt=add_generation_prompt,
                                         tokenize=False, **kwargs)
