"""rlpost's GRPO update against TRL's GRPOTrainer loss (the reference implementation) on the same
model, completions, advantages, behaviour logprobs and reference logprobs: the loss values and
the gradients must agree for each aggregation (TRL's loss_type "grpo", "bnpo", "dr_grpo" =
rlpost's loss_agg "seq-mean-token-mean", "token-mean", "seq-mean-token-sum-norm"), with
asymmetric clipping off-policy, the k3 KL term and a sampling temperature.

TRL's KL term is multiplied by the importance ratio by default (`use_bias_correction_kl`, the
DeepSeek-V3.2 correction); rlpost's is DeepSeekMath's plain k3, so the comparison turns it off."""

from __future__ import annotations

import math

import pytest
import torch

from rlpost.algos.batch import Row
from rlpost.algos.grpo import GRPOConfig, update
from rlpost.policy import Policy, action_logprobs
from rlpost.types import Message

MAX_TOKENS = 12
TEMPERATURE = 0.7  # TRL builds it into the model's fused LM head at construction
AGGS = {"grpo": "seq-mean-token-mean", "bnpo": "token-mean", "dr_grpo": "seq-mean-token-sum-norm"}


@pytest.fixture(scope="module")
def trl_trainer(tiny_model_path, tmp_path_factory):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig as TRLConfig
    from trl import GRPOTrainer

    args = TRLConfig(output_dir=str(tmp_path_factory.mktemp("trl")), use_cpu=True, bf16=False,
                     per_device_train_batch_size=4, num_generations=4,
                     max_completion_length=MAX_TOKENS, temperature=TEMPERATURE,
                     report_to="none", save_strategy="no", use_bias_correction_kl=False,
                     disable_tqdm=True)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_path, dtype=torch.float32)
    trainer = GRPOTrainer(model=model, reward_funcs=[lambda completions, **_: [0.0] * len(
        completions)], args=args, train_dataset=Dataset.from_list([{"prompt": "hi"}] * 4),
        processing_class=AutoTokenizer.from_pretrained(tiny_model_path))
    trainer.model.eval()  # no gradient-accumulation normaliser: one batch, as ours
    return trainer


@pytest.mark.parametrize("loss_type", list(AGGS))
@pytest.mark.parametrize("beta", [0.0, 0.2])
def test_update_matches_trl_grpo_loss(trl_trainer, tiny_model_path, loss_type, beta):
    tok = trl_trainer.processing_class
    policy = Policy(tiny_model_path, autocast=None)
    policy.model.load_state_dict(trl_trainer.model.state_dict())  # the same weights
    end = tok.convert_tokens_to_ids("<|im_end|>")
    prompt = policy.encode_chat([Message("user", "Name a colour.")])
    actions = [tok(t, add_special_tokens=False)["input_ids"] + [end] for t in
               ("red", "a deep blue", "green, I think, maybe", "no")]
    advantages = [1.3, -0.4, 0.6, -1.5]
    temperature = TEMPERATURE
    with torch.no_grad():
        now, mask = action_logprobs(policy.model, [(prompt, a) for a in actions],
                                    tok.pad_token_id, temperature=temperature)
    # off-policy: ratios exp(now - old) from 0.6 to 1.65, across both clip bounds
    old = now - torch.linspace(-0.5, 0.5, now.numel()).reshape(now.shape)
    torch.manual_seed(0)
    ref = Policy(tiny_model_path, autocast=None).model
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(0.05 * torch.randn_like(p))
        ref_lp, _ = action_logprobs(ref, [(prompt, a) for a in actions], tok.pad_token_id,
                                    temperature=temperature)
    ratios = torch.exp(now - old)[mask]
    assert (ratios < 0.9).any() and (ratios > 1.3).any()  # both bounds engage

    # TRL
    trl_trainer.loss_type, trl_trainer.beta = loss_type, beta
    trl_trainer.epsilon_low, trl_trainer.epsilon_high = 0.1, 0.3
    A = mask.shape[1]
    completion = torch.full((4, A), tok.pad_token_id, dtype=torch.long)
    for i, a in enumerate(actions):
        completion[i, : len(a)] = torch.tensor(a)
    inputs = {"prompt_ids": torch.tensor([prompt] * 4), "prompt_mask": torch.ones(4, len(prompt),
                                                                                  dtype=torch.long),
              "completion_ids": completion, "completion_mask": mask.long(),
              "advantages": torch.tensor(advantages), "old_per_token_logps": old,
              "ref_per_token_logps": ref_lp, "num_items_in_batch": mask.sum()}
    trl_trainer.model.zero_grad(set_to_none=True)
    trl_loss = trl_trainer._compute_loss(trl_trainer.model, inputs)
    trl_loss.backward()
    trl_grads = {n: p.grad.clone() for n, p in trl_trainer.model.named_parameters()}

    # rlpost
    rows = [Row(prompt, a, adv, [], old[i, : len(a)].clone())
            for i, (a, adv) in enumerate(zip(actions, advantages))]
    cfg = GRPOConfig(loss_agg=AGGS[loss_type], beta=beta, clip_eps_low=0.1, clip_eps_high=0.3,
                     temperature=temperature, max_tokens=MAX_TOKENS, max_grad_norm=1e9,
                     micro_batch_size=2)
    stats = update(cfg, policy, ref if beta else None, torch.optim.SGD(
        policy.trainable_parameters(), lr=0.0), rows)
    ours = {n: p.grad for n, p in policy.model.named_parameters()}

    kl = stats.get("loss/kl", 0.0)
    assert not math.isnan(float(trl_loss))
    # our loss/policy is the whole loss (policy term + beta * KL), as TRL's
    assert stats["loss/policy"] == pytest.approx(float(trl_loss), rel=1e-5, abs=1e-7), kl
    num = sum(float((ours[n] - trl_grads[n]).norm() ** 2) for n in ours) ** 0.5
    den = sum(float(g.norm() ** 2) for g in trl_grads.values()) ** 0.5
    assert den > 0 and num / den < 1e-4
