"""Zero-shot baselines of the bundled model on the classification env, per prompt variant.

Greedy and T=1 accuracy and format rate on the held-out topic tasks, with and without the
in-context demonstrations (`ClassificationConfig.demos`), for both CLS-RL prompt styles. This is
why the quick configs use two demonstrations: without them there is no reward to learn from.

    python benchmarks/zero_shot_cls.py [--quick] [--out FILE]
"""

from __future__ import annotations

import argparse
import os
import sys

from _common import print_table, write_result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="40 tasks instead of 120")
    ap.add_argument("--out", default="benchmarks/results/zero_shot_cls.json")
    args = ap.parse_args()
    os.environ.setdefault("WANDB_MODE", "disabled")

    from rlpost.algos.batch import step_metrics
    from rlpost.env import env_tasks, make
    from rlpost.envs.classification import ClassificationConfig
    from rlpost.generate import GenParams
    from rlpost.generate.vllm import VLLMConfig, VLLMGenerator
    from rlpost.policy import DEFAULT_MODEL, Policy, resolve_model
    from rlpost.reward import Rubric, think_answer_format
    from rlpost.rollout import rollout

    policy = Policy(resolve_model(DEFAULT_MODEL))
    engine = VLLMGenerator(policy.path, VLLMConfig(max_model_len=1024))
    n = 40 if args.quick else 120
    summary, rows = {}, []
    for style in ("think", "answer"):
        for demos in (0, 2):
            cfg = ClassificationConfig(dataset="topics", prompt_style=style, n_test=120, demos=demos)
            envs = [make("rlpost/Classification-v0", cfg) for _ in range(n)]
            tasks = env_tasks(envs[0], "test")[:n]
            rubric = Rubric([think_answer_format], [1.0])
            for temp in (0.0, 1.0):
                trajs = rollout(envs, tasks, 1, engine, policy.encode_chat,
                                GenParams(temperature=temp, max_tokens=48))
                rubric(trajs)
                m = step_metrics(trajs, prefix="eval")
                key = f"{style}_demos{demos}_T{temp:g}"
                summary[f"{key}_acc"] = m["eval/success"]
                summary[f"{key}_format"] = m["eval/think_answer_format"]
                rows.append((f"{style:6s} demos={demos} T={temp:g}: accuracy / format",
                             f"{m['eval/success']:.3f} / {m['eval/think_answer_format']:.3f}"))
    print_table(f"bundled model, zero-shot on {n} held-out topic tasks (6 classes)", rows)
    write_result(args.out, "zero_shot_cls", summary, {"tasks": n})


if __name__ == "__main__":
    sys.exit(main())
