"""Mutation testing of the core modules with mutmut; writes docs/mutation.md and a JSON report.

    .venv/bin/python scripts/mutation.py                  # every module in MODULES
    .venv/bin/python scripts/mutation.py rlpost/reward.py # one module
    .venv/bin/python scripts/mutation.py --ref HEAD~3     # the code and tests of an older commit
    .venv/bin/python scripts/mutation.py --rerun          # after new tests: retry the survivors

mutmut (>= 3.8, the `dev` extra) copies the sources into ``mutants/``, rewrites every function so
that each of its one-line mutations can be switched on, records which tests call which function,
then runs, for each mutant, only the tests that reach it (in forked children of one pytest
process, so torch is imported once). A mutant is *killed* when a test fails.

mutmut derives a module's import name from its path, so it needs the package where Python finds
it; ours maps ``rlpost.envs`` to ``envs/`` (and recipes, reward_models likewise). This script
therefore stages a copy in the standard layout under ``build/mutation/<name>/`` (``envs/`` as
``rlpost/envs/`` ...), with the tests and ``pyproject.toml`` (whose ``[tool.mutmut]`` section is
the configuration: the fast tests only, ``-m "not slow"``), runs mutmut there, and reads the
results from mutmut's own files. Survivors that are equivalent mutants (no test can kill them:
the program behaves the same) are explained in ``tests/mutation_equivalents.toml``, keyed by
mutant name; the report lists every other survivor as unexplained, with its diff.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAPPED = {"envs": "rlpost/envs", "recipes": "rlpost/recipes",
          "reward_models": "rlpost/reward_models"}
"""pyproject's package-dir mapping: source folder -> where the staged copy puts it."""
MODULES = [
    "rlpost/algos/losses.py",  # clipped loss, KL, importance weights, aggregation, SFT loss
    "rlpost/algos/advantages.py",  # group advantages, GiGPO step advantages
    "rlpost/algos/grpo.py",  # the update and the loop
    "rlpost/algos/batch.py",  # trajectories -> rows, micro-batching, rollout metrics
    "rlpost/learn.py",  # the learner step: backward, clip, skip non-finite, schedule
    "rlpost/runner.py",  # env pool, chunked play, greedy evaluation
    "rlpost/adapter.py",  # ChatAdapter for third-party gymnasium envs
    "rlpost/checkpoint.py",  # save, resume, task sampler
    "rlpost/rollout.py",  # lockstep multi-turn rollouts and their guards
    "rlpost/reward.py",  # Rubric and rule rewards
    "rlpost/envs/webshop/search.py",  # BM25
    "rlpost/envs/webshop/goal.py",  # WebShop reward
    "rlpost/collect/eef.py",  # EEF labels, splice, failure exploration
]
"""The modules measured, as paths in the staged (standard) layout."""
STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped",
          36: "timeout", 24: "timeout", -24: "timeout", 152: "timeout", 255: "timeout",
          37: "type check", -11: "segfault", -9: "segfault", None: "not checked"}
"""mutmut's exit codes (mutmut/stats.py) -> status."""
ROOT_CONFTEST = '''"""Written by scripts/mutation.py: tests that start a vLLM engine are `slow`
(older commits of the tests did not mark them), so `-m "not slow"` leaves them out."""
import pytest


def pytest_collection_modifyitems(items):
    for item in items:
        if {"engine", "_engine"} & set(getattr(item, "fixturenames", ())) or \\
                item.name == "test_too_little_kv_cache_memory":
            item.add_marker(pytest.mark.slow)
'''


def staged_path(path: str) -> str:
    """A source path of the project -> its path in the staged layout."""
    top, _, rest = path.partition("/")
    return f"{MAPPED[top]}/{rest}" if top in MAPPED else path


def stage(dest: Path, ref: str | None, keep_results: bool = False) -> None:
    """Copy the project (the working tree, or the commit `ref`) into `dest` in standard layout;
    `keep_results` keeps mutmut's folder (its mutants, stats and results) from an earlier run."""
    if keep_results and dest.exists():
        for entry in dest.iterdir():
            if entry.name != "mutants":
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    else:
        shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True, exist_ok=True)
    if ref is None:
        files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                               check=True, capture_output=True, text=True).stdout.split()
        for f in files:
            src = ROOT / f
            if src.is_file():
                target = dest / staged_path(f)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, target)
    else:
        raw = dest.parent / f"{dest.name}.raw"
        shutil.rmtree(raw, ignore_errors=True)
        raw.mkdir()
        archive = subprocess.run(["git", "archive", ref], cwd=ROOT, check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(raw)], input=archive, check=True)
        for f in raw.rglob("*"):
            if f.is_file():
                target = dest / staged_path(str(f.relative_to(raw)))
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(f, target)
        shutil.rmtree(raw)
    # this tool's configuration always comes from the working tree, so old commits run the same way
    (dest / "conftest.py").write_text(ROOT_CONFTEST)
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    text = (dest / "pyproject.toml").read_text()
    if "[tool.mutmut]" not in text:
        lines = ["", "[tool.mutmut]"] + [f"{k} = {json.dumps(v)}" for k, v in config.items()]
        (dest / "pyproject.toml").write_text(text + "\n".join(lines) + "\n")


def configure(dest: Path, modules: list[str]) -> None:
    """Point mutmut at `modules` only (its only_mutate setting) in the staged pyproject."""
    text = (dest / "pyproject.toml").read_text()
    head, _, tail = text.partition("[tool.mutmut]")
    kept = [line for line in tail.splitlines() if not line.startswith("only_mutate")]
    kept.insert(1, f"only_mutate = {json.dumps(modules)}")
    (dest / "pyproject.toml").write_text(head + "[tool.mutmut]" + "\n".join(kept) + "\n")


def results(dest: Path, modules: list[str]) -> dict[str, dict[str, str]]:
    """{module: {mutant name: status}} from mutmut's .meta files, for the mutants that exist in
    the current mutated sources (a .meta file keeps the results of a function's older mutants)."""
    out = {}
    for m in modules:
        meta, mutated = dest / "mutants" / f"{m}.meta", dest / "mutants" / m
        codes = json.loads(meta.read_text())["exit_code_by_key"] if meta.exists() else {}
        source = mutated.read_text() if mutated.exists() else ""
        present = {k for k in codes if f"def {k.rpartition('.')[2]}(" in source}
        out[m] = {k: STATUS.get(v, "suspicious") for k, v in sorted(codes.items()) if k in present}
    return out


def show(dest: Path, module: str, name: str) -> str:
    """The mutant's diff (mutmut's own, computed in this process)."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    cwd = os.getcwd()
    os.chdir(dest)
    try:
        return get_diff_for_mutant(name, path=Path(module)).strip()
    finally:
        os.chdir(cwd)


def report(found: dict[str, dict[str, str]], dest: Path, label: str, minutes: float,
           equivalents: dict[str, str], diffs: bool = True) -> tuple[str, dict]:
    # the command that reproduces these results from scratch
    args = [a for a in sys.argv[1:] if a not in ("--rerun", "--report-only")]
    command = " ".join(["python scripts/mutation.py", *args])
    lines = [f"# Mutation testing: {label}", "",
             f"`{command}` (mutmut {_mutmut_version()}), the tests of {label} without the "
             f"vLLM ones (`-m \"not slow\"`), {minutes:.0f} min of 2-core CPU. A mutant is "
             "killed when a test fails; *equivalent* survivors behave exactly like the original "
             "(explained below, from `tests/mutation_equivalents.toml`).", "",
             "| module | mutants | killed | survived: equivalent | survived: unexplained "
             "| no tests | timeout | killed % | killed % of non-equivalent |",
             "|---|---|---|---|---|---|---|---|---|"]
    summary = {}
    for module, statuses in found.items():
        c = Counter(statuses.values())
        survivors = [k for k, s in statuses.items() if s == "survived"]
        equiv = [k for k in survivors if k in equivalents]
        total = len(statuses)
        killed = c["killed"] + c["timeout"]
        score = killed / total if total else 0.0
        adjusted = killed / (total - len(equiv)) if total - len(equiv) else 0.0
        summary[module] = {"mutants": total, "killed": c["killed"], "timeout": c["timeout"],
                           "survived": len(survivors), "equivalent": len(equiv),
                           "no_tests": c["no tests"], "killed_share": round(score, 4),
                           "killed_share_non_equivalent": round(adjusted, 4)}
        lines.append(f"| `{module}` | {total} | {c['killed']} | {len(equiv)} | "
                     f"{len(survivors) - len(equiv)} | {c['no tests']} | {c['timeout']} | "
                     f"{100 * score:.0f} | {100 * adjusted:.0f} |")
    for module, statuses in found.items():
        survivors = [k for k, s in statuses.items() if s in ("survived", "no tests")]
        if not survivors or not diffs:
            continue
        lines += ["", f"## `{module}`: survivors", ""]
        for name in survivors:
            why = equivalents.get(name)
            tag = "equivalent" if why else ("no test reaches it" if statuses[name] == "no tests"
                                            else "UNEXPLAINED")
            lines += [f"### `{name}` ({tag})", ""]
            if why:
                lines += [why.strip(), ""]
            lines += ["```diff", show(dest, module, name), "```", ""]
    return "\n".join(lines) + "\n", summary


def _mutmut_version() -> str:
    from importlib.metadata import version

    return version("mutmut")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("modules", nargs="*", help="staged paths (default: MODULES)")
    ap.add_argument("--ref", help="git ref to test instead of the working tree")
    ap.add_argument("--name", help="staging folder and report name (default: ref or 'worktree')")
    ap.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--report", default="docs/mutation.md", help="markdown report ('' = none)")
    ap.add_argument("--rerun", action="store_true",
                    help="restage the code and tests, keep mutmut's results, and test again only "
                         "the mutants that were not killed")
    ap.add_argument("--report-only", action="store_true", help="only rewrite the report")
    ap.add_argument("--no-diffs", action="store_true", help="the table only, no survivor diffs")
    args = ap.parse_args(argv)
    modules = [staged_path(m) for m in (args.modules or MODULES)]
    name = args.name or (args.ref.replace("/", "_").replace("~", "-") if args.ref else "worktree")
    dest = ROOT / "build" / "mutation" / name
    if not args.report_only:
        stage(dest, args.ref, keep_results=args.rerun)
    t0 = time.time()
    if not args.report_only:
        run_mutmut(dest, modules, args.max_children, [])  # new and changed functions' mutants
        if args.rerun:  # then every mutant the earlier tests left alive
            again = [k for m in results(dest, modules).values() for k, v in m.items()
                     if v not in ("killed", "timeout")]
            if again:
                run_mutmut(dest, modules, args.max_children, again)
        spent = dest / "mutants" / "rlpost-minutes.txt"  # summed over reruns
        before = float(spent.read_text()) if spent.exists() else 0.0
        spent.write_text(f"{before + (time.time() - t0) / 60:.1f}")
    minutes = float((dest / "mutants" / "rlpost-minutes.txt").read_text())
    found = results(dest, modules)
    equivalents = tomllib.loads((ROOT / "tests" / "mutation_equivalents.toml").read_text())
    label = f"`{args.ref}`" if args.ref else "the working tree"
    text, summary = report(found, dest, label, minutes, equivalents.get("equivalent", {}),
                           diffs=not args.no_diffs)
    out = {"label": label, "minutes": round(minutes, 1), "modules": summary,
           "statuses": found}
    json_path = ROOT / "build" / "mutation" / f"{name}.json"
    json_path.write_text(json.dumps(out, indent=1))
    if args.report:
        (ROOT / args.report).parent.mkdir(parents=True, exist_ok=True)
        (ROOT / args.report).write_text(text)
    width = max(len(m) for m in summary)
    for m, s in summary.items():
        print(f"{m:<{width}}  {s['killed'] + s['timeout']:>4}/{s['mutants']:<4} killed "
              f"({100 * s['killed_share']:.0f}%), {s['survived']} survived "
              f"({s['equivalent']} equivalent), {s['no_tests']} without tests")
    print(f"results: {json_path}" + (f", report: {args.report}" if args.report else ""))
    return 0


def run_mutmut(dest: Path, modules: list[str], max_children: int, names: list[str]) -> None:
    configure(dest, modules)
    new = [m for m in modules if not (dest / "mutants" / f"{m}.meta").exists()]
    for m in new:  # copied unmutated by an earlier run on other modules: mutate it now, and
        (dest / "mutants" / m).unlink(missing_ok=True)  # find again which tests reach what
    if new:
        (dest / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)
    env = dict(os.environ, WANDB_MODE="disabled", VLLM_ENABLE_V1_MULTIPROCESSING="0",
               TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1")
    log = dest / "mutmut.log"
    print(f"rlpost: mutmut on {len(modules)} module(s) in {dest} (progress: {log})", flush=True)
    with log.open("a") as f:
        subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children",
                        str(max_children), *names], cwd=dest, env=env, check=False, stdout=f,
                       stderr=subprocess.STDOUT)


if __name__ == "__main__":
    sys.exit(main())
