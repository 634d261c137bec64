"""Does CLS-RL learn on CPU? Held-out accuracy after training vs zero-shot, over seeds.

Runs the recipe's quick config (the README's main job) once per seed on one shared vLLM engine
(reset to the bundled model's weights before each seed). Zero-shot accuracy is the step-0
greedy eval of the untrained model on the same held-out tasks; trained accuracy is the greedy
eval after the last step. Run directories (metrics, curves, checkpoints) go to
runs/bench-learning_cls/.

    python benchmarks/learning_cls.py [--quick] [--out FILE] [--recipe cls-rl|no-think-cls-rl]
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import statistics
import sys
from pathlib import Path

from _common import print_table, read_metrics, write_result


def run_seed(module, seed: int, steps: int | None, engine, weights, root: Path) -> dict[str, float]:
    cfg = module.quick()
    cfg.run.seed, cfg.run.track = seed, ("jsonl",)
    cfg.run.dir = str(root / f"seed{seed}")
    if steps is not None:
        cfg.algo.steps = steps
        cfg.algo.eval_every = steps
    shutil.rmtree(cfg.run.dir, ignore_errors=True)
    engine.load_weights(weights.items())
    module.main(cfg, generator=engine)
    rows = read_metrics(cfg.run.dir)
    evals = [r for r in rows if r.get("eval/success") is not None]
    first, last = evals[0], evals[-1]
    return {"seed": seed, "zero_shot_acc": first["eval/success"], "trained_acc": last["eval/success"],
            "zero_shot_format": first.get("eval/think_answer_format"),
            "trained_format": last.get("eval/think_answer_format"),
            "steps": last["step"], "minutes": (rows[-1]["time"] - rows[0]["time"]) / 60}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="one seed, 10 steps")
    ap.add_argument("--out", default=None)
    ap.add_argument("--recipe", default="cls-rl", choices=["cls-rl", "no-think-cls-rl"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = ap.parse_args()
    os.environ.setdefault("WANDB_MODE", "disabled")
    name = "learning_cls" if args.recipe == "cls-rl" else "learning_no_think_cls"
    out = args.out or f"benchmarks/results/{name}.json"
    seeds, steps = ([0], 10) if args.quick else (args.seeds, None)

    from safetensors.torch import load_file

    from rlpost.generate.vllm import VLLMConfig, VLLMGenerator
    from rlpost.policy import DEFAULT_MODEL, resolve_model
    from rlpost.recipes import RECIPES

    module = importlib.import_module(RECIPES[args.recipe])
    path = resolve_model(DEFAULT_MODEL)
    weights = load_file(os.path.join(path, "model.safetensors"))
    engine = VLLMGenerator(path, VLLMConfig(max_model_len=module.quick().run.vllm.max_model_len))
    root = Path("runs") / f"bench-{name}"
    per_seed = [run_seed(module, s, steps, engine, weights, root) for s in seeds]

    zero = statistics.mean(r["zero_shot_acc"] for r in per_seed)
    trained = [r["trained_acc"] for r in per_seed]
    summary = {"zero_shot_acc": zero, "trained_acc": statistics.mean(trained),
               "seed_spread": max(trained) - min(trained),
               "gain": statistics.mean(trained) - zero}
    summary["gain_exceeds_spread"] = float(summary["gain"] > summary["seed_spread"])
    rows = []
    for r in per_seed:
        fmt = ("n/a" if r["zero_shot_format"] is None
               else f"{r['zero_shot_format']:.2f} -> {r['trained_format']:.2f}")
        rows += [(f"seed {r['seed']}: zero-shot acc", r["zero_shot_acc"]),
                 (f"seed {r['seed']}: trained acc", r["trained_acc"]),
                 (f"seed {r['seed']}: format rate zero-shot -> trained", fmt),
                 (f"seed {r['seed']}: minutes", r["minutes"])]
    rows += [(k, v) for k, v in summary.items()]
    print_table(f"{args.recipe}: held-out accuracy, zero-shot vs trained (quick config)", rows)
    write_result(out, name, summary, {"recipe": args.recipe, "per_seed": per_seed,
                                      "quick": args.quick})


if __name__ == "__main__":
    sys.exit(main())
