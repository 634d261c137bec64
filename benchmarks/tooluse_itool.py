"""Does iTool improve tool use on CPU? Held-out BFCL AST accuracy of the bundled model
zero-shot, after the easy-to-hard warm-up SFT, and after one and two iTool iterations (MCTS
fragment pairs + SimPO), per category, over seeds.

Runs the `itool` recipe's quick config once per seed on one shared vLLM engine (reset to the
bundled model's weights before each seed). Reports the MCTS statistics of each iteration:
pairs collected, mean value gap (chosen - rejected), share of pairs whose shared prefix ends in
"=" (they differ in an argument value), seconds per pair. Run directories go to
runs/bench-tooluse_itool/.

    python benchmarks/tooluse_itool.py [--quick] [--out FILE] [--seeds 0 1 2] [--reuse]

--reuse takes a seed's results from its finished run directory (results.json, written at the end
of a run) instead of running it again: a benchmark stopped between seeds continues there.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
from pathlib import Path

from _common import print_table, write_result

STAGES = ("zero_shot", "sft", "itool_1", "itool_2")


def run_seed(seed: int, quick: bool, engine, weights, root: Path,
             reuse: bool = False) -> dict[str, float]:
    import json

    from rlpost.recipes import itool

    cfg = itool.quick()
    cfg.run.seed, cfg.run.track = seed, ("jsonl",)
    cfg.sft.seed = cfg.pref.seed = seed
    cfg.run.dir = str(root / f"seed{seed}")
    if quick:
        cfg.iterations, cfg.train_tasks, cfg.eval_tasks = 1, 120, 20
    done = Path(cfg.run.dir) / "results.json"
    if reuse and done.exists():
        print(f"seed {seed}: reusing {done}")
        return {"seed": seed, **json.loads(done.read_text())}
    shutil.rmtree(cfg.run.dir, ignore_errors=True)
    engine.load_weights(weights.items())
    results = itool.main(cfg, generator=engine)
    return {"seed": seed, **results}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="one seed, one iteration, fewer tasks")
    ap.add_argument("--out", default=None)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--reuse", action="store_true", help="take finished seeds' results.json")
    args = ap.parse_args()
    os.environ.setdefault("WANDB_MODE", "disabled")
    out = args.out or f"benchmarks/results/tooluse_itool{'_quick' if args.quick else ''}.json"
    seeds = [0] if args.quick else args.seeds

    from safetensors.torch import load_file

    from rlpost.generate.vllm import VLLMConfig, VLLMGenerator
    from rlpost.policy import DEFAULT_MODEL, resolve_model
    from rlpost.recipes import itool

    path = resolve_model(DEFAULT_MODEL)
    weights = load_file(os.path.join(path, "model.safetensors"))
    engine = VLLMGenerator(path, VLLMConfig(max_model_len=itool.quick().run.vllm.max_model_len))
    root = Path("runs") / "bench-tooluse_itool"
    per_seed = [run_seed(s, args.quick, engine, weights, root, args.reuse) for s in seeds]

    def mean(key: str) -> float | None:
        vals = [r[key] for r in per_seed if key in r]
        return statistics.mean(vals) if vals else None

    last = max((s for s in STAGES if f"{s}/ast_acc" in per_seed[0]), key=STAGES.index)
    finals = [r[f"{last}/ast_acc"] for r in per_seed]
    summary = {"zero_shot_ast_acc": mean("zero_shot/ast_acc"), "sft_ast_acc": mean("sft/ast_acc"),
               "itool_iter1_ast_acc": mean("itool_1/ast_acc"),
               "itool_iter2_ast_acc": mean("itool_2/ast_acc"),
               "seed_spread": max(finals) - min(finals),
               "sft_seed_spread": (max(r["sft/ast_acc"] for r in per_seed)
                                   - min(r["sft/ast_acc"] for r in per_seed))}
    for it in (1, 2):
        for k in ("pairs", "value_gap", "value_pairs", "seconds_per_pair"):
            v = mean(f"iter/{k}_{it}")
            if v is not None:
                summary[f"iter{it}_{k}"] = v
    summary = {k: v for k, v in summary.items() if v is not None}
    rows = []
    cats = sorted({k.split("/acc/")[1] for k in per_seed[0] if "/acc/" in k})
    for r in per_seed:
        for s in STAGES:
            if f"{s}/ast_acc" in r:
                rows.append((f"seed {r['seed']}: {s} AST acc", r[f"{s}/ast_acc"]))
                rows += [(f"seed {r['seed']}: {s} {c}", r[f"{s}/acc/{c}"]) for c in cats
                         if f"{s}/acc/{c}" in r]
    rows += list(summary.items())
    print_table("itool: held-out BFCL AST accuracy (quick config, bundled 135M model)", rows)
    write_result(out, "tooluse_itool", summary, {"per_seed": per_seed, "quick": args.quick})


if __name__ == "__main__":
    sys.exit(main())
