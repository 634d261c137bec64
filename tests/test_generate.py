"""Generators on the bundled model: vLLM weight sync checked against transformers."""

import torch

from rlpost.generate import GenParams
from rlpost.policy import action_logprobs
from rlpost.types import Message

QUESTIONS = ["What is the capital of France?", "Name a colour of the sky.",
             "Write one word that rhymes with cat.", "What is 2 + 3?"]

# vLLM holds bf16 weights (8-bit mantissa, relative rounding ~0.4%) while the trainer holds
# float32. Measured on the bundled model (16 greedy tokens x 4 prompts): mean gap 0.03 nat,
# max 0.20. 0.1 mean / 0.5 max leaves 2-3x room for that, while a stale engine (10% weight
# perturbation not synced) is off by 1.9 nat on average: any missed or partial sync fails.
MEAN_TOL, MAX_TOL = 0.1, 0.5


def _greedy_gap(engine, policy, prompts):
    outs = engine.generate(prompts, GenParams(temperature=0.0, max_tokens=16))
    rows = [(p, c.token_ids) for p, c in zip(prompts, outs)]
    with torch.no_grad():
        lp, mask = action_logprobs(policy.model, rows, policy.tokenizer.pad_token_id)
    diffs = torch.cat([(lp[i, : len(c.token_ids)] - torch.tensor(c.logprobs)).abs()
                       for i, c in enumerate(outs)])
    return float(diffs.mean()), float(diffs.max()), outs


def test_vllm_matches_transformers_before_and_after_weight_update(engine, policy):
    prompts = [policy.encode_chat([Message("user", q)]) for q in QUESTIONS]
    mean, mx, outs = _greedy_gap(engine, policy, prompts)
    print(f"bf16 engine vs fp32 policy: mean {mean:.4f} max {mx:.4f}")
    assert mean < MEAN_TOL and mx < MAX_TOL, (mean, mx)
    assert "Paris" in outs[0].text

    torch.manual_seed(0)
    with torch.no_grad():
        for p in policy.model.parameters():
            p.mul_(1 + 0.1 * torch.randn_like(p))
    stale_mean, _, _ = _greedy_gap(engine, policy, prompts)
    print(f"stale engine: mean {stale_mean:.4f}")
    assert stale_mean > 5 * MEAN_TOL, "perturbation too small for the test to mean anything"

    engine.sync_weights(policy)
    mean, mx, _ = _greedy_gap(engine, policy, prompts)
    print(f"after sync: mean {mean:.4f} max {mx:.4f}")
    assert mean < MEAN_TOL and mx < MAX_TOL, (mean, mx)


def test_hf_generator_agrees_with_vllm_greedy(engine, policy, model_path):
    from rlpost.generate.hf import HFGenerator

    hf = HFGenerator(model_path)
    prompts = [policy.encode_chat([Message("user", q)]) for q in QUESTIONS[:2]]
    params = GenParams(temperature=0.0, max_tokens=8)
    a, b = hf.generate(prompts, params), engine.generate(prompts, params)
    for x, y in zip(a, b):
        # greedy paths agree at least on the first tokens (bf16 vs fp32 may split later)
        assert x.token_ids[:3] == y.token_ids[:3]
        assert abs(x.logprobs[0] - y.logprobs[0]) < MAX_TOL


def test_shared_prompt_logprobs_equal_padded_batch_values_and_gradients(policy):
    from rlpost.policy import shared_prompt_logprobs

    prompt = policy.encode_chat([Message("user", QUESTIONS[0])])
    actions = [[504, 3575, 282], [504, 7042], [28, 29, 30, 31, 2]]
    model = policy.model
    lp1, m1 = action_logprobs(model, [(prompt, a) for a in actions], 0, temperature=0.7)
    (lp1 * torch.tensor([1.0, -2.0, 0.5])[:, None]).sum().backward()
    g1 = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    lp2, m2 = shared_prompt_logprobs(model, prompt, actions, temperature=0.7)
    (lp2 * torch.tensor([1.0, -2.0, 0.5])[:, None]).sum().backward()
    assert torch.equal(m1, m2)
    assert torch.allclose(lp1, lp2, atol=1e-4)
    for n, p in model.named_parameters():
        assert torch.allclose(g1[n], p.grad, atol=1e-5, rtol=1e-3), n
