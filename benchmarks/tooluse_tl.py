"""Does TL-Training improve tool use on CPU? Held-out BFCL AST accuracy and the paper's three
figures (tool selection TS, parameter identification PI, content filling CF) of the bundled
model zero-shot, after plain SFT on the dialogues (every assistant turn imitated, failing
calls too), after MAE + PKT SFT, and after PPO with the IRM reward, per category, over seeds.

Per seed, two runs of the `tl-training` recipe's quick config, each in its own process (one
process running them all grew past 18 GB RSS: memory is not returned between runs):
``sft_mode=plain, rl=false`` (the baseline) and ``sft_mode=pkt, rl=true`` (the paper's
pipeline). Both see the same dialogues (the data seed is the run seed). Run directories go to
runs/bench-tooluse_tl/; each run's peak RSS is recorded.

    python benchmarks/tooluse_tl.py [--quick] [--out FILE] [--seeds 0 1 2] [--reuse]

--reuse takes a run's results from its finished run directory (results.json with the final
stage) instead of running it again.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import sys
from pathlib import Path

from _common import print_table, write_result

FIGURES = ("ast_acc", "ts", "pi", "cf", "irm")


def _config(seed: int, variant: str, quick: bool, root: Path):
    from rlpost.recipes import tl_training

    cfg = tl_training.quick()
    cfg.run.seed, cfg.run.track = seed, ("jsonl",)
    cfg.sft.seed = seed
    cfg.sft_mode, cfg.rl = ("plain", False) if variant == "plain" else ("pkt", True)
    cfg.run.dir = str(root / f"seed{seed}-{variant}")
    if quick:
        cfg.train_tasks, cfg.eval_tasks = 80, 10
        cfg.algo.steps = 4
    return cfg


def worker(seed: int, variant: str, quick: bool, root: Path) -> None:
    """One run in this process; writes results.json (the recipe's) and rss.json."""
    from rlpost.recipes import tl_training

    cfg = _config(seed, variant, quick, root)
    shutil.rmtree(cfg.run.dir, ignore_errors=True)
    tl_training.main(cfg)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    (Path(cfg.run.dir) / "rss.json").write_text(json.dumps({"peak_rss_gb": peak}))


def run_one(seed: int, variant: str, quick: bool, root: Path, reuse: bool) -> dict[str, float]:
    """The results of one run: from its finished run directory with `reuse`, else from a fresh
    process running `worker`."""
    import subprocess

    cfg = _config(seed, variant, quick, root)
    last = "ppo" if cfg.rl else "sft"
    done = Path(cfg.run.dir) / "results.json"
    if not (reuse and done.exists() and f"{last}/ast_acc" in json.loads(done.read_text())):
        cmd = [sys.executable, __file__, "--worker", str(seed), variant, str(root)]
        subprocess.run(cmd + (["--quick"] if quick else []), check=True)
    else:
        print(f"seed {seed} {variant}: reusing {done}")
    out = json.loads(done.read_text())
    rss = Path(cfg.run.dir) / "rss.json"
    if rss.exists():
        out["peak_rss_gb"] = json.loads(rss.read_text())["peak_rss_gb"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="one seed, fewer tasks and PPO steps")
    ap.add_argument("--out", default=None)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--reuse", action="store_true", help="take finished runs' results.json")
    ap.add_argument("--worker", nargs=3, metavar=("SEED", "VARIANT", "ROOT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ.setdefault("WANDB_MODE", "disabled")
    if args.worker:
        worker(int(args.worker[0]), args.worker[1], args.quick, Path(args.worker[2]))
        return
    out = args.out or f"benchmarks/results/tooluse_tl{'_quick' if args.quick else ''}.json"
    seeds = [0] if args.quick else args.seeds

    root = Path("runs") / "bench-tooluse_tl"
    per_seed = []
    for s in seeds:
        plain = run_one(s, "plain", args.quick, root, args.reuse)
        tl = run_one(s, "tl", args.quick, root, args.reuse)
        row = {"seed": s}
        row |= {f"zero_shot/{k}": v for k, v in plain.items() if k.startswith("zero_shot/")}
        row |= {k: v for k, v in plain.items() if k.startswith("sft/")}
        row |= {k.replace("sft/", "pkt/", 1): v for k, v in tl.items() if k.startswith("sft/")}
        row |= {k: v for k, v in tl.items() if k.startswith("ppo/")}
        row |= {f"plain_{k}": v for k, v in plain.items() if k.startswith("data/")}
        row |= {f"pkt_{k}": v for k, v in tl.items() if k.startswith("data/")}
        row |= {f"{v}_peak_rss_gb": r["peak_rss_gb"] for v, r in (("plain", plain), ("tl", tl))
                if "peak_rss_gb" in r}
        per_seed.append(row)

    def mean(key: str) -> float | None:
        vals = [r[key] for r in per_seed if key in r]
        return statistics.mean(vals) if vals else None

    def spread(key: str) -> float | None:
        vals = [r[key] for r in per_seed if key in r]
        return max(vals) - min(vals) if vals else None

    summary = {"zero_shot_ast_acc": mean("zero_shot/ast_acc"), "sft_ast_acc": mean("sft/ast_acc"),
               "pkt_ast_acc": mean("pkt/ast_acc"), "ppo_ast_acc": mean("ppo/ast_acc"),
               "seed_spread": spread("ppo/ast_acc"), "sft_seed_spread": spread("sft/ast_acc"),
               "pkt_seed_spread": spread("pkt/ast_acc")}
    for stage in ("zero_shot", "sft", "pkt", "ppo"):
        for fig in ("ts", "pi", "cf", "irm"):
            summary[f"{stage}_{fig}"] = mean(f"{stage}/{fig}")
    rss = [r[k] for r in per_seed for k in ("plain_peak_rss_gb", "tl_peak_rss_gb") if k in r]
    if rss:
        summary["peak_rss_gb"] = max(rss)
    summary = {k: v for k, v in summary.items() if v is not None}
    rows = []
    cats = sorted({k.split("/acc/")[1] for k in per_seed[0] if "/acc/" in k})
    for r in per_seed:
        for stage in ("zero_shot", "sft", "pkt", "ppo"):
            if f"{stage}/ast_acc" in r:
                rows += [(f"seed {r['seed']}: {stage} {f}", r[f"{stage}/{f}"]) for f in FIGURES]
                rows += [(f"seed {r['seed']}: {stage} acc {c}", r[f"{stage}/acc/{c}"])
                         for c in cats if f"{stage}/acc/{c}" in r]
    rows += list(summary.items())
    print_table("tl-training: held-out BFCL AST accuracy, TS/PI/CF (quick, bundled 135M)", rows)
    write_result(out, "tooluse_tl", summary, {"per_seed": per_seed, "quick": args.quick})


if __name__ == "__main__":
    sys.exit(main())
