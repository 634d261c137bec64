"""One chat renderer for prompts and SFT targets: tools go through the template's own tool
support when it has one, else into the message's content as BFCL's JSON list."""

from __future__ import annotations

import json

from rlpost.chat import TOOLS_HEADER, chat_dicts, render_chat, supports_tools
from rlpost.types import Message

TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}


class Template:
    """A tokenizer stand-in recording what apply_chat_template received."""

    def __init__(self, chat_template: str):
        self.chat_template = chat_template
        self.calls = []

    def apply_chat_template(self, dicts, add_generation_prompt, tokenize, **kwargs):
        self.calls.append((dicts, add_generation_prompt, kwargs))
        return "|".join(f"{d['role']}:{d['content']}" for d in dicts)


def test_template_without_tool_support_gets_the_docs_in_the_content():
    tok = Template("{% for m in messages %}{{ m.content }}{% endfor %}")
    msgs = [Message("system", "Be brief.", tools=[TOOL]), Message("user", "hi")]
    text = render_chat(tok, msgs, add_generation_prompt=True)
    dicts, gen, kwargs = tok.calls[0]
    assert kwargs == {} and gen is True
    assert dicts[0]["content"] == f"Be brief.\n\n{TOOLS_HEADER}\n{json.dumps([TOOL], indent=2)}\n"
    assert dicts[1] == {"role": "user", "content": "hi"}
    assert text.startswith("system:Be brief.")


def test_template_with_tool_support_gets_tools_and_the_bare_content():
    tok = Template("{% if tools %}{{ tools }}{% endif %}")
    assert supports_tools(tok)
    render_chat(tok, [Message("system", "Be brief.", tools=[TOOL]), Message("user", "hi")])
    dicts, gen, kwargs = tok.calls[0]
    assert kwargs == {"tools": [TOOL]} and gen is False
    assert dicts[0]["content"] == "Be brief."


def test_a_template_that_only_mentions_tools_has_no_tool_support():
    assert not supports_tools(Template("{# this template has no tools support #}{{ x }}"))
    assert not supports_tools(Template("Use tools wisely. {{ messages }}"))
    assert not supports_tools(Template("{{ toolset }}"))
    assert supports_tools(Template("{%- if tools is defined %}x{% endif %}"))
    assert supports_tools(Template("{{- tools | tojson }}"))
    assert not supports_tools(object())


def test_no_tools_no_kwargs_and_empty_content_takes_the_docs_alone():
    dicts, tools = chat_dicts([Message("system", "", tools=[TOOL])], native_tools=False)
    assert tools == [] and dicts[0]["content"].startswith(TOOLS_HEADER)
    tok = Template("{% if tools %}{% endif %}")
    render_chat(tok, [Message("user", "hi")])
    assert tok.calls[0][2] == {}
    assert render_chat(tok, []) == ""


def test_bundled_tokenizer_prompt_and_sft_render_agree(model_path):
    from rlpost.algos.sft import _render
    from rlpost.policy import load_tokenizer

    tok = load_tokenizer(model_path)
    msgs = [Message("system", "S", tools=[TOOL]), Message("user", "U")]
    assert not supports_tools(tok)
    prompt = render_chat(tok, msgs, add_generation_prompt=True)
    assert TOOLS_HEADER in prompt and prompt.endswith("<|im_start|>assistant\n")
    assert _render(tok, msgs) == render_chat(tok, msgs)
