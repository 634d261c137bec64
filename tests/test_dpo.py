"""Preference optimisation: the DPO, IPO and SimPO losses on hand-computed values, agreement with
TRL 1.16 (DPOTrainer._compute_loss for sigmoid and IPO on a real tiny model, value, gradient and
metrics; CPOTrainer.cpo_loss for SimPO and label-smoothed DPO), fragment-level pairs, the config,
and the trainer: reference log-probs computed once, exact micro-batching, skipped non-finite
steps, LoRA, and a few steps on the bundled model that raise the chosen-rejected margin."""

from __future__ import annotations

import math
from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch

from rlpost.algos import dpo
from rlpost.algos.dpo import (
    DPOConfig,
    PairLogps,
    _accumulate,
    fragment_pair,
    pair_logprobs,
    reference_logprobs,
    train_dpo,
)
from rlpost.algos.losses import dpo_loss, ipo_loss, simpo_loss
from rlpost.errors import RlpostError
from rlpost.policy import Policy
from rlpost.types import Message, PreferencePair


def softplus(x: float) -> float:
    """-log sigma(-x)."""
    return math.log1p(math.exp(x))


T = torch.tensor


# --- pure losses ---------------------------------------------------------------------------

# two pairs: log-ratios (chosen, rejected) = (1, -1) and (0, 1)
CHOSEN, REJECTED = T([-10.0, -5.0]), T([-12.0, -4.0])
REF_CHOSEN, REF_REJECTED = T([-11.0, -5.0]), T([-11.0, -5.0])


def test_dpo_loss_hand_computed():
    loss, rc, rr = dpo_loss(CHOSEN, REJECTED, REF_CHOSEN, REF_REJECTED, beta=0.1)
    # z = 0.1 * (1 - (-1)) = 0.2 and 0.1 * (0 - 1) = -0.1; loss = mean(-log sigma(z))
    expected = (softplus(-0.2) + softplus(0.1)) / 2
    assert expected == pytest.approx(0.6712678, abs=1e-6)
    assert float(loss) == pytest.approx(expected, rel=1e-6)
    assert rc.tolist() == pytest.approx([0.1, 0.0]) and rr.tolist() == pytest.approx([-0.1, 0.1])
    assert not rc.requires_grad


def test_dpo_loss_gradient():
    c = CHOSEN.clone().requires_grad_()
    loss, _, _ = dpo_loss(c, REJECTED, REF_CHOSEN, REF_REJECTED, beta=0.1)
    loss.backward()
    # d/dc of mean(-log sigma(beta (c - ...))) = -beta sigma(-z) / B
    sig = lambda x: 1 / (1 + math.exp(-x))
    assert c.grad.tolist() == pytest.approx([-0.1 * sig(-0.2) / 2, -0.1 * sig(0.1) / 2], rel=1e-6)


def test_dpo_label_smoothing_cdpo():
    loss, _, _ = dpo_loss(CHOSEN, REJECTED, REF_CHOSEN, REF_REJECTED, beta=0.1,
                          label_smoothing=0.2)
    # (1 - eps) (-log sigma(z)) + eps (-log sigma(-z))
    expected = (0.8 * softplus(-0.2) + 0.2 * softplus(0.2) + 0.8 * softplus(0.1)
                + 0.2 * softplus(-0.1)) / 2
    assert float(loss) == pytest.approx(expected, rel=1e-6)
    assert float(loss) != pytest.approx(float(dpo_loss(CHOSEN, REJECTED, REF_CHOSEN,
                                                       REF_REJECTED, 0.1)[0]), rel=1e-3)
    with pytest.raises(ValueError, match="label_smoothing"):
        dpo_loss(CHOSEN, REJECTED, REF_CHOSEN, REF_REJECTED, 0.1, label_smoothing=0.5)


def test_ipo_loss_averages_log_ratios_over_tokens():
    loss, rc, rr = ipo_loss(CHOSEN, REJECTED, REF_CHOSEN, REF_REJECTED, T([2, 4]), T([1, 2]),
                            beta=0.5)
    # h = 1/2 - (-1)/1 = 1.5 and 0/4 - 1/2 = -0.5; 1/(2 beta) = 1: (0.5^2 + 1.5^2) / 2
    assert float(loss) == pytest.approx(1.25, rel=1e-6)
    # summed log-ratios (no averaging) would give ((2 - 1)^2 + (-1 - 1)^2) / 2 = 2.5
    assert rc.tolist() == pytest.approx([0.5, 0.0]) and rr.tolist() == pytest.approx([-0.5, 0.5])
    # a zero token count is taken as 1
    assert float(ipo_loss(CHOSEN, REJECTED, REF_CHOSEN, REF_REJECTED, T([0, 1]), T([0, 1]),
                          beta=0.5)[0]) == pytest.approx(((2 - 1) ** 2 + (-1 - 1) ** 2) / 2)


def test_simpo_loss_hand_computed():
    chosen, rejected = T([-4.0, -6.0]), T([-9.0, -2.0])
    loss, rc, rr = simpo_loss(chosen, rejected, T([2, 3]), T([3, 1]), beta=2.5, gamma=0.5)
    # 2.5 (-4/2) - 2.5 (-9/3) - 0.5 = 2.0 ; 2.5 (-6/3) - 2.5 (-2/1) - 0.5 = -0.5
    expected = (softplus(-2.0) + softplus(0.5)) / 2
    assert expected == pytest.approx(0.5505025, abs=1e-6)
    assert float(loss) == pytest.approx(expected, rel=1e-6)
    assert rc.tolist() == pytest.approx([-5.0, -5.0]) and rr.tolist() == pytest.approx([-7.5, -5.0])
    smooth, _, _ = simpo_loss(chosen, rejected, T([2, 3]), T([3, 1]), 2.5, 0.5, label_smoothing=0.1)
    assert float(smooth) == pytest.approx((0.9 * softplus(-2.0) + 0.1 * softplus(2.0)
                                           + 0.9 * softplus(0.5) + 0.1 * softplus(-0.5)) / 2)


def test_simpo_length_normalisation():
    """Twice the tokens at the same per-token log-prob: the same loss (a summed-logp loss would
    prefer the shorter continuation)."""
    a, _, _ = simpo_loss(T([-3.0]), T([-4.0]), T([3]), T([2]), beta=2.0, gamma=0.3)
    b, _, _ = simpo_loss(T([-6.0]), T([-4.0]), T([6]), T([2]), beta=2.0, gamma=0.3)
    assert float(a) == pytest.approx(float(b), rel=1e-6)
    assert float(a) == pytest.approx(softplus(-(2.0 * (-1.0) - 2.0 * (-2.0) - 0.3)), rel=1e-6)


# --- agreement with TRL 1.16 -----------------------------------------------------------------


def _trl_dpo_trainer(model, loss_type: str, beta: float):
    """A DPOTrainer without __init__ (which needs a dataset, an accelerator and tokenization):
    the attributes `_compute_loss` reads, and the fused LM head it calls the model with."""
    from trl import DPOTrainer
    from trl.trainer.utils import add_fused_lm_head

    add_fused_lm_head(model, outputs=("log_probs", "entropy", "mean_logits", "is_top1"))
    t = DPOTrainer.__new__(DPOTrainer)
    t.model, t.ref_model, t.beta, t.loss_types, t.loss_weights = model, None, beta, [loss_type], [1.0]
    t.accelerator = SimpleNamespace(device=torch.device("cpu"), gather=lambda x: x,
                                    gather_for_metrics=lambda x: x)
    t.precompute_ref_logps, t.ld_alpha, t.f_divergence_type = True, None, "reverse_kl"
    t.aux_loss_enabled, t.use_weighting, t.label_smoothing = False, False, 0.0
    t._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}
    t._total_train_tokens, t._tp_size = 0, 1
    return t


def _pairs(tok, policy) -> list[PreferencePair]:
    enc = lambda s: tok(s, add_special_tokens=False)["input_ids"]
    end = tok.convert_tokens_to_ids("<|im_end|>")
    q1 = policy.encode_chat([Message("user", "Is the sky blue?")])
    q2 = policy.encode_chat([Message("user", "Name a prime number below ten, please.")])
    return [PreferencePair(q1, enc("Yes, it is.") + [end], enc("No.") + [end]),
            PreferencePair(q2, enc("7") + [end], enc("Nine, I believe, is prime") + [end]),
            PreferencePair(q1, enc("Yes") + [end], enc("It is green today") + [end])]


@pytest.mark.parametrize("loss_type,beta", [("sigmoid", 0.3), ("ipo", 0.4)])
def test_dpo_and_ipo_match_trl_compute_loss(tiny_model_path, loss_type, beta):
    """Same model, pairs and reference log-probs: TRL's loss, its gradient and its logged metrics
    equal ours (pair_logprobs + the pure loss)."""
    from transformers import AutoModelForCausalLM

    policy = Policy(tiny_model_path, autocast=None)
    tok = policy.tokenizer
    pairs = _pairs(tok, policy)
    B = len(pairs)
    with torch.no_grad():
        now = pair_logprobs(policy.model, pairs, tok.pad_token_id)
    ref_c = now.chosen + T([0.7, -0.4, 0.2])  # log-ratios of both signs
    ref_r = now.rejected + T([-0.3, 0.5, -0.6])

    # TRL: rows [prompt + chosen] then [prompt + rejected], right-padded, completion mask
    seqs = [p.prompt_ids + p.chosen_ids for p in pairs] + [p.prompt_ids + p.rejected_ids
                                                          for p in pairs]
    L = max(map(len, seqs))
    ids = torch.full((2 * B, L), tok.pad_token_id, dtype=torch.long)
    attn, comp = torch.zeros_like(ids), torch.zeros_like(ids)
    for i, (s, p) in enumerate(zip(seqs, pairs + pairs)):
        ids[i, : len(s)], attn[i, : len(s)] = T(s), 1
        comp[i, len(p.prompt_ids) : len(s)] = 1
    model = AutoModelForCausalLM.from_pretrained(tiny_model_path, dtype=torch.float32).train()
    trainer = _trl_dpo_trainer(model, loss_type, beta)
    trl_loss = trainer._compute_loss(model, {"input_ids": ids, "attention_mask": attn,
                                             "completion_mask": comp, "ref_chosen_logps": ref_c,
                                             "ref_rejected_logps": ref_r}, return_outputs=False)
    trl_loss.backward()
    trl_grads = dict(model.named_parameters())

    policy.model.train()
    lp = pair_logprobs(policy.model, pairs, tok.pad_token_id)
    if loss_type == "sigmoid":
        loss, rc, rr = dpo_loss(lp.chosen, lp.rejected, ref_c, ref_r, beta)
    else:
        loss, rc, rr = ipo_loss(lp.chosen, lp.rejected, ref_c, ref_r, lp.chosen_tokens,
                                lp.rejected_tokens, beta)
    loss.backward()
    assert float(loss.detach()) == pytest.approx(float(trl_loss.detach()), rel=1e-5)
    num = sum(float((p.grad - trl_grads[n].grad).norm() ** 2)
              for n, p in policy.model.named_parameters()) ** 0.5
    den = sum(float(p.grad.norm() ** 2) for p in trl_grads.values()) ** 0.5
    assert den > 0 and num / den < 1e-4
    m = trainer._metrics["train"]
    ours = {"rewards/chosen": rc.mean(), "rewards/rejected": rr.mean(),
            "rewards/margins": (rc - rr).mean(), "rewards/accuracies": (rc > rr).float().mean(),
            "logps/chosen": lp.chosen.detach().mean(),
            "logps/rejected": lp.rejected.detach().mean()}
    for k, v in ours.items():
        assert m[k][0] == pytest.approx(float(v), rel=1e-5, abs=1e-6), k
    assert 0 < m["rewards/accuracies"][0] < 1  # both signs of the margin


def _trl_cpo(loss_type: str, beta: float, label_smoothing: float, simpo_gamma: float = 0.5):
    from trl.experimental.cpo import CPOTrainer

    t = CPOTrainer.__new__(CPOTrainer)
    t.loss_type, t.beta, t.label_smoothing, t.simpo_gamma, t.alpha = (
        loss_type, beta, label_smoothing, simpo_gamma, 0.0)
    t.accelerator = SimpleNamespace(device=torch.device("cpu"))
    return t


CHOSEN_4, REJECTED_4 = T([-4.0, -6.5, -1.2, -8.0]), T([-9.0, -2.0, -3.3, -7.5])
TOKENS_C, TOKENS_R = T([2, 3, 1, 5]), T([3, 1, 4, 5])


@pytest.mark.parametrize("label_smoothing", [0.0, 0.15])
def test_simpo_matches_trl_cpo(label_smoothing):
    """TRL's CPOTrainer (loss_type "simpo", cpo_alpha 0) gets token-averaged log-probs and
    subtracts simpo_gamma / beta before multiplying by beta: its simpo_gamma is our gamma."""
    trl = _trl_cpo("simpo", 2.5, label_smoothing, simpo_gamma=0.5)
    losses, trl_c, trl_r = trl.cpo_loss(CHOSEN_4 / TOKENS_C, REJECTED_4 / TOKENS_R)
    loss, rc, rr = simpo_loss(CHOSEN_4, REJECTED_4, TOKENS_C, TOKENS_R, 2.5, 0.5, label_smoothing)
    assert float(loss) == pytest.approx(float(losses.mean()), rel=1e-6)
    assert rc.tolist() == pytest.approx(trl_c.tolist()) and rr.tolist() == pytest.approx(
        trl_r.tolist())


def test_label_smoothed_dpo_matches_trl_cpo_sigmoid():
    """TRL 1.16's DPOTrainer has no label smoothing for loss "sigmoid"; its CPOTrainer's sigmoid
    loss on the log-ratios is cDPO's smoothed loss."""
    ref_c, ref_r = T([-5.0, -6.0, -1.0, -7.0]), T([-8.5, -2.5, -3.0, -7.0])
    trl = _trl_cpo("sigmoid", 0.7, 0.2)
    losses, trl_c, trl_r = trl.cpo_loss(CHOSEN_4 - ref_c, REJECTED_4 - ref_r)
    loss, rc, rr = dpo_loss(CHOSEN_4, REJECTED_4, ref_c, ref_r, 0.7, 0.2)
    assert float(loss) == pytest.approx(float(losses.mean()), rel=1e-6)
    assert rc.tolist() == pytest.approx(trl_c.tolist()) and rr.tolist() == pytest.approx(
        trl_r.tolist())


# --- pairs ---------------------------------------------------------------------------------


def test_fragment_pair_moves_the_shared_prefix_into_the_prompt():
    p = fragment_pair([1, 2], [5, 6, 7, 8], [5, 6, 9], chosen_score=1.0, info={"src": "mcts"})
    assert (p.prompt_ids, p.chosen_ids, p.rejected_ids) == ([1, 2, 5, 6], [7, 8], [9])
    assert p.chosen_score == 1.0 and p.info == {"src": "mcts", "fragment_prefix": 2}
    # nothing shared: unchanged
    q = fragment_pair([1], [3, 4], [4, 3])
    assert (q.prompt_ids, q.chosen_ids, q.rejected_ids) == ([1], [3, 4], [4, 3])
    # one a prefix of the other: the shorter keeps its last token
    r = fragment_pair([1], [5, 6], [5, 6, 7])
    assert (r.prompt_ids, r.chosen_ids, r.rejected_ids) == ([1, 5], [6], [6, 7])


def test_fragment_pair_refuses_identical_or_empty():
    with pytest.raises(ValueError, match="identical"):
        fragment_pair([1], [5, 6], [5, 6])
    with pytest.raises(ValueError, match="non-empty"):
        fragment_pair([1], [], [5])
    with pytest.raises(ValueError, match="non-empty"):
        fragment_pair([], [4], [5])


def test_pair_logprobs_sums_continuation_tokens(tiny_policy):
    """Per pair: the sum of the full-logits log-probs of its continuation tokens, and the count;
    batched (padded) and one pair at a time (shared prompt) agree."""
    model, tok = tiny_policy.model, tiny_policy.tokenizer
    pairs = _pairs(tok, tiny_policy)
    with torch.no_grad():
        got = pair_logprobs(model, pairs, tok.pad_token_id)
        for i, p in enumerate(pairs):
            single = pair_logprobs(model, [p], tok.pad_token_id)
            for cont, total, n in ((p.chosen_ids, got.chosen[i], got.chosen_tokens[i]),
                                   (p.rejected_ids, got.rejected[i], got.rejected_tokens[i])):
                seq = T([p.prompt_ids + cont])
                logp = torch.log_softmax(model(seq).logits[0, :-1].float(), -1)
                want = logp[torch.arange(len(p.prompt_ids) - 1, seq.shape[1] - 1), T(cont)].sum()
                assert float(total) == pytest.approx(float(want), rel=1e-5)
                assert int(n) == len(cont)
            assert float(single.chosen[0]) == pytest.approx(float(got.chosen[i]), rel=1e-5)
            assert float(single.rejected[0]) == pytest.approx(float(got.rejected[i]), rel=1e-5)


# --- config --------------------------------------------------------------------------------


def test_config_defaults_and_validation():
    assert DPOConfig().loss == "simpo" and DPOConfig().resolved_beta() == 2.5
    assert DPOConfig(loss="sigmoid").resolved_beta() == 0.1
    assert DPOConfig(loss="ipo").resolved_beta() == 0.1
    assert DPOConfig(loss="ipo", beta=0.3).resolved_beta() == 0.3
    DPOConfig().validate()
    bad = [({"loss": "kto"}, r"loss must be one of sigmoid, ipo, simpo \(sigmoid is DPO's loss\), got 'kto'"),
           ({"beta": 0.0}, "beta must be"), ({"beta": math.inf}, "beta must be"),
           ({"gamma": -0.1}, "gamma"), ({"label_smoothing": 0.5}, "label_smoothing must be"),
           ({"loss": "ipo", "label_smoothing": 0.1}, "not ipo"), ({"lr": 0}, "lr"),
           ({"epochs": 0}, "epochs"), ({"batch_size": 0}, "batch_size"),
           ({"micro_batch_pairs": 0}, "micro_batch_pairs"), ({"max_grad_norm": -1}, "max_grad"),
           ({"schedule": "linear"}, "schedule"), ({"lora_r": 0}, "lora_r"),
           ({"lora_targets": ()}, "lora_targets"), ({"warmup_steps": -1}, "warmup"),
           ({"lr": math.inf}, "lr must be finite"), ({"weight_decay": math.inf}, "weight_decay"),
           ({"lora_alpha": math.inf}, "lora_alpha must be finite")]
    for kwargs, message in bad:
        with pytest.raises(RlpostError, match=message) as e:
            DPOConfig(**kwargs).validate()
        assert str(e.value).startswith("dpo: ") and "\n" not in str(e.value)


def test_train_refuses_bad_pairs(tiny_policy):
    cfg = DPOConfig()
    with pytest.raises(RlpostError, match="pair 1 has identical"):
        train_dpo(tiny_policy, [PreferencePair([1], [2], [3]), PreferencePair([1], [2], [2])],
                  cfg, progress=False)
    with pytest.raises(RlpostError, match="pair 0 has an empty"):
        train_dpo(tiny_policy, [PreferencePair([1], [], [3])], cfg, progress=False)
    assert train_dpo(tiny_policy, [], cfg, progress=False).steps == 0


# --- the trainer ---------------------------------------------------------------------------


class Recorder:
    """A Tracker stand-in that keeps what was logged."""

    def __init__(self):
        self.rows: list[tuple[int, dict]] = []

    def log(self, metrics, step):
        self.rows.append((step, dict(metrics)))


def test_micro_batches_accumulate_exactly(tiny_policy):
    """One batch's gradient does not depend on micro_batch_pairs (per-micro-batch means scaled
    by their share of the batch)."""
    pairs = _pairs(tiny_policy.tokenizer, tiny_policy)
    ref = reference_logprobs(tiny_policy, pairs, 2)
    ref = PairLogps(ref.chosen - 0.3, ref.rejected + 0.2, ref.chosen_tokens, ref.rejected_tokens)
    grads, metrics = [], []
    for mb in (1, 2, 3):
        cfg = DPOConfig(loss="sigmoid", micro_batch_pairs=mb)
        tiny_policy.model.zero_grad(set_to_none=True)
        metrics.append(_accumulate(tiny_policy, pairs, ref, [2, 0, 1], cfg))
        grads.append(torch.cat([p.grad.flatten() for p in tiny_policy.model.parameters()]))
    for g, m in zip(grads[1:], metrics[1:]):
        assert float((g - grads[0]).norm() / grads[0].norm()) < 1e-5
        for k, v in m.items():
            assert v == pytest.approx(metrics[0][k], rel=1e-5, abs=1e-7), k
    assert metrics[0]["rewards/margins"] == pytest.approx(0.1 * 0.5)  # beta * (0.3 + 0.2)


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step")
def test_non_finite_loss_skips_the_step(tiny_policy, monkeypatch):
    def nan_loss(*args):
        loss, rc, rr = simpo_loss(*args)
        return loss * float("nan"), rc, rr

    monkeypatch.setattr(dpo, "simpo_loss", nan_loss)
    before = {n: p.detach().clone() for n, p in tiny_policy.model.named_parameters()}
    rec = Recorder()
    res = train_dpo(tiny_policy, _pairs(tiny_policy.tokenizer, tiny_policy),
                    DPOConfig(lr=1e-2, batch_size=2), tracker=rec, progress=False)
    assert res.steps == 2 and res.skipped == 2
    assert [m["dpo/skipped_steps"] for _, m in rec.rows] == [1, 2]
    for n, p in tiny_policy.model.named_parameters():
        assert torch.equal(p, before[n]), n


def test_lora_training_merges_back(tiny_policy):
    names = [n for n, _ in tiny_policy.model.named_parameters()]
    before = {n: p.detach().clone() for n, p in tiny_policy.model.named_parameters()}
    res = train_dpo(tiny_policy, _pairs(tiny_policy.tokenizer, tiny_policy),
                    DPOConfig(loss="sigmoid", lr=1e-2, lora=True, lora_r=2, batch_size=3),
                    progress=False)
    assert res.steps == 1 and res.skipped == 0
    assert [n for n, _ in tiny_policy.model.named_parameters()] == names
    changed = [n for n, p in tiny_policy.model.named_parameters() if not torch.equal(p, before[n])]
    assert changed and all("proj" in n for n in changed)  # only the adapted linears moved
    assert not tiny_policy.model.training


@pytest.mark.parametrize("loss", ["sigmoid", "simpo"])
def test_training_raises_the_margin_on_the_bundled_model(model_path, monkeypatch, loss):
    """A few steps on hand-made pairs raise log pi(chosen) - log pi(rejected); the reference
    log-probs are computed once (one no-grad pass over the pairs, none for SimPO) and stay fixed
    while the weights move: the implicit rewards are 0 before the first update, not after."""
    policy = Policy(model_path)
    tok = policy.tokenizer
    end = tok.convert_tokens_to_ids("<|im_end|>")
    enc = lambda s: tok(s, add_special_tokens=False)["input_ids"] + [end]
    q1 = policy.encode_chat([Message("user", "Is fire hot? Answer yes or no.")])
    q2 = policy.encode_chat([Message("user", "Is ice cold? Answer yes or no.")])
    pairs = [PreferencePair(q1, enc("Yes"), enc("No")), PreferencePair(q2, enc("Yes"), enc("No"))]
    calls = []
    real = dpo.pair_logprobs

    def counting(model, ps, pad, device="cpu"):
        calls.append((torch.is_grad_enabled(), len(ps)))
        return real(model, ps, pad, device)

    monkeypatch.setattr(dpo, "pair_logprobs", counting)
    with torch.no_grad():
        before = real(policy.model, pairs, tok.pad_token_id)
    rec = Recorder()
    cfg = DPOConfig(loss=loss, lr=2e-5, batch_size=2, micro_batch_pairs=1, epochs=3)
    res = train_dpo(policy, pairs, cfg, tracker=rec, step_offset=5, progress=False)
    with torch.no_grad():
        after = real(policy.model, pairs, tok.pad_token_id)

    no_grad = [n for grad, n in calls if not grad]
    assert no_grad == ([] if loss == "simpo" else [1, 1])  # the reference pass, once
    assert sum(n for grad, n in calls if grad) == 2 * 3
    assert res.steps == 3 and res.skipped == 0
    assert [s for s, _ in rec.rows] == [6, 7, 8]
    keys = {"dpo/loss", "dpo/rewards/chosen", "dpo/rewards/rejected", "dpo/rewards/margins",
            "dpo/rewards/accuracies", "dpo/logps/chosen", "dpo/logps/rejected", "dpo/grad_norm",
            "dpo/lr", "dpo/skipped_steps"}
    assert set(rec.rows[0][1]) == keys
    margin_before = (before.chosen - before.rejected).mean()
    margin_after = (after.chosen - after.rejected).mean()
    assert float(margin_after) > float(margin_before) + 0.5
    first, last = rec.rows[0][1], rec.rows[-1][1]
    assert last["dpo/rewards/margins"] > first["dpo/rewards/margins"]
    assert last["dpo/loss"] < first["dpo/loss"]
    if loss == "sigmoid":  # policy == reference at the first step only
        assert abs(first["dpo/rewards/margins"]) < 0.02
        assert first["dpo/loss"] == pytest.approx(math.log(2), abs=0.01)
        assert last["dpo/rewards/margins"] > 0.05
    assert not policy.model.training
