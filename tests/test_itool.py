"""The iTool recipe's parts: reference answers from BFCL's possible answers, the easy-to-hard
curriculum, the deficient-sample pick, answer perplexities; and a smoke run on the bundled
model with vLLM."""

from __future__ import annotations

import math

import pytest
import torch

from rlpost.envs.tooluse.calls import Call
from rlpost.envs.tooluse.reference import NO_CALL_ANSWER, reference_answer, reference_calls
from rlpost.recipes.itool import answer_perplexities, curriculum, difficulty, pick_deficient

GT = [{"area": {"base": [10], "unit": ["", "cm"], "height": [5, 5.0], "opt": [""],
                "flag": [None, ""]}},
      {"g": {}}]


def test_reference_calls_take_the_first_value_and_leave_out_optional_ones():
    assert reference_calls(GT) == [Call("area", {"base": 10, "unit": "cm", "height": 5,
                                                 "flag": None}), Call("g", {})]
    assert reference_answer({"category": "parallel", "ground_truth": GT}) \
        == "[area(base=10, unit='cm', height=5, flag=None), g()]"
    assert reference_answer({"category": "irrelevance", "ground_truth": []}) == NO_CALL_ANSWER


def test_dict_values_resolve_their_own_option_lists_and_names_can_be_underscored():
    gt = [{"db.query": {"conditions": [{"department": ["Science"], "year": ["", 2]},
                                       {"department": ["Arts"]}],
                        "rows": [[{"k": ["a", "b"]}]]}}]
    assert reference_calls(gt) == [Call("db.query", {"conditions": {"department": "Science",
                                                                    "year": 2},
                                                     "rows": [{"k": "a"}]})]
    assert reference_calls(gt, underscore_names=True)[0].name == "db_query"


def test_reference_answers_pass_the_envs_own_check_but_two_entries():
    """Over the recipe's categories (1,240 entries), BFCL's own checker accepts the reference
    answer of all but two: their ground truth has a parameter the function docs lack."""
    from rlpost.envs.tooluse.env import ToolUseConfig, ToolUseEnv, grade
    from rlpost.recipes.itool import Config

    for underscore in (False, True):
        cfg = ToolUseConfig(categories=Config().env.categories, underscore_names=underscore)
        env = ToolUseEnv(cfg)
        records = [env.task_record(t) for s in ("train", "test") for t in env.tasks(s)]
        failing = [r["id"] for r in records
                   if not grade(reference_answer(r, underscore), r, cfg)[1]["success"]]
        assert len(records) == 1240
        assert sorted(failing) == ["parallel_multiple_12", "parallel_multiple_26"]


def test_difficulty_counts_calls_then_arguments():
    assert difficulty({"category": "parallel", "ground_truth": GT}) == (2, 4)
    assert difficulty({"category": "live_irrelevance", "ground_truth": []}) == (0, 0)


def test_curriculum_is_easiest_first_in_near_equal_stages():
    items = ["c", "a", "e", "b", "d"]
    keys = [(2, 1), (0, 0), (3, 0), (1, 5), (2, 0)]
    assert curriculum(items, keys, 2) == [["a", "b", "d"], ["c", "e"]]
    assert curriculum(items, keys, 1) == [["a", "b", "d", "c", "e"]]
    assert curriculum(items, keys, 9) == [["a"], ["b"], ["d"], ["c"], ["e"]]
    assert curriculum([], [], 3) == []


def test_pick_deficient_takes_the_top_share_of_each_group():
    ppl = [1.0, 9.0, 3.0, 7.0, 2.0, 8.0, 4.0]
    has_call = [True, True, True, True, False, False, False]
    # calls: int(0.5 * 4) = 2 of [9 (1), 7 (3)]; no call: int(0.5 * 3) = 1 of [8 (5)]
    assert pick_deficient(ppl, has_call, 0.5) == [1, 3, 5]
    assert pick_deficient(ppl, has_call, 0.3) == [1]  # rounds down, as the reference
    assert pick_deficient(ppl, has_call, 1.0) == [1, 3, 2, 0, 5, 6, 4]
    assert pick_deficient(ppl, [True] * 7, 0.5) == [1, 5, 3]


def test_answer_perplexities_by_hand(model_path):
    from rlpost.policy import Policy

    policy = Policy(model_path, autocast=None)  # float32: exact up to summation order
    prompts, answers = [[5, 6, 7], [8, 9]], [[11, 12], [13]]
    got = answer_perplexities(policy, prompts, answers, batch=1)
    with torch.no_grad():
        for prompt, answer, value in zip(prompts, answers, got):
            ids = torch.tensor([prompt + answer])
            logp = torch.log_softmax(policy.model(ids).logits.float(), -1)[0]
            nll = -sum(float(logp[len(prompt) - 1 + k, a]) for k, a in enumerate(answer))
            assert value == pytest.approx(math.exp(nll / len(answer)), rel=1e-4)
    assert got == pytest.approx(answer_perplexities(policy, prompts, answers, batch=8), rel=1e-4)


def test_itool_smoke_runs_warm_up_and_an_iteration(engine, model_path, tmp_path):
    """The itool recipe end to end on the bundled model and vLLM: zero-shot eval, the warm-up,
    one iteration (deficient samples, MCTS, SimPO), results and the model saved; the warm-up
    made the reference answers of the training tasks more likely than under the base model."""
    import json

    from rlpost.policy import Policy
    from rlpost.recipes import itool

    cfg = itool.smoke()
    cfg.run.dir = str(tmp_path / "itool")
    results = itool.main(cfg, generator=engine)
    assert json.loads((tmp_path / "itool" / "results.json").read_text()) == results
    base, tuned = Policy(model_path), Policy(str(tmp_path / "itool" / "model"))
    run = itool.ITool(cfg, base, engine)  # the same tasks as the run's
    assert results["tasks/train"] == len(run.train) and results["tasks/too_long"] == run.too_long
    assert len(run.train) + run.too_long >= cfg.train_tasks
    calls = sum(t.answer != NO_CALL_ANSWER for t in run.train)
    assert results["iter/deficient_1"] == int(0.3 * calls) + int(0.3 * (len(run.train) - calls))
    rows = [json.loads(line) for line in (tmp_path / "itool" / "metrics.jsonl").read_text()
            .splitlines()]
    evals = [r["eval/ast_acc"] for r in rows if "eval/ast_acc" in r]
    assert evals == [results["zero_shot/ast_acc"], results["sft/ast_acc"],
                     results["itool_1/ast_acc"]]
    # the warm-up and the iteration trained: the saved model finds the answers likelier
    prompts = [t.prompt_ids for t in run.train]
    answers = [base.tokenizer(t.answer)["input_ids"] for t in run.train]
    before = itool.answer_perplexities(base, prompts, answers)
    after = itool.answer_perplexities(tuned, prompts, answers)
    assert sum(after) / len(after) < 0.5 * sum(before) / len(before)


def test_self_eval_reward_weighs_the_option_probabilities(model_path):
    """A stand-in model whose next token is " A" or " D" with probability 1/2 each: the reward
    is (1.0 * 0.5 - 2.0 * 0.5) / 4 = -0.125 (iTool's weights); all on "B": 0.1 / 4."""
    from contextlib import nullcontext
    from types import SimpleNamespace

    from rlpost.policy import load_tokenizer
    from rlpost.recipes.itool import option_tokens, self_eval_reward

    tok = load_tokenizer(model_path)
    options = option_tokens(tok)
    a, d = tok(" A", add_special_tokens=False)["input_ids"], tok(" D", add_special_tokens=False)[
        "input_ids"]
    assert len(a) == len(d) == 1 and a[0] in options["A"] and d[0] in options["D"]
    assert not set(options["A"]) & set(options["B"])

    class Model(torch.nn.Module):
        def __init__(self, hot):
            super().__init__()
            self.hot = hot

        def forward(self, ids):
            logits = torch.full((1, ids.shape[1], len(tok)), -1e4)
            logits[0, -1, self.hot] = 0.0
            return SimpleNamespace(logits=logits)

    seen = []

    def encode_chat(messages):
        seen.append(messages)
        return [1, 2, 3]

    policy = SimpleNamespace(encode_chat=encode_chat, autocast_ctx=nullcontext,
                             device=torch.device("cpu"), model=Model([a[0], d[0]]))
    assert self_eval_reward(policy, "[f(a=1)]", "[f(a=2)]", options) == pytest.approx(-0.125)
    assert "Reference answer: [f(a=1)]\nModel answer: [f(a=2)]" in seen[0][1].content
    b = tok("B", add_special_tokens=False)["input_ids"]
    assert len(b) == 1 and b[0] in options["B"]
    policy.model = Model(b)
    assert self_eval_reward(policy, "x", "y", options) == pytest.approx(0.1 / 4)
