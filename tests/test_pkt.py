"""PKT (TL-Training's prioritised key tokens): exact weight lists on handcrafted answers with the
bundled tokenizer (SmolLM2), the common-prefix boundary, the cap, two calls, `pkt_sample`."""

from __future__ import annotations

import pytest
from rlpost.envs.tooluse.calls import Call, format_calls

from rlpost.algos.pkt import (
    call_positions,
    common_prefix,
    is_call_answer,
    key_weights,
    pkt_sample,
    pkt_weights,
)
from rlpost.algos.sft import assistant_spans, tokenize_sample
from rlpost.types import Message


@pytest.fixture(scope="module")
def tok():
    from rlpost.policy import load_tokenizer, resolve_model

    return load_tokenizer(resolve_model("smollm2-135m-instruct"))


def _chat(answer: str) -> list[Message]:
    return [Message("system", "Call tools."), Message("user", "Weather in Paris?"),
            Message("assistant", answer)]


def _tokens(tok, messages):
    ids, spans = assistant_spans(tok, messages)
    return [tok.convert_ids_to_tokens(ids[t]) for t in spans[-1]]


WEATHER = Call("get_weather", {"city": "Paris"})
# SmolLM2 tokens of "[get_weather(city='Paris')]" + end of turn
WEATHER_TOKENS = ["[", "get", "_", "weather", "(", "city", "='", "Paris", "')]", "<|im_end|>"]


def test_tokens_of_the_example(tok):
    assert _tokens(tok, _chat(format_calls([WEATHER]))) == WEATHER_TOKENS


@pytest.mark.parametrize("tools,expected", [
    # only "get" (first name token) is key: 1 key, 1 value end ("Paris"), 8 others -> w = 8
    (["get_weather", "book_flight"], [1, 8, 1, 1, 1, 1, 1, 1, 1, 1]),
    # get_weekday shares "get_we": the divergence ("a" vs "e") lies in "weather" -> 2 keys,
    # 1 value end, 7 others -> w = 3.5
    (["get_weather", "get_weekday", "book_flight"], [1, 3.5, 1, 3.5, 1, 1, 1, 1, 1, 1]),
    # "get" shares "get": divergence at "_"; with get_weekday too: 3 keys, 6 others -> w = 2
    (["get_weather", "get_weekday", "get"], [1, 2, 2, 2, 1, 1, 1, 1, 1, 1]),
    # chat-template tool dicts and BFCL docs name the candidates too
    ([{"type": "function", "function": {"name": "get_weekday"}}, {"name": "book_flight"}],
     [1, 3.5, 1, 3.5, 1, 1, 1, 1, 1, 1]),
])
def test_single_call_weights(tok, tools, expected):
    assert pkt_weights(tok, _chat(format_calls([WEATHER])), [WEATHER], tools) == expected


def test_called_name_a_prefix_of_a_candidate_marks_the_parenthesis(tok):
    call = Call("get", {"x": 1})
    msgs = _chat(format_calls([call]))
    assert _tokens(tok, msgs) == ["[", "get", "(", "x", "=", "1", ")]", "<|im_end|>"]
    # keys "get" and "(", value end "1", 5 others -> 2.5
    assert pkt_weights(tok, msgs, [call], ["get", "get_weekday"]) == [1, 2.5, 2.5, 1, 1, 1, 1, 1]


def test_cap_at_max_weight(tok):
    call = Call("get_weather", {"city": "Paris in the spring time of the year with a very long "
                                        "description here", "unit": "celsius", "days": 3})
    msgs = _chat(format_calls([call]))
    n = len(_tokens(tok, msgs))
    assert n == 32  # 2 keys, 3 value ends ("here", "elsius", "3"), 27 others -> 13.5 -> 9
    expected = [1.0] * n
    expected[1] = expected[3] = 9.0
    assert pkt_weights(tok, msgs, [call], ["get_weather", "get_weekday"]) == expected
    expected[1] = expected[3] = 4.0
    assert pkt_weights(tok, msgs, [call], ["get_weekday"], max_weight=4.0) == expected


def test_two_calls(tok):
    calls = [WEATHER, Call("get_weekday", {"date": "2024-05-01"})]
    msgs = _chat(format_calls(calls))
    tokens = _tokens(tok, msgs)
    assert tokens[:14] == ["[", "get", "_", "weather", "(", "city", "='", "Paris", "'),", "Ġget",
                           "_", "week", "day", "("]
    assert len(tokens) == 28
    # keys: get, _, weather (call 1 vs get_weekday and get); Ġget, _, week (call 2);
    # value ends "Paris" and the final "1"; 28 - 6 - 2 = 20 others -> 20 / 6
    w = 20 / 6
    expected = [1.0] * 28
    for i in (1, 2, 3, 9, 10, 11):
        expected[i] = w
    assert pkt_weights(tok, msgs, calls, ["get_weather", "get_weekday", "get"]) == expected


@pytest.mark.parametrize("offsets,keys,ends,expected", [
    ([(0, 1), (1, 2), (2, 3), (3, 4)], [0], [2], [2, 1, 1, 1]),      # 1 key, 2 others
    ([(0, 1), (1, 2), (2, 3)], [0, 1], [], [1, 1, 1]),               # 2 keys >= 1 other
    ([(0, 1), (1, 2), (2, 3), (3, 4)], [0, 1], [], [1, 1, 1, 1]),    # 2 keys == 2 others
    ([(0, 2), (2, 3), (3, 4), (4, 5)], [0, 1], [1, 9], [3, 1, 1, 1]),  # same token; uncovered end
    ([(0, 1), (1, 2), (2, 3), (3, 4)], [0], [0], [3, 1, 1, 1]),      # key wins over value end
])
def test_key_weights_rule(offsets, keys, ends, expected):
    assert key_weights(offsets, keys, ends) == expected


def test_positions_and_prefix():
    assert common_prefix("get_weather", "get_weekday") == 6
    assert common_prefix("get", "get_weekday") == 3
    assert common_prefix("abc", "xyz") == 0
    # brackets optional and leading spaces: offsets are into the text as given
    assert call_positions("  f(a='xy', b=[1, 2], c='')", ["g", "fa"]) == ([2, 3], [8, 19, 25])
    assert call_positions("[m.f(a=1)]", ["m.g"]) == ([1, 3], [7])
    assert call_positions("[f(a='é'), f(b=2)]", []) == ([1, 11], [6, 15])
    with pytest.raises(ValueError):
        call_positions("[f(1)]", [])
    with pytest.raises(ValueError):
        call_positions("no call", [])
    assert is_call_answer("[f(a=1)]") and not is_call_answer("[]")
    assert not is_call_answer("The answer is 4.")


def test_errors(tok):
    msgs = _chat(format_calls([WEATHER]))
    with pytest.raises(ValueError, match="not the given calls"):
        pkt_weights(tok, msgs, [Call("get_weather", {"town": "Paris"})], [])
    with pytest.raises(ValueError, match="no assistant"):
        pkt_weights(tok, msgs[:2], [WEATHER], [])
    with pytest.raises(ValueError, match="max_weight"):
        pkt_weights(tok, msgs, [WEATHER], [], max_weight=0.0)
    with pytest.raises(ValueError, match="2 assistant messages but 1 weights"):
        pkt_sample(msgs + [Message("user", "ok"), Message("assistant", "Done.")], tok, [], 9.0,
                   [1.0])


def test_pkt_sample(tok):
    tools = [{"type": "function", "function": {"name": n, "parameters": {}}}
             for n in ("get_weather", "get_weekday")]
    messages = [Message("system", "Call tools.", tools=tools),
                Message("user", "Weather in Paris?"),
                Message("assistant", "[get_weather(town='Paris')]"),
                Message("tool", "TypeError: get_weather() got an unexpected keyword argument "
                                "'town'"),
                Message("assistant", format_calls([WEATHER])),
                Message("tool", '{"status": "success"}'),
                Message("assistant", "It is sunny.")]
    sample = pkt_sample(messages, tok, weights=[0, 1, 1])  # tools from Message.tools
    _, spans = assistant_spans(tok, messages)
    assert sample.weights == [0.0, 1.0, 1.0]
    assert sample.token_weights == [[1.0] * len(spans[0]), [1, 3.5, 1, 3.5, 1, 1, 1, 1, 1, 1],
                                    [1.0] * len(spans[2])]
    # weighted, the failing first turn gets the same pattern (its tokens align with the second)
    full = pkt_sample(messages, tok, ["get_weather", "get_weekday"])
    assert full.token_weights[0] == [1, 3.5, 1, 3.5, 1, 1, 1, 1, 1, 1]
    _, weights = tokenize_sample(tok, sample, 4096)
    assert [weights[t] for t in spans[1]] == [1, 3.5, 1, 3.5, 1, 1, 1, 1, 1, 1]
    assert all(weights[t] == 0 for t in spans[0])


def test_on_a_real_dialogue(tok):
    """BFCL multiple_0 through the env's prompt, `tool_dialogue`, `mae_split` and `pkt_sample`:
    triangle_properties.get shares no prefix with circle_properties.get, so only its first
    token is key: 43 target tokens, 6 value ends, 36 others -> 36 capped at 9."""
    import random

    from rlpost.envs.tooluse.env import ToolUseEnv

    from rlpost.collect.mae import mae_split
    from rlpost.envs.tooluse.dialogues import tool_dialogue
    from rlpost.env import chat

    env = ToolUseEnv(categories=["multiple"])
    env.reset(options={"task_id": 0})
    dialogue = tool_dialogue(env.task_record(0), chat(env), random.Random(0), 0.0)
    (sample,) = mae_split(dialogue)
    weighted = pkt_sample(sample.messages, tok, weights=sample.weights)
    tokens = _tokens(tok, sample.messages)
    assert tokens[:3] == ["[", "tri", "angle"] and len(tokens) == 43
    assert weighted.token_weights == [[1.0] + [9.0] + [1.0] * 41]
