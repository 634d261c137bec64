"""SFT: loss math, assistant-token masks on the real SmolLM2 template, exact gradient
accumulation, training (full and LoRA) on the bundled model."""

from __future__ import annotations

import math

import pytest
import torch

from rlpost.algos.sft import (
    SFTConfig,
    SFTSample,
    _accumulate,
    assistant_spans,
    sft_loss,
    tokenize_sample,
    train_sft,
)
from rlpost.errors import RlpostError
from rlpost.policy import Policy, load_tokenizer
from rlpost.types import Message

END = "<|im_end|>"


def chat(*turns: str, system: str | None = None) -> list[Message]:
    """Alternating user/assistant turns, starting with the user."""
    msgs = [Message("system", system)] if system is not None else []
    return msgs + [Message("user" if i % 2 == 0 else "assistant", t) for i, t in enumerate(turns)]


@pytest.fixture(scope="module")
def tok(model_path):
    return load_tokenizer(model_path)


# --- sft_loss ----------------------------------------------------------------------------


def test_sft_loss_hand_computed():
    lp = torch.tensor([-1.0, -2.0, -4.0])
    assert float(sft_loss(lp, torch.tensor([1.0, 1.0, 1.0]))) == pytest.approx(7 / 3)
    assert float(sft_loss(lp, torch.tensor([1.0, 0.0, 3.0]))) == pytest.approx((1 + 12) / 4)
    assert float(sft_loss(lp, torch.tensor([0.5, 0.0, 0.0]))) == pytest.approx(1.0)
    # masked tokens contribute nothing, even an impossible one
    lp_inf = torch.tensor([-1.0, -math.inf])
    assert float(sft_loss(lp_inf, torch.tensor([1.0, 0.0]))) == pytest.approx(1.0)
    leaf = lp.clone().requires_grad_()
    zero = sft_loss(leaf, torch.zeros(3))
    zero.backward()  # still differentiable: an all-masked micro-batch needs no special case
    assert float(zero.detach()) == 0.0 and leaf.grad.tolist() == [0.0, 0.0, 0.0]
    assert float(sft_loss(torch.zeros(0), torch.zeros(0))) == 0.0


def test_sft_loss_gradient():
    lp = torch.tensor([-1.0, -2.0, -4.0], requires_grad=True)
    sft_loss(lp, torch.tensor([1.0, 0.0, 3.0])).backward()
    assert lp.grad.tolist() == pytest.approx([-0.25, 0.0, -0.75])


# --- tokenize_sample ---------------------------------------------------------------------


def _weighted_text(tok, ids, weights) -> str:
    return tok.decode([i for i, w in zip(ids, weights) if w > 0])


def test_tokenize_marks_assistant_content_and_end_of_turn(tok):
    msgs = chat("What is 2+2?", "It is 4.", "And 3+3?", "6", system="Be brief.")
    ids, w = tokenize_sample(tok, SFTSample(msgs, [1.0, 1.0]), 2048)
    full = tok.apply_chat_template([m.as_dict() for m in msgs], tokenize=False)
    assert ids == tok(full, add_special_tokens=False)["input_ids"]
    assert len(w) == len(ids)
    assert _weighted_text(tok, ids, w) == f"It is 4.{END}6{END}"
    # each weighted run is exactly one assistant content + its end-of-turn token
    runs, cur = [], []
    for i, x in zip(ids, w):
        if x > 0:
            cur.append(i)
        elif cur:
            runs.append(tok.decode(cur))
            cur = []
    assert runs == [f"It is 4.{END}", f"6{END}"]
    # no system/user token nor scaffolding has weight
    _, spans = assistant_spans(tok, msgs)
    marked = {t for span in spans for t in span}
    assert all(w[t] == 0 for t in range(len(ids)) if t not in marked)
    unmarked = tok.decode([i for t, i in enumerate(ids) if t not in marked])
    assert "Be brief." in unmarked and "What is 2+2?" in unmarked and "And 3+3?" in unmarked
    assert unmarked.count("<|im_start|>assistant\n") == 2


def test_tokenize_default_system_prompt_and_masked_turn(tok):
    msgs = chat("hi", "hello there", "bye", "see you")  # template inserts its system prompt
    ids, w = tokenize_sample(tok, SFTSample(msgs, [0.0, 2.0]), 2048)
    assert _weighted_text(tok, ids, w) == f"see you{END}"
    assert set(x for x in w if x) == {2.0}
    assert "SmolLM" in tok.decode(ids)


def test_tokenize_token_weights(tok):
    msgs = chat("q", "one two three")
    _, spans = assistant_spans(tok, msgs)
    n = len(spans[0])
    tw = [float(k + 1) for k in range(n)]
    ids, w = tokenize_sample(tok, SFTSample(msgs, [0.5], [tw]), 2048)
    assert [w[t] for t in spans[0]] == [0.5 * x for x in tw]
    assert sum(1 for x in w if x) == n
    with pytest.raises(RlpostError, match="token_weights"):
        tokenize_sample(tok, SFTSample(msgs, [1.0], [tw + [1.0]]), 2048)
    with pytest.raises(RlpostError, match="token_weights"):
        tokenize_sample(tok, SFTSample(msgs, [1.0], []), 2048)
    with pytest.raises(RlpostError, match="weights"):
        tokenize_sample(tok, SFTSample(msgs, [1.0, 1.0]), 2048)
    with pytest.raises(RlpostError, match=">= 0"):
        tokenize_sample(tok, SFTSample(msgs, [-1.0]), 2048)


def test_tokenize_truncates_right(tok):
    msgs = chat("q", "a long answer with several words in it")
    ids, w = tokenize_sample(tok, SFTSample(msgs, [1.0]), 4096)
    short_ids, short_w = tokenize_sample(tok, SFTSample(msgs, [1.0]), len(ids) - 5)
    assert short_ids == ids[: len(ids) - 5] and short_w == w[: len(ids) - 5]


# --- exact accumulation ------------------------------------------------------------------


def _grads(policy):
    return [p.grad.detach().clone() for p in policy.model.parameters()]


def test_micro_batching_is_exact(model_path):
    policy = Policy(model_path, autocast=None)  # fp32 throughout
    samples = [SFTSample(chat("Say hi.", "Hi!"), [1.0]),
               SFTSample(chat("Count to three.", "one two three", "Again?", "1 2 3"), [0.5, 2.0]),
               SFTSample(chat("Name a colour.", "Blue, like the sky."), [1.0])]
    batch = [tokenize_sample(policy.tokenizer, s, 2048) for s in samples]
    policy.model.zero_grad(set_to_none=True)
    loss_one, tok_one = _accumulate(policy, batch, micro_batch_tokens=100_000)
    g_one = _grads(policy)
    policy.model.zero_grad(set_to_none=True)
    loss_many, tok_many = _accumulate(policy, batch, micro_batch_tokens=1)  # one per forward
    g_many = _grads(policy)
    assert tok_one == tok_many == sum(1 for _, w in batch for x in w[1:] if x > 0)
    assert loss_many == pytest.approx(loss_one, rel=1e-5)
    num = sum(float((a - b).norm() ** 2) for a, b in zip(g_one, g_many)) ** 0.5
    den = sum(float(a.norm() ** 2) for a in g_one) ** 0.5
    assert num / den < 1e-4

    # the loss is sft_loss over every weighted target, from a plain full-logits forward
    lps, ws = [], []
    with torch.no_grad():
        for ids, w in batch:
            logits = policy.model(input_ids=torch.tensor([ids])).logits[0, :-1].float()
            lps.append(torch.log_softmax(logits, -1).gather(-1, torch.tensor(ids[1:])[:, None])[:, 0])
            ws.append(torch.tensor(w[1:]))
    assert float(sft_loss(torch.cat(lps), torch.cat(ws))) == pytest.approx(loss_one, rel=1e-4)


# --- training ----------------------------------------------------------------------------

TRAIN = [SFTSample(chat("Capital of France?", "Paris."), [1.0]),
         SFTSample(chat("Capital of Italy?", "Rome."), [1.0]),
         SFTSample(chat("Capital of Spain?", "Madrid."), [1.0]),
         SFTSample(chat("Capital of Japan?", "Tokyo."), [1.0])]
MASKED = SFTSample(chat("Capital of Peru?", "Lima."), [0.0])


def _reply_logprob(policy, msgs) -> float:
    ids, w = tokenize_sample(policy.tokenizer, SFTSample(msgs, [1.0]), 2048)
    with torch.no_grad():
        logits = policy.model(input_ids=torch.tensor([ids])).logits[0, :-1].float()
    lp = torch.log_softmax(logits, -1).gather(-1, torch.tensor(ids[1:])[:, None])[:, 0]
    return float((lp * torch.tensor(w[1:])).sum())


def test_train_sft_loss_falls_and_masked_sample_dropped(policy, tmp_path):
    from rlpost.track import Tracker, read_metrics

    before = {k: v.clone() for k, v in policy.named_tensors()}
    lp_before = _reply_logprob(policy, TRAIN[0].messages)
    cfg = SFTConfig(lr=1e-4, epochs=3, batch_size=2, warmup_steps=1, schedule="cosine")
    with Tracker(tmp_path, backends=("jsonl",)) as tracker:
        res = train_sft(policy, TRAIN + [MASKED], cfg, tracker=tracker, step_offset=10,
                        progress=False)
    assert res.dropped == 1 and res.steps == 6 and len(res.losses) == 6
    assert sum(res.losses[-2:]) < sum(res.losses[:2])
    per_epoch = sum(len(policy.tokenizer(s.messages[-1].content + END,
                                         add_special_tokens=False)["input_ids"]) for s in TRAIN)
    assert res.tokens == 3 * per_epoch
    assert not policy.model.training
    after = dict(policy.named_tensors())
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert _reply_logprob(policy, TRAIN[0].messages) > lp_before + 0.5
    rows = read_metrics(tmp_path)
    assert [r["step"] for r in rows] == list(range(11, 17))
    assert {"sft/loss", "sft/lr", "sft/grad_norm", "sft/tokens"} <= set(rows[0])
    assert rows[0]["sft/lr"] == pytest.approx(1e-4)  # warm-up of 1 step, then cosine
    assert rows[-1]["sft/lr"] < rows[1]["sft/lr"]


def test_train_sft_nothing_to_train(policy):
    res = train_sft(policy, [MASKED], SFTConfig(), progress=False)
    assert (res.steps, res.dropped, res.tokens) == (0, 1, 0)


def test_train_sft_lora_merges_back(policy):
    before = {k: v.clone() for k, v in policy.named_tensors()}
    flags = [p.requires_grad for p in policy.model.parameters()]
    cfg = SFTConfig(lr=1e-3, epochs=1, batch_size=2, lora=True, lora_r=4, lora_alpha=8,
                    lora_targets=("q_proj", "v_proj"))
    res = train_sft(policy, TRAIN, cfg, progress=False)
    assert res.steps == 2
    after = dict(policy.named_tensors())
    assert after.keys() == before.keys()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed and all("q_proj" in k or "v_proj" in k for k in changed)
    assert "peft" not in type(policy.model).__module__ and not hasattr(policy.model, "peft_config")
    assert [p.requires_grad for p in policy.model.parameters()] == flags  # GRPO can follow
    assert not policy.model.training


def test_lora_bad_targets(policy):
    with pytest.raises(RlpostError, match="LoRA"):
        train_sft(policy, TRAIN[:1], SFTConfig(lora=True, lora_targets=("nope",)), progress=False)
    assert "peft" not in type(policy.model).__module__
    assert all(p.requires_grad for p in policy.model.parameters())


def test_policy_lora_trains_only_adapters_and_merges_on_an_exception(tiny_policy):
    """Inside `Policy.lora` only the adapters are trainable; leaving the block (here by an
    exception) merges W + (alpha / r) B A into the plain model's weights."""
    from rlpost.policy import LoRAConfig

    policy = tiny_policy
    before = {k: v.clone() for k, v in policy.named_tensors()}
    with pytest.raises(KeyError), policy.lora(LoRAConfig(r=2, alpha=6, targets=("q_proj",))):
        names = [n for n, p in policy.model.named_parameters() if p.requires_grad]
        assert names and all("lora_" in n and "q_proj" in n for n in names)
        layer = policy.model.base_model.model.model.layers[0].self_attn.q_proj
        with torch.no_grad():
            layer.lora_B["default"].weight.fill_(0.5)  # B starts at 0: make the adapter count
        a = layer.lora_A["default"].weight.detach().clone()
        delta = (6 / 2) * layer.lora_B["default"].weight.detach() @ a
        raise KeyError("interrupted")
    after = dict(policy.named_tensors())
    assert after.keys() == before.keys()
    q = "model.layers.0.self_attn.q_proj.weight"
    assert torch.allclose(after[q], before[q] + delta, atol=1e-6)
    assert all(torch.equal(after[k], before[k]) for k in before if "q_proj" not in k)
    assert all(p.requires_grad for p in policy.model.parameters())


def test_policy_lora_blocks_do_not_nest(tiny_policy):
    from rlpost.policy import LoRAConfig

    with tiny_policy.lora(LoRAConfig(r=2, targets=("q_proj",))):
        with pytest.raises(RlpostError, match="^the policy already trains LoRA adapters"):
            with tiny_policy.lora(LoRAConfig(r=2, targets=("q_proj",))):
                pass
        assert hasattr(tiny_policy.model, "peft_config")  # the outer block is intact
    assert not hasattr(tiny_policy.model, "peft_config")
    with pytest.raises(RlpostError, match="^LoRA needs at least one target module$"):
        with tiny_policy.lora(LoRAConfig(targets=())):
            pass


# --- config ------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [dict(lr=0.0), dict(lr=-1.0), dict(batch_size=0), dict(epochs=0),
                                 dict(micro_batch_tokens=0), dict(max_len=1),
                                 dict(schedule="linear"), dict(lora_r=0), dict(lora_dropout=1.0),
                                 dict(lora_targets=()), dict(warmup_steps=-1),
                                 dict(grad_clip=-1.0)])
def test_validate_rejects(bad):
    key = next(iter(bad))
    with pytest.raises(RlpostError, match=key):
        SFTConfig(**bad).validate()
    SFTConfig().validate()


def test_truncation_is_counted_in_samples_and_lost_target_tokens(tiny_policy, capsys):
    """The bug case: an episode longer than max_len lost its last actions without a word."""
    long = SFTSample([Message("user", "List colours."),
                      Message("assistant", "red, green, blue, yellow, purple, orange, pink")], [1.0])
    short = SFTSample([Message("user", "Hi"), Message("assistant", "Hello")], [1.0])
    ids, w = tokenize_sample(tiny_policy.tokenizer, long, 10_000)
    n_target = sum(x > 0 for x in w)
    cut = len(ids) - 6  # cuts the reply's last tokens and its end-of-turn (the template's
    lost = sum(x > 0 for x in w[cut:])  # final newline is no target)
    assert lost == 5
    res = train_sft(tiny_policy, [long, short], SFTConfig(max_len=cut, epochs=1),
                    progress=False)
    assert (res.truncated, res.lost_target_tokens, res.dropped) == (1, 5, 0)
    assert res.tokens == n_target - 5 + sum(x > 0 for x in tokenize_sample(
        tiny_policy.tokenizer, short, 10_000)[1])
    assert f"1 of 2 samples exceed max_len {cut}; 5 target tokens cut off" in capsys.readouterr().err
    res = train_sft(tiny_policy, [long, short], SFTConfig(max_len=len(ids), epochs=1),
                    progress=False)
    assert (res.truncated, res.lost_target_tokens) == (0, 0)
