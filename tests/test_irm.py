"""IRM (TL-Training's error-category reward): one case per category on a handcrafted record,
the multi-call and no-call rules, real BFCL records, TS/PI/CF and the RewardFn."""

from __future__ import annotations

import pytest
from rlpost.envs.tooluse.calls import Call, format_calls
from rlpost.envs.tooluse.env import load_category
from rlpost.envs.tooluse.irm import (
    IRM_REWARDS,
    IRMVerdict,
    categorize,
    flag_category,
    irm_reward,
    irm_reward_fn,
    selection_scores,
)
from rlpost.envs.tooluse.reference import NO_CALL_ANSWER, reference_answer, reference_calls

from rlpost.types import Trajectory

WEATHER = {"name": "get_weather", "description": "Weather of a city.", "parameters": {
    "type": "dict", "required": ["city"], "properties": {
        "city": {"type": "string", "description": "City."},
        "unit": {"type": "string", "description": "celsius or fahrenheit."},
        "days": {"type": "integer", "description": "Days ahead."}}}}
WEEKDAY = {"name": "get_weekday", "description": "Weekday of a date.", "parameters": {
    "type": "dict", "required": ["date"], "properties": {
        "date": {"type": "string", "description": "ISO date."}}}}
FLIGHT = {"name": "book_flight", "description": "Book a flight.", "parameters": {
    "type": "dict", "required": ["origin", "destination"], "properties": {
        "origin": {"type": "string", "description": "From."},
        "destination": {"type": "string", "description": "To."}}}}
TASK = {"id": "hand_0", "category": "multiple", "question": [],
        "functions": [WEATHER, WEEKDAY, FLIGHT],
        "ground_truth": [{"get_weather": {"city": ["Paris", "Paris, France"],
                                          "unit": ["celsius", ""]}}]}

V = IRMVerdict
# (answer, the full verdict)
CASES = [
    ("It is sunny in Paris.", V("unparsable")),
    ("", V("unparsable")),
    ("[]", V("unparsable")),
    ("[get_temperature(city='Paris')]", V("unknown_tool")),
    ("[get_weekday(date='Paris')]", V("wrong_tool")),
    ("[get_weather(city='Paris'), get_weather(city='Paris')]", V("wrong_tool")),
    ("[get_weather(city='Paris'), get_temp(city='Paris')]", V("unknown_tool")),
    ("[get_weather(country='France', days=3)]",
     V("hallucinated_redundant_missing", True, True, True, True)),
    ("[get_weather(city='Paris', country='FR', days=3)]",
     V("hallucinated_and_redundant_or_missing", True, True, False, True)),
    ("[get_weather(country='FR')]",
     V("hallucinated_and_redundant_or_missing", True, False, True, True)),
    ("[get_weather(days=3)]", V("redundant_and_missing", False, True, True, True)),
    ("[get_weather(city='Paris', country='FR')]", V("hallucinated", True, False, False, True)),
    ("[get_weather(city='Paris', days=3)]", V("redundant_or_missing", False, True, False, True)),
    ("[get_weather(unit='celsius')]", V("redundant_or_missing", False, False, True, True)),
    ("[get_weather(city='London')]", V("wrong_values", tool_selected=True,
                                       params_identified=True)),
    ("[get_weather(city='Paris', unit='kelvin')]", V("wrong_values", tool_selected=True,
                                                     params_identified=True)),
    ("[get_weather(city=5)]", V("wrong_values", tool_selected=True, params_identified=True)),
    ("[get_weather(city='Paris')]", V("exact", tool_selected=True, params_identified=True,
                                      exact=True)),
    ("[get_weather(city='paris, france', unit='celsius')]",
     V("exact", tool_selected=True, params_identified=True, exact=True)),
    ("get_weather(city='Paris')", V("exact", tool_selected=True, params_identified=True,
                                    exact=True)),
    ('{"name": "get_weather", "arguments": {"city": "Paris"}}',
     V("exact", tool_selected=True, params_identified=True, exact=True)),
]


@pytest.mark.parametrize("answer,verdict", CASES)
def test_categories_on_a_handcrafted_task(answer, verdict):
    assert categorize(answer, TASK) == verdict
    assert irm_reward(answer, TASK) == IRM_REWARDS[verdict.category]


def test_reward_table_is_the_references():
    assert IRM_REWARDS == {
        "unparsable": -2.0, "unknown_tool": -2.0, "wrong_tool": -1.5,
        "hallucinated_redundant_missing": -1.8, "hallucinated_and_redundant_or_missing": -1.3,
        "redundant_and_missing": -1.0, "hallucinated": -0.8, "redundant_or_missing": -0.5,
        "wrong_values": -0.25, "exact": 1.0}
    assert {v.category for _, v in CASES} == set(IRM_REWARDS)


@pytest.mark.parametrize("flags,category", [
    ((True, True, True), "hallucinated_redundant_missing"),
    ((True, True, False), "hallucinated_and_redundant_or_missing"),
    ((True, False, True), "hallucinated_and_redundant_or_missing"),
    ((False, True, True), "redundant_and_missing"),
    ((True, False, False), "hallucinated"),
    ((False, True, False), "redundant_or_missing"),
    ((False, False, True), "redundant_or_missing"),
    ((False, False, False), None),
])
def test_flag_order(flags, category):
    assert flag_category(*flags) == category


PARALLEL = {"id": "hand_1", "category": "parallel", "question": [], "functions": [WEATHER, WEEKDAY],
            "ground_truth": [{"get_weather": {"city": ["Paris"], "unit": ["celsius", ""]}},
                             {"get_weather": {"city": ["London"]}}]}


@pytest.mark.parametrize("answer,verdict", [
    ("[get_weather(city='London'), get_weather(city='Paris')]",
     V("exact", tool_selected=True, params_identified=True, exact=True)),
    ("[get_weather(city='London'), get_weather(city='Rome')]",
     V("wrong_values", tool_selected=True, params_identified=True)),
    # worst call decides (hallucinated -0.8 < redundant -0.5); flags are any call's
    ("[get_weather(city='Paris', country='FR'), get_weather(city='London', days=2)]",
     V("hallucinated", True, True, False, True)),
    # greedy pairing: gold Paris takes the exact call 0, gold London then gets call 1, whose
    # unit the London gold call does not list (redundant)
    ("[get_weather(city='Paris'), get_weather(city='London', unit='celsius')]",
     V("redundant_or_missing", False, True, False, True)),
    # the same with the calls swapped: gold Paris takes its best fit (call 1, exact), not the
    # first call of its name (pairing in order would give wrong_values twice, -0.25)
    ("[get_weather(city='London', unit='celsius'), get_weather(city='Paris')]",
     V("redundant_or_missing", False, True, False, True)),
    ("[get_weather(city='Paris')]", V("wrong_tool")),
    ("[get_weather(city='Paris'), get_weekday(date='London')]", V("wrong_tool")),
    ("[get_weather(city='Paris'), get_weather(city='London'), get_weather(city='Rome')]",
     V("wrong_tool")),
])
def test_multi_call_rule(answer, verdict):
    assert categorize(answer, PARALLEL) == verdict


IRRELEVANT = {"id": "hand_2", "category": "irrelevance", "question": [],
              "functions": [WEATHER], "ground_truth": []}


@pytest.mark.parametrize("answer,category", [
    (NO_CALL_ANSWER, "exact"),
    ("[]", "exact"),
    ("[get_weather(city='Paris')]", "wrong_tool"),
    ("[get_news(topic='x')]", "unknown_tool"),
    ("  ", "unparsable"),
])
def test_no_call_tasks(answer, category):
    verdict = categorize(answer, IRRELEVANT)
    assert verdict.category == category
    assert verdict.exact == verdict.tool_selected == verdict.params_identified == (
        category == "exact")


def _answer(calls):
    return format_calls(calls)


def test_real_simple_record():
    task = load_category("simple_python")[0]  # calculate_triangle_area(base=10, height=5)
    (call,) = reference_calls(task["ground_truth"])
    assert categorize(reference_answer(task), task).category == "exact"
    cases = {
        "wrong_values": Call(call.name, {**call.arguments, "base": 11}),
        "redundant_or_missing": Call(call.name, {"base": 10}),
        "hallucinated": Call(call.name, {**call.arguments, "color": "red"}),
        "hallucinated_and_redundant_or_missing": Call(call.name, {"base": 10, "colour": "red"}),
        "unknown_tool": Call("calculate_circle_area", call.arguments),
    }
    for category, wrong in cases.items():
        assert categorize(_answer([wrong]), task).category == category, category


def test_real_multiple_parallel_and_irrelevance_records():
    multiple = load_category("multiple")[0]  # triangle_properties.get vs circle_properties.get
    assert categorize(reference_answer(multiple), multiple).category == "exact"
    assert categorize("[circle_properties.get(radius=3)]", multiple).category == "wrong_tool"
    parallel = load_category("parallel")[0]  # two spotify.play calls
    calls = reference_calls(parallel["ground_truth"])
    assert categorize(_answer(calls[::-1]), parallel).category == "exact"
    assert categorize(_answer(calls[:1]), parallel).category == "wrong_tool"
    swapped = [Call(calls[0].name, {**calls[0].arguments, "duration": 15}), calls[1]]
    assert categorize(_answer(swapped), parallel).category == "wrong_values"
    irrelevant = load_category("irrelevance")[0]
    assert categorize(reference_answer(irrelevant), irrelevant).category == "exact"
    assert categorize("[determine_body_mass_index(weight=70.0, height=1.8)]",
                      irrelevant).category == "wrong_tool"


def test_reference_answers_of_real_records_are_exact():
    for cat in ("simple_python", "multiple", "parallel", "irrelevance"):
        for task in load_category(cat)[:25]:
            assert categorize(reference_answer(task), task).category == "exact", task["id"]


def test_selection_scores():
    verdicts = [categorize(a, TASK) for a in (
        "[get_weather(city='Paris')]",              # exact: TS PI CF
        "[get_weather(city='London')]",             # wrong values: TS PI
        "[get_weather(city='Paris', country='x')]",  # hallucinated: TS
        "[get_weekday(date='x')]",                  # wrong tool
        "no idea",                                  # unparsable
    )]
    assert selection_scores(verdicts) == {"TS": 3 / 5, "PI": 2 / 5, "CF": 1 / 5}
    with pytest.raises(ValueError):
        selection_scores([])


def test_reward_fn():
    trajs = [Trajectory(task_id=0, group_id=0, task=TASK), Trajectory(task_id=0, group_id=0,
                                                                     task=IRRELEVANT)]
    assert irm_reward_fn.__name__ == "irm"
    # completion_text of a trajectory without steps is ""
    assert irm_reward_fn(trajs) == [-2.0, -2.0]
    from rlpost.types import Step
    trajs[0].steps = [Step([], [], [], "[get_weather(city='Paris', days=1)]")]
    trajs[1].steps = [Step([], [], [], NO_CALL_ANSWER)]
    assert irm_reward_fn(trajs) == [-0.5, 1.0]
