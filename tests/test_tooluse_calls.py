"""Tool calls in model text: the three accepted forms parse to the same calls, formatting
round-trips, and everything that is not a literal call list is refused with its reason."""

from __future__ import annotations

import pytest

from rlpost.envs.tooluse.calls import MAX_CALLS, Call, CallParseError, format_calls, parse_calls

WEATHER = [Call("get_weather", {"city": "Paris", "days": 3}), Call("m.f", {"x": [1, -2.5]})]


@pytest.mark.parametrize("text", [
    '[get_weather(city="Paris", days=3), m.f(x=[1, -2.5])]',
    'get_weather(city="Paris", days=3), m.f(x=[1, -2.5])',
    '```python\n[get_weather(city="Paris", days=3), m.f(x=[1, -2.5])]\n```',
    '[{"name": "get_weather", "arguments": {"city": "Paris", "days": 3}},'
    ' {"name": "m.f", "parameters": {"x": [1, -2.5]}}]',
    '<tool_call>{"name": "get_weather", "arguments": "{\\"city\\": \\"Paris\\", \\"days\\": 3}"}'
    '</tool_call>\n<tool_call>{"name": "m.f", "arguments": {"x": [1, -2.5]}}</tool_call>',
])
def test_the_accepted_forms_parse_to_the_same_calls(text):
    assert parse_calls(text) == WEATHER


def test_literals_of_every_kind_and_the_empty_list():
    calls = parse_calls("[f(a=None, b=True, c=(1, 'x'), d={'k': [+1, {'z': -0.5}]}, e='')]")
    assert calls == [Call("f", {"a": None, "b": True, "c": (1, "x"),
                                "d": {"k": [1, {"z": -0.5}]}, "e": ""})]
    assert parse_calls("[]") == [] and parse_calls(" [ ] ") == []
    assert parse_calls('{"name": "f"}') == [Call("f", {})]


@pytest.mark.parametrize("calls", [
    WEATHER,
    [Call("f", {"t": (1,), "e": (), "s": "it's \"q\"\n", "n": None, "d": {1: 2.0}})],
    [],
])
def test_format_round_trips(calls):
    assert parse_calls(format_calls(calls)) == calls


def test_bfcl_form():
    assert Call("f", {"a": 1}).as_bfcl() == {"f": {"a": 1}}


@pytest.mark.parametrize("text, reason", [
    ("I cannot help with that.", "not a Python call list (SyntaxError)"),
    ("", "empty answer: no call"),
    ("  ", "empty answer: no call"),
    ("f(1)", "f: positional arguments are not allowed; write name=value"),
    ("f(a=1+2)", "argument values must be literals, got 1 + 2"),
    ("f(a=x)", "argument values must be literals, got x"),
    ("f(a=g(b=1))", "argument values must be literals, got g(b=1)"),
    ("f(a=lambda: 0)", "argument values must be literals, got lambda: 0"),
    ("f(a={1, 2})", "argument values must be literals, got {1, 2}"),
    ("f(a=" + "x" * 40 + ")", "argument values must be literals, got " + "x" * 40),
    ("f(a=" + "x" * 41 + ")", "argument values must be literals, got " + "x" * 37 + "..."),
    ("f(a=b'x')", "unsupported literal b'x'"),
    ("f(a=...)", "unsupported literal ..."),
    ("f(a=-'x')", "argument values must be literals, got -'x'"),
    ("f(**{'a': 1})", "f: **kwargs is not allowed"),
    ("f(a=1, a=2)", "f: argument 'a' given twice"),
    ("f(a={**d})", "** in a dict value is not allowed"),
    ("f(a={(1, 2): 3})", "unsupported dict key (1, 2)"),
    ("__import__('os').system('ls')", "a function name must be a name like f or module.f"),
    ("(lambda: 0)()", "a function name must be a name like f or module.f"),
    ("[1, f(a=1)]", "list item is not a call: 1"),
    ("[f()][0]", "not a call list: expected [f(a=1), ...]"),
    ("f(a=" + "[" * 17 + "]" * 17 + ")", "value nested deeper than 16"),
    ("f(a=" + "(" * 17 + "1" + ",)" * 17 + ")", "value nested deeper than 16"),
    ("f(a=" + "{1: " * 16 + "1" + "}" * 16 + ")", "value nested deeper than 16"),
    ('{"name": "f", "arguments": {"a": ' + "[" * 17 + "]" * 17 + "}}",
     "value nested deeper than 16"),
    ('{"name": "f", "arguments": ' + '{"a": ' * 17 + "1" + "}" * 17 + "}",
     "value nested deeper than 16"),
    ("[" * 500 + "]" * 500, "not a Python call list (SyntaxError)"),
    ('{"name": "pwd", "arguments": {"a": ' + "[" * 500 + "]" * 500 + "}}",
     "value nested deeper than 16"),
    ('{"name": "f", "arguments": "' + "[" * 2000 + "]" * 2000 + '"}',
     "f: arguments are not a JSON object (not valid JSON (RecursionError))"),
    ("[f(base=0x" + "f" * 4000 + ", height=5)]", "integer literal longer than 256 bits"),
    ('[{"name": "f", "arguments": {"a": ' + "1" * 5000 + "}}]", "not valid JSON (ValueError)"),
    ("f(a=1e999)", "numbers must be finite"),
    ("f(a=-1e999)", "numbers must be finite"),
    ('[{"name": "f", "arguments": {"a": NaN}}]', "numbers must be finite"),
    ('[{"name": "f", "arguments": {"a": [Infinity]}}]', "numbers must be finite"),
    ('[{"name": "f", "arguments": {"a": {"b": 1e999}}}]', "numbers must be finite"),
    ('[{"name": 3}]', "bad function name '3'"),
    ('[{"name": "os.system; rm"}]', "bad function name 'os.system; rm'"),
    ('[{"name": "' + "f" * 50 + ' x"}]', "bad function name '" + "f" * 40 + "'"),
    ('[{"name": "f"}, 3]', "a JSON call must be an object with name and arguments"),
    ('[{"arguments": {}}]', 'a JSON call needs a "name"'),
    ('[{"name": "f", "arguments": [1]}]', "f: arguments must be an object"),
    ('{"name": "f", "arguments": "{oops"}',
     "f: arguments are not a JSON object (not valid JSON (JSONDecodeError))"),
    ('[{"name": "f",]', "not valid JSON (JSONDecodeError)"),
    ("[" + ", ".join(["f()"] * (MAX_CALLS + 1)) + "]", f"{MAX_CALLS + 1} calls in one answer "
                                                      f"(at most {MAX_CALLS})"),
])
def test_refused_with_a_reason(text, reason):
    with pytest.raises(CallParseError) as e:
        parse_calls(text)
    assert str(e.value) == reason


def test_the_edges_that_still_parse():
    assert len(parse_calls("[" + ", ".join(["f()"] * MAX_CALLS) + "]")) == MAX_CALLS
    assert parse_calls('{"name": "Foo_1.bar", "arguments": "  "}') == [Call("Foo_1.bar", {})]
    assert parse_calls('{"name": "_f"}') == [Call("_f", {})]
    deep_tuple = "(" * 15 + "1" + ",)" * 15
    value = parse_calls(f"f(a={deep_tuple})")[0].arguments["a"]
    for _ in range(14):
        value = value[0]
    assert value == (1,)
    assert parse_calls("f(a=" + "{1: " * 15 + "1" + "}" * 15 + ")")[0].arguments["a"][1]
    assert parse_calls('[{"name": "f", "arguments": {"a": {"b": 1.5}}}]')[0].arguments == {
        "a": {"b": 1.5}}


def test_the_nesting_limit_is_the_same_in_both_forms():
    deepest = "[" * 16 + "]" * 16
    assert parse_calls(f"f(a={deepest})") == parse_calls(
        f'{{"name": "f", "arguments": {{"a": {deepest}}}}}')
    assert parse_calls("f(a=-1.5e300, b=" + str(2 ** 256 - 1) + ")")[0].arguments["b"] == 2 ** 256 - 1


def test_non_text_is_refused():
    with pytest.raises(CallParseError, match="expected text, got int"):
        parse_calls(3)  # type: ignore[arg-type]
