"""What every generator must honour (rlpost.generate.Generator): each GenParams field, the model's
end ids, logprobs of the distribution sampled from. The transformers generator is checked on the
tiny model; the parity test runs both generators on the bundled model."""

from __future__ import annotations

import math

import pytest
import torch

from rlpost.generate import GenParams
from rlpost.generate.hf import HFGenerator, end_ids, top_p_logprobs
from rlpost.types import Message

PROMPTS = [[1, 504, 3575, 282], [1, 28, 29]]


def test_top_p_keeps_the_smallest_set_reaching_the_mass():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    lp = top_p_logprobs(logits, 0.8)  # 0.5 + 0.3 reaches 0.8: two tokens kept
    assert torch.allclose(lp.exp(), torch.tensor([[0.625, 0.375, 0.0, 0.0]]))
    lp = top_p_logprobs(logits, 0.81)  # needs the third token
    assert torch.allclose(lp.exp(), torch.tensor([[0.5, 0.3, 0.15, 0.0]]) / 0.95)
    lp = top_p_logprobs(logits, 1e-6)  # only the most probable token
    assert lp[0, 0] == 0.0 and torch.isinf(lp[0, 1:]).all()
    assert torch.equal(top_p_logprobs(logits, 1.0), torch.log_softmax(logits, -1))
    # unsorted input: the kept set is found by probability, not position
    lp = top_p_logprobs(torch.log(torch.tensor([[0.05, 0.3, 0.5, 0.15]])), 0.8)
    assert torch.isinf(lp[0, [0, 3]]).all() and not torch.isinf(lp[0, [1, 2]]).any()


@pytest.fixture(scope="module")
def hf(tiny_model_path):
    return HFGenerator(tiny_model_path, seed=0)


def test_tiny_top_p_equals_greedy_and_its_logprobs_are_zero(hf):
    greedy = hf.generate(PROMPTS, GenParams(temperature=0.0, max_tokens=6))
    nucleus = hf.generate(PROMPTS, GenParams(temperature=1.0, top_p=1e-6, max_tokens=6))
    assert [c.token_ids for c in nucleus] == [c.token_ids for c in greedy]
    # one token kept: probability 1 under the distribution sampled from
    assert all(lp == 0.0 for c in nucleus for lp in c.logprobs)
    sampled = hf.generate(PROMPTS, GenParams(temperature=1.0, max_tokens=6))
    assert all(lp < 0.0 for c in sampled for lp in c.logprobs)


def test_max_tokens_and_finish_reason(hf):
    out = hf.generate(PROMPTS, GenParams(temperature=0.0, max_tokens=3))
    assert [len(c.token_ids) for c in out] == [3, 3]
    assert [c.finish_reason for c in out] == ["length", "length"]


def test_stops_at_every_end_id_of_the_generation_config(tiny_model_path, hf, tmp_path):
    greedy = hf.generate(PROMPTS[:1], GenParams(temperature=0.0, max_tokens=8))[0].token_ids
    k = 0  # the random tiny model may repeat one token: end at the first
    stop_id = greedy[k]
    assert stop_id != hf.tokenizer.eos_token_id and len(greedy) == 8
    hf.model.generation_config.eos_token_id = [hf.tokenizer.eos_token_id, stop_id]
    assert end_ids(hf.model, hf.tokenizer) == {hf.tokenizer.eos_token_id, stop_id}
    hf.end_ids = end_ids(hf.model, hf.tokenizer)
    try:
        out = hf.generate(PROMPTS[:1], GenParams(temperature=0.0, max_tokens=8))[0]
    finally:
        hf.end_ids = {hf.tokenizer.eos_token_id}
    assert out.token_ids == greedy[: k + 1] and out.finish_reason == "stop"


def test_stop_strings_end_the_completion(hf):
    greedy = hf.generate(PROMPTS[:1], GenParams(temperature=0.0, max_tokens=6))[0]
    piece = hf.tokenizer.decode(greedy.token_ids[:2], skip_special_tokens=True)[-1]
    out = hf.generate(PROMPTS[:1], GenParams(temperature=0.0, max_tokens=6, stop=[piece]))[0]
    assert len(out.token_ids) <= 2 and out.finish_reason == "stop"


def test_max_model_len_is_the_models_context(hf):
    assert hf.max_model_len == hf.model.config.max_position_embeddings


def test_vllm_and_transformers_honour_the_same_params(engine, model_path, policy):
    """Both generators on the bundled model: greedy, top_p ~ 0 (= greedy, logprob 0), a stop
    string, max_tokens, and end at the chat's end-of-turn id."""
    hf = HFGenerator(model_path)
    prompts = [policy.encode_chat([Message("user", q)]) for q in
               ("What is the capital of France?", "Name a colour of the sky.")]
    greedy = GenParams(temperature=0.0, max_tokens=12)
    nucleus = GenParams(temperature=1.0, top_p=1e-6, max_tokens=12)
    for gen in (hf, engine):
        g, n = gen.generate(prompts, greedy), gen.generate(prompts, nucleus)
        assert [c.token_ids for c in n] == [c.token_ids for c in g], type(gen).__name__
        assert all(math.isclose(lp, 0.0, abs_tol=1e-3) for c in n for lp in c.logprobs)
        short = gen.generate(prompts, GenParams(temperature=0.0, max_tokens=2))
        assert [len(c.token_ids) for c in short] == [2, 2]
        assert {c.finish_reason for c in short} == {"length"}
    long = GenParams(temperature=0.0, max_tokens=96)
    end = policy.tokenizer.convert_tokens_to_ids("<|im_end|>")
    for gen in (hf, engine):
        outs = gen.generate(prompts, long)
        assert any(c.finish_reason == "stop" for c in outs), type(gen).__name__
        for c in outs:  # a stop is the end-of-turn id, and nothing follows it
            assert (c.finish_reason == "stop") == (c.token_ids[-1] == end)
            assert end not in c.token_ids[:-1]


def test_a_seeded_call_repeats_its_samples(hf):
    params = GenParams(temperature=1.0, max_tokens=6, seed=7)
    a, b = hf.generate(PROMPTS, params), hf.generate(PROMPTS, params)
    assert [c.token_ids for c in a] == [c.token_ids for c in b]
    other = hf.generate(PROMPTS, GenParams(temperature=1.0, max_tokens=6, seed=8))
    assert [c.token_ids for c in other] != [c.token_ids for c in a]


def test_vllm_seeded_sampling_repeats_and_leaves_the_torch_rng_alone(engine, policy):
    prompts = [policy.encode_chat([Message("user", q)]) for q in
               ("Name a colour.", "Tell me a word.", "Say hi.")] * 3
    params = GenParams(temperature=1.0, max_tokens=12, seed=123)
    state = torch.get_rng_state()
    a = [c.token_ids for c in engine.generate(prompts, params)]
    assert torch.equal(torch.get_rng_state(), state)
    engine.generate(prompts, GenParams(temperature=1.0, max_tokens=12))  # moves the engine on
    b = [c.token_ids for c in engine.generate(prompts, params)]
    assert a == b
    c = [c.token_ids for c in engine.generate(prompts, GenParams(temperature=1.0, max_tokens=12,
                                                                seed=124))]
    assert c != a


def test_prompt_objects_equal_bare_ids_and_text_models_refuse_images(hf, engine, policy):
    """Both generators take `Prompt(ids, images)`; a bare id list is the same text prompt, and
    a text-only model refuses images with a one-line error (before generating anything)."""
    from PIL import Image

    from rlpost.errors import RlpostError
    from rlpost.generate import Prompt

    ids = policy.encode_chat([Message("user", "Say hi.")])
    greedy = GenParams(temperature=0.0, max_tokens=6)
    image = Image.new("RGB", (8, 8))
    for gen in (hf, engine):
        bare, wrapped = gen.generate([ids], greedy), gen.generate([Prompt(ids)], greedy)
        assert wrapped[0].token_ids == bare[0].token_ids and len(bare[0].token_ids) > 0
        with pytest.raises(RlpostError, match=r"^the prompt has 1 image\(s\) but the .* text"):
            gen.generate([Prompt(ids), Prompt(ids, [image])], greedy)


def test_every_generator_refuses_the_same_bad_requests(hf):
    """GenParams no generator can honour, and prompts that are not token ids, fail before any
    generation with the same error whichever generator gets them."""
    from rlpost.generate import Prompt, as_prompt

    for bad in (dict(temperature=-1.0), dict(temperature=float("nan")), dict(top_p=0.0),
                dict(top_p=1.5), dict(max_tokens=0)):
        with pytest.raises(ValueError, match="^GenParams: "):
            GenParams(**bad)
    for prompt in ([], "hello", Prompt("hello"), [1.5, 2], [True]):
        with pytest.raises(ValueError, match="^a prompt is a non-empty list of token ids"):
            as_prompt(prompt)
    vocab = hf.model.config.vocab_size
    with pytest.raises(ValueError, match=rf"^prompt token ids must be in \[0, {vocab}\)$"):
        hf.generate([[1, vocab]], GenParams(max_tokens=2))
    with pytest.raises(ValueError, match="longer than the model's context"):
        hf.generate([[1] * (hf.max_model_len + 1)], GenParams(max_tokens=2))
