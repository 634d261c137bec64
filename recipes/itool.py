"""iTool: tool use by easy-to-hard SFT, then MCTS preference pairs and SimPO/DPO, iterated.

iTool: Zeng et al., "Boosting Tool Use of LLMs via Iterative Reinforced Fine-Tuning", arXiv
2501.09766 (EMNLP'25); reference code zeng-yirong/iTool (``mcts/main.py``, ``mcts/mcts_vllm.py``,
``scripts/cal_ppl.py``, ``mcts/run_mcts_dpo.sh``).

Pipeline on `rlpost/ToolUse-v0` (BFCL v4 data, AST-match reward):

1. **Warm-up SFT, easy to hard**: the training split's ground-truth answers (each parameter's
   first listed value, optional ones left out when "" is allowed; irrelevance tasks answer with
   `NO_CALL_ANSWER`) ordered by difficulty (calls, then arguments) and trained in
   `curriculum_stages` stages, easiest first (the paper orders the data easy -> hard; the
   stage split is ours).
2. Each iteration: **deficient samples** = the `deficient_ratio` (0.3) of the answers with a
   call with the highest perplexity of the ground truth under the current policy, plus the same
   share of the no-call answers (``cal_ppl.py`` and ``main.py``'s selection);
   **MCTS** over their responses (`rlpost.collect.mcts`, rollout reward +1/-1 from the AST
   match); **preference optimisation** on the fragment-level pairs (SimPO by default, as the
   authors' script; DPO/IPO by `pref.loss`), then the generator's weights are re-synced.
3. Greedy AST accuracy on the held-out entries of `eval_categories` after each stage, per
   category (``eval/acc/<category>``) and overall (``eval/ast_acc``).

Prompts longer than `max_prompt_tokens` (BFCL's long function lists) are left out of training
and evaluation; how many is printed and written to results.json.

Run:  rlpost recipe run itool              (quick CPU config, bundled 135M model)
      rlpost recipe run itool --preset paper

Results (``benchmarks/tooluse_itool.py``, quick config, bundled 135M model, seeds 0 and 1; 120
held-out entries): greedy AST accuracy zero-shot 0.250 (a model that never calls: irrelevance
only), warm-up SFT 0.121 (seed spread 0.058), iteration 1 0.138, iteration 2 0.188 (spread
0.042). The iterations beat the warm-up by more than the spread, but the gain is irrelevance
recovering (0.13/0.43 -> 0.67/0.53); on simple, multiple and parallel they do not improve, and
the paper's effect is not reproduced at this scale. 32-39 pairs per iteration, 10-16% of them
differing only in an argument value. Peak RSS of a seed is about 18 GB (over the 12 GB
quick-preset budget; not yet found why).
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import torch

from rlpost.algos.dpo import DPOConfig, train_dpo
from rlpost.algos.sft import SFTConfig, SFTSample, train_sft
from rlpost.collect.mcts import MCTSConfig, SearchTask, search
from rlpost.env import chat, env_tasks
from rlpost.envs.tooluse.ast_check import expects_no_call
from rlpost.envs.tooluse.env import ToolUseConfig, grade
from rlpost.envs.tooluse.reference import reference_answer, reference_calls
from rlpost.errors import RlpostError
from rlpost.generate import Generator, GenParams
from rlpost.policy import Policy, rows_logprobs
from rlpost.run import RunConfig, start_run
from rlpost.runner import Runner
from rlpost.seeds import derive_seed
from rlpost.track import Tracker
from rlpost.types import Message

NAME = "itool"
ENV_ID = "rlpost/ToolUse-v0"
RESUMABLE = False
"""No checkpoint between stages yet: a run that stops starts over."""
EVAL_CATEGORIES = ("simple_python", "multiple", "parallel", "irrelevance")
TRAIN_SAMPLE_SEED = 0
"""Fixes which training tasks `train_tasks` keeps (the same for every run seed)."""


@dataclass
class Config:
    """Warm-up SFT, then `iterations` rounds of deficient-sample MCTS and preference training."""

    run: RunConfig = field(default_factory=RunConfig)
    env: ToolUseConfig = field(default_factory=lambda: ToolUseConfig(
        categories=["simple_python", "multiple", "parallel", "parallel_multiple",
                    "irrelevance"]))
    eval_categories: list[str] = field(default_factory=lambda: list(EVAL_CATEGORIES))
    """Held-out categories of the AST-accuracy eval (each must be in env.categories)."""
    sft: SFTConfig = field(default_factory=lambda: SFTConfig(lr=1e-4, epochs=1, batch_size=8))
    """The warm-up; `epochs` per curriculum stage."""
    curriculum_stages: int = 3
    """Easy-to-hard stages of the warm-up (1 = all data at once, shuffled)."""
    iterations: int = 2
    """iTool iterations after the warm-up (each: deficient samples, MCTS, preference
    training); not the search's own `mcts.iterations`."""
    deficient_ratio: float = 0.3
    """Share of the training answers (with a call; and, separately, without) picked by
    perplexity each iteration."""
    mcts: MCTSConfig = field(default_factory=MCTSConfig)
    rollout_reward: Literal["ast", "self_eval"] = "ast"
    """MCTS rollout reward: +1/-1 by BFCL's AST match against the ground truth, or the paper's
    self-evaluation (the policy grades its answer against the ground truth, `self_eval_reward`;
    one forward per rollout on the trainer)."""
    pref: DPOConfig = field(default_factory=DPOConfig)
    """Preference optimisation of each iteration (SimPO by default)."""
    max_tokens: int = 128
    """New tokens of an eval answer."""
    max_prompt_tokens: int = 1536
    """Tasks with longer prompts are left out (they would not fit the engine's context)."""
    train_tasks: int = 0
    """Training tasks drawn (a fixed sample over the categories; 0 = all), before those whose
    prompts do not fit are left out."""
    eval_tasks: int = 0
    """Held-out tasks per eval category (0 = all that fit)."""
    n_envs: int = 64
    """Env instances the evaluation runs over at once."""

    def validate(self) -> None:
        self.run.validate()
        self.env.validate()
        self.sft.validate()
        self.mcts.validate()
        self.pref.validate()
        missing = sorted(set(self.eval_categories) - set(self.env.categories))
        checks = [(not missing, f"eval_categories not in env.categories: {', '.join(missing)}"),
                  (self.curriculum_stages >= 1, "curriculum_stages must be >= 1"),
                  (self.rollout_reward in ("ast", "self_eval"),
                   "rollout_reward must be 'ast' or 'self_eval'"),
                  (self.iterations >= 0, "iterations must be >= 0"),
                  (0 < self.deficient_ratio <= 1, "deficient_ratio must be in (0, 1]"),
                  (self.max_tokens >= 1, "max_tokens must be >= 1"),
                  (1 <= self.max_prompt_tokens
                   <= self.run.vllm.max_model_len - max(self.max_tokens, self.mcts.max_tokens),
                   "max_prompt_tokens must be in [1, run.vllm.max_model_len - max_tokens]"),
                  (self.train_tasks >= 0 and self.eval_tasks >= 0,
                   "train_tasks and eval_tasks must be >= 0 (0 = all)"),
                  (self.n_envs >= 1, "n_envs must be >= 1")]
        for ok, msg in checks:
            if not ok:
                raise RlpostError(f"itool: {msg}")


def quick() -> Config:
    """CPU config on the bundled 135M model (numbers: benchmarks/tooluse_itool.py)."""
    cfg = Config(train_tasks=300, eval_tasks=30, max_prompt_tokens=1024)
    cfg.run.vllm.max_model_len = 1536
    cfg.sft = SFTConfig(lr=1e-4, epochs=1, batch_size=8, max_len=1536)
    cfg.mcts = MCTSConfig(iterations=3, num_actions=3, max_depth=3)
    cfg.pref = DPOConfig(loss="simpo", lr=1e-5, epochs=2, batch_size=8)
    return cfg


def smoke() -> Config:
    """A few tasks and a tiny search: for tests."""
    cfg = Config(train_tasks=12, eval_tasks=2, iterations=1, n_envs=8, max_tokens=48,
                 curriculum_stages=2, max_prompt_tokens=900)
    cfg.run.vllm.max_model_len = 1024
    cfg.run.track = ("jsonl",)
    cfg.sft = SFTConfig(lr=1e-4, epochs=1, batch_size=4, max_len=1024)
    cfg.mcts = MCTSConfig(iterations=2, num_actions=2, max_tokens=16, rollout_max_tokens=48)
    cfg.pref = DPOConfig(loss="simpo", lr=1e-5, epochs=1, batch_size=4)
    return cfg


def paper() -> Config:
    """The authors' settings (``run_mcts_dpo.sh``, ``dpo_train.py``): an 8B instruct model,
    SimPO beta 2.5 gamma 0.5 lr 1e-6 with LoRA r 8, 2 epochs, the reference MCTS; GPU."""
    cfg = Config(iterations=3)
    cfg.run.model = "meta-llama/Llama-3.1-8B-Instruct"
    cfg.run.vllm.max_model_len = 8192
    cfg.run.vllm.kv_cache_gb = 0.0
    cfg.run.vllm.gpu_memory_utilization = 0.4
    cfg.env = replace(cfg.env, categories=cfg.env.categories + [
        "live_simple", "live_multiple", "live_parallel", "live_parallel_multiple",
        "live_irrelevance"])
    cfg.max_prompt_tokens = 6000
    cfg.max_tokens = 512
    cfg.sft = SFTConfig(lr=1e-4, epochs=1, batch_size=32, lora=True, max_len=8192)
    cfg.pref = DPOConfig(loss="simpo", beta=2.5, gamma=0.5, lr=1e-6, epochs=2, batch_size=8,
                         lora=True, lora_r=8)
    return cfg


PRESETS = {"quick": quick, "smoke": smoke, "paper": paper}


def validate(cfg: Config) -> None:
    cfg.validate()


# --- data ----------------------------------------------------------------------------------


def difficulty(task: dict[str, Any]) -> tuple[int, int]:
    """(calls, arguments) of the reference answer: the easy-to-hard order."""
    if expects_no_call(task["category"]):
        return (0, 0)
    calls = reference_calls(task["ground_truth"])
    return (len(calls), sum(len(c.arguments) for c in calls))


def curriculum(items: list[Any], keys: list[tuple[int, int]], stages: int) -> list[list[Any]]:
    """`items` sorted by `keys` (stable) and cut into `stages` consecutive stages of near-equal
    size, easiest first."""
    order = sorted(range(len(items)), key=lambda i: keys[i])
    size = math.ceil(len(order) / stages) if order else 0
    return [[items[i] for i in order[s * size:(s + 1) * size]] for s in range(stages)
            if order[s * size:(s + 1) * size]]


def pick_deficient(perplexities: list[float], has_call: list[bool], ratio: float) -> list[int]:
    """Indices of the int(ratio * n) highest-perplexity answers among the n with a call, plus
    the same share among those without, each group in descending perplexity (iTool
    ``utils.py:active_select``, which rounds down too)."""
    out = []
    for group in (True, False):
        idx = [i for i, h in enumerate(has_call) if h == group]
        idx.sort(key=lambda i: -perplexities[i])
        out += idx[:int(ratio * len(idx))]
    return out


@torch.no_grad()
def answer_perplexities(policy: Policy, prompts: list[list[int]], answers: list[list[int]],
                        batch: int = 8) -> list[float]:
    """exp(mean negative log-prob) of each answer's tokens after its prompt under the policy
    (``scripts/cal_ppl.py``): one value per (prompt, answer)."""
    out = []
    pad = policy.tokenizer.pad_token_id or 0
    for b in range(0, len(prompts), batch):
        rows = list(zip(prompts[b:b + batch], answers[b:b + batch]))
        with policy.autocast_ctx():
            lp, mask = rows_logprobs(policy.model, rows, pad, policy.device)
        n = mask.sum(-1).clamp(min=1)
        out += torch.exp(-(lp.float() * mask).sum(-1) / n).tolist()
    return out


@dataclass
class Task:
    """A training or eval task with what every stage needs."""

    task_id: int
    record: dict[str, Any]
    messages: list[Message]
    prompt_ids: list[int]
    answer: str


def prompt_tasks(env: Any, encode: Any, ids: list[int], max_prompt_tokens: int,
                 underscore_names: bool = False) -> tuple[list[Task], int]:
    """The ToolUse-v0 tasks of `ids` (reset in `env`) whose prompts (`encode` of the env's chat)
    fit `max_prompt_tokens`, with their reference answers; and how many did not fit."""
    out, long = [], 0
    for t in ids:
        _, info = env.reset(options={"task_id": t})
        msgs = chat(env)
        prompt = encode(msgs)
        if len(prompt) > max_prompt_tokens:
            long += 1
            continue
        out.append(Task(t, info["task"], msgs, prompt,
                        reference_answer(info["task"], underscore_names)))
    return out, long


@dataclass
class ToolTasks:
    """A tool-use recipe's tasks: training tasks with prompts and reference answers, held-out
    eval ids, and how many were left out."""

    train: list[Task]
    eval_ids: list[int]
    too_long: int
    """Tasks whose prompts exceed max_prompt_tokens (training and eval)."""
    unanswerable: int
    """Training entries whose reference answer fails BFCL's own check (cannot be imitated)."""


def tool_tasks(env: Any, encode: Any, cfg: Any, recipe: str) -> ToolTasks:
    """The tasks of a tool-use recipe config (`cfg.env`, `train_tasks`: a fixed sample drawn
    with `TRAIN_SAMPLE_SEED` over all categories, 0 = all; `eval_categories`, `eval_tasks` per
    category, 0 = all; `max_prompt_tokens`). Raises RlpostError (naming `recipe`) when no
    training or no eval task fits."""
    train = env_tasks(env, "train")
    if cfg.train_tasks and cfg.train_tasks < len(train):
        # a fixed sample over all categories (the ids are sorted by category)
        train = sorted(random.Random(TRAIN_SAMPLE_SEED).sample(train, cfg.train_tasks))
    fitting, too_long = prompt_tasks(env, encode, train, cfg.max_prompt_tokens,
                                     cfg.env.underscore_names)
    answerable = [t for t in fitting if grade(t.answer, t.record, cfg.env)[1]["success"]]
    held_out, long_eval = prompt_tasks(env, encode, env_tasks(env, "test"),
                                       cfg.max_prompt_tokens, cfg.env.underscore_names)
    eval_ids: list[int] = []
    for cat in cfg.eval_categories:
        ids = [t.task_id for t in held_out if t.record["category"] == cat]
        eval_ids += ids[:cfg.eval_tasks] if cfg.eval_tasks else ids
    if not answerable or not eval_ids:
        raise RlpostError(f"{recipe}: {len(answerable)} training and {len(eval_ids)} eval "
                          "tasks fit max_prompt_tokens; raise it, or choose other "
                          "env.categories / max_tasks_per_category")
    return ToolTasks(answerable, eval_ids, too_long + long_eval, len(fitting) - len(answerable))


# --- the loop ------------------------------------------------------------------------------


class ITool:
    """The iTool loop over one runner: `warm_up`, `iterate(it)`, `evaluate(stage)`."""

    def __init__(self, cfg: Config, policy: Policy, generator: Generator,
                 tracker: Tracker | None = None, runner: Runner | None = None):
        self.cfg, self.policy, self.generator, self.tracker = cfg, policy, generator, tracker
        self.runner = runner or Runner.make(ENV_ID, cfg.env, cfg.n_envs, generator,
                                            policy.encode_chat, 1, cfg.max_prompt_tokens)
        self.env = self.runner.envs[0]
        self.eval_params = GenParams(temperature=0.0, max_tokens=cfg.max_tokens)
        split = tool_tasks(self.env, policy.encode_chat, cfg, NAME)
        self.train, self.eval_ids = split.train, split.eval_ids
        self.too_long, self.unanswerable = split.too_long, split.unanswerable
        self.step = 0
        self._options: dict[str, list[int]] | None = None

    def rollout_reward(self, task: Task, text: str) -> float:
        """MCTS rollout reward (`Config.rollout_reward`): +1 when the env's AST check passes
        the answer, else -1; or the policy's self-evaluation against the reference answer."""
        if self.cfg.rollout_reward == "self_eval":
            if self._options is None:
                self._options = option_tokens(self.policy.tokenizer)
            return self_eval_reward(self.policy, task.answer, text, self._options)
        return 1.0 if grade(text, task.record, self.cfg.env)[1]["success"] else -1.0

    def log(self, metrics: dict[str, float]) -> None:
        if self.tracker is not None:
            self.tracker.log(metrics, self.step)

    def evaluate(self, stage: str) -> dict[str, float]:
        """Greedy answers to the eval tasks; AST accuracy (the share the AST check passes, not
        the reward, which may hold format and penalty terms) per category and overall; logs
        the runner's eval/* metrics too (eval/success = eval/ast_acc is the plotted one)."""
        ev = self.runner.evaluate(self.eval_ids, self.eval_params,
                                  derive_seed(self.cfg.run.seed, "eval"))
        by_cat: dict[str, list[float]] = {}
        for traj in ev.trajectories:
            by_cat.setdefault(traj.task["category"], []).append(float(traj.success))
        metrics = {f"eval/acc/{c}": sum(v) / len(v) for c, v in sorted(by_cat.items())}
        metrics["eval/ast_acc"] = ev.metrics["eval/success"]
        self.log(ev.metrics | metrics)
        print(f"rlpost: itool {stage}: AST accuracy {metrics['eval/ast_acc']:.3f} "
              + " ".join(f"{c}={v:.2f}" for c, v in metrics.items() if "/acc/" in c), flush=True)
        return {f"{stage}/{k.removeprefix('eval/')}": v for k, v in metrics.items()}

    def warm_up(self) -> None:
        """Easy-to-hard SFT on the reference answers of the training tasks."""
        samples = [SFTSample([*t.messages, Message("assistant", t.answer)], [1.0])
                   for t in self.train]
        stages = curriculum(samples, [difficulty(t.record) for t in self.train],
                            self.cfg.curriculum_stages)
        for s, stage in enumerate(stages):
            sft = replace(self.cfg.sft, seed=derive_seed(self.cfg.sft.seed, "stage", s))
            self.step += train_sft(self.policy, stage, sft, self.tracker, self.step).steps
        self.generator.sync_weights(self.policy)

    def deficient(self) -> list[Task]:
        """The training tasks whose reference answers the policy finds least likely."""
        tok = self.policy.tokenizer
        answers = [tok(t.answer + (tok.eos_token or ""), add_special_tokens=False)["input_ids"]
                   for t in self.train]
        ppl = answer_perplexities(self.policy, [t.prompt_ids for t in self.train], answers)
        has_call = [not expects_no_call(t.record["category"]) for t in self.train]
        return [self.train[i] for i in pick_deficient(ppl, has_call, self.cfg.deficient_ratio)]

    def iterate(self, it: int) -> dict[str, float]:
        """Deficient samples -> MCTS pairs -> preference optimisation -> weight sync."""
        picked = self.deficient()
        t0 = time.perf_counter()
        tasks = [SearchTask(t.prompt_ids,
                            "" if expects_no_call(t.record["category"]) else t.answer,
                            lambda text, t=t: self.rollout_reward(t, text),
                            {"task_id": t.task_id, "category": t.record["category"]})
                 for t in picked]
        decode = lambda ids: self.policy.tokenizer.decode(ids, skip_special_tokens=True)  # noqa: E731
        found = search(self.generator, decode, tasks, self.cfg.mcts,
                       derive_seed(self.cfg.run.seed, "mcts", it))
        seconds = time.perf_counter() - t0
        pairs = found.pairs
        # value_pairs: the share of pairs whose shared prefix ends in "=": the two fragments
        # are alternative values of one argument (the paper's "fragment deficiency")
        stats = {"iter/deficient": float(len(picked)), "iter/pairs": float(len(pairs)),
                 "iter/value_gap": (sum(p.chosen_score - p.rejected_score for p in pairs)
                                    / len(pairs)) if pairs else 0.0,
                 "iter/value_pairs": (sum(p.info["prefix"].rstrip().endswith("=")
                                          for p in pairs) / len(pairs)) if pairs else 0.0,
                 "iter/mcts_seconds": seconds,
                 "iter/generate_calls": float(found.generate_calls)}
        if pairs:
            pref = replace(self.cfg.pref, seed=derive_seed(self.cfg.pref.seed, "iteration", it))
            result = train_dpo(self.policy, pairs, pref, self.tracker, step_offset=self.step)
            self.step += result.steps
            self.generator.sync_weights(self.policy)
        self.log(stats)
        return stats


def main(cfg: Config, generator: Generator | None = None) -> dict[str, float]:
    """Zero-shot eval, warm-up SFT, then `cfg.iterations` iTool iterations, each evaluated;
    writes results.json and the model."""
    cfg.validate()
    if cfg.run.dir and (Path(cfg.run.dir) / "metrics.jsonl").exists():
        raise RlpostError(f"{cfg.run.dir} already holds a run, and itool runs do not resume "
                          "yet: choose another --run.dir")
    with start_run(cfg.run, NAME, cfg, generator) as lifecycle:
        run = ITool(cfg, lifecycle.policy, lifecycle.generator, lifecycle.tracker)
        results: dict[str, float] = {"tasks/train": float(len(run.train)),
                                     "tasks/eval": float(len(run.eval_ids)),
                                     "tasks/too_long": float(run.too_long),
                                     "tasks/unanswerable": float(run.unanswerable)}
        results |= run.evaluate("zero_shot")
        run.warm_up()
        results |= run.evaluate("sft")
        for it in range(cfg.iterations):
            results |= {f"{k}_{it + 1}": v for k, v in run.iterate(it).items()}
            results |= run.evaluate(f"itool_{it + 1}")
        (lifecycle.dir / "results.json").write_text(json.dumps(results, indent=2))
        lifecycle.policy.save(lifecycle.dir / "model")
    return results


# --- the paper's rollout reward: the policy's self-evaluation ----------------------------

JUDGE_SYSTEM = ("You are a helpful assistant who grades answers to function-calling tasks "
                "against the reference answer.")
JUDGE_PROMPT = (
    "Reference answer: {reference}\n"
    "Model answer: {response}\n"
    "Grade the model answer against the reference (an answer that is a correct part of the "
    "reference also counts as excellent) on: the names of the functions called, the number of "
    "parameters, the parameter names, the parameter values and types, and how close the "
    "meaning is.\n"
    "Options:\n"
    "(A) Excellent: meets every criterion; nearly the same as the reference.\n"
    "(B) Acceptable: meets most criteria, with small differences.\n"
    "(C) Fair: meets some criteria, with significant problems.\n"
    "(D) Poor: meets few or none of the criteria.\n"
    "Answer with the option letter only.")
"""Our wording of iTool's ``EVAL_SYSTEM`` / ``EVAL_PROMPT_with_GT`` (``mcts/utils.py``)."""
OPTION_WEIGHTS = {"A": 1.0, "B": 0.1, "C": -1.0, "D": -2.0}
"""iTool's ``conf = (1.0 p_A + 0.1 p_B - 1.0 p_C - 2.0 p_D) / 4``."""


def option_tokens(tokenizer: Any) -> dict[str, list[int]]:
    """Per option letter, the ids of the vocabulary entries that read as it: the letter, with a
    leading space or "(" (case-insensitive), as iTool matches generated tokens."""
    out: dict[str, list[int]] = {k: [] for k in OPTION_WEIGHTS}
    for tok_id in range(len(tokenizer)):
        text = tokenizer.decode([tok_id]).strip().lstrip("(").upper()
        if text in out:
            out[text].append(tok_id)
    return out


@torch.no_grad()
def self_eval_reward(policy: Policy, reference: str, response: str,
                     options: dict[str, list[int]]) -> float:
    """The policy's own grade of `response` against `reference` (iTool ``get_reward`` without
    fast_reward): with p_X the next-token probability of option X after the judge prompt
    (`JUDGE_SYSTEM`, `JUDGE_PROMPT`), ``sum_X w_X p_X / 4`` with `OPTION_WEIGHTS`; in
    [-0.5, 0.25]. iTool sums the top-4 logprobs of up to 7 sampled tokens; we read the one
    distribution where the letter is due."""
    ids = policy.encode_chat([Message("system", JUDGE_SYSTEM), Message(
        "user", JUDGE_PROMPT.format(reference=reference, response=response))])
    with policy.autocast_ctx():
        logits = policy.model(torch.tensor([ids], device=policy.device)).logits[0, -1]
    probs = torch.softmax(logits.float(), -1)
    return sum(w * float(probs[options[k]].sum()) for k, w in OPTION_WEIGHTS.items()) / 4
