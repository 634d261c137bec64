"""Multi-turn update time: one row per step vs one packed sequence per trajectory.

WebShop episodes of 5 to 10 turns with the full history in the chat (append-only, so each
trajectory packs): the scripted experts' episodes and a random agent's (valid random clicks and
searches, cut at 8-10 turns). Each trajectory's steps are its prompts (the bundled model's chat
template) and its actions (the action's tokens + end-of-turn), with a random advantage per step.
The same rows go through `grpo.update` (the shipped step, bf16 autocast, micro-batches of 2,
zero learning rate so the weights stay put) laid out both ways, alternating, `--repeats` times;
the table gives the median update time per trajectory by turn bucket and the relative
difference of the two gradients (`max_grad_diff` in float32, where it is rounding alone;
`max_grad_diff_bf16` under the timed bf16 autocast, where the two layouts round differently).

    python benchmarks/multiturn_update.py [--quick] [--out FILE]
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import resource
import statistics
import time

from _common import print_table, write_result


def _episodes(n_expert: int, n_agent: int, seed: int = 0) -> list[tuple[str, int, list[str]]]:
    """(kind, task, actions): expert episodes of 5-7 actions, random-agent ones of 8-10."""
    from rlpost.env import make
    from rlpost.envs.webshop.expert import WEAK_EXPERT, Expert

    env = make("rlpost/WebShop-v0", max_turns=10)
    shop_env = env.unwrapped
    train = shop_env.tasks("train")
    out: list[tuple[str, int, list[str]]] = []
    for expert in (Expert(), Expert(WEAK_EXPERT)):
        for task in train:
            if sum(k == "expert" for k, _, _ in out) >= n_expert:
                break
            ep = expert.play(env, task)
            if 5 <= len(ep.actions) <= 7:
                out.append(("expert", task, list(ep.actions)))
    rng = random.Random(seed)
    while sum(k == "agent" for k, _, _ in out) < n_agent:
        task, turns = rng.choice(train), rng.randint(8, 10)
        _, info = env.reset(options={"task_id": task})
        actions: list[str] = []
        while len(actions) < turns:
            avail = info["available_actions"]
            clicks = [f"click[{c}]" for c in avail["clickables"] if c != "buy now"]
            choices = clicks + (["search[" + shop_env.goal["query"] + "]"]
                                if avail["has_search_bar"] else [])
            action = rng.choice(choices)
            _, _, term, trunc, info = env.step(action)
            if info["valid"]:
                actions.append(action)
            if term or trunc:
                break
        if len(actions) >= 8:
            out.append(("agent", task, actions))
    return out


def _trajectory(policy, env, task, actions, rng):
    from rlpost.env import chat
    from rlpost.types import Step, Trajectory

    end = policy.tokenizer.convert_tokens_to_ids("<|im_end|>")
    env.reset(options={"task_id": task})
    steps = []
    for a in actions:
        prompt = policy.encode_chat(chat(env))
        ids = policy.tokenizer(a, add_special_tokens=False)["input_ids"] + [end]
        env.step(a)
        steps.append(Step(prompt, ids, [], a, advantage=rng.uniform(-1, 1)))
    return Trajectory(task, 0, steps)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer episodes and repeats")
    ap.add_argument("--repeats", type=int, default=0, help="timed updates per layout (0 = preset)")
    ap.add_argument("--out", default="benchmarks/results/multiturn_update.json")
    args = ap.parse_args()
    n_expert, n_agent, repeats = (3, 3, 3) if args.quick else (8, 8, 5)
    repeats = args.repeats or repeats

    import torch

    from rlpost.algos.batch import prefix_breaks, rows_from_trajectories
    from rlpost.algos.grpo import GRPOConfig, update
    from rlpost.env import make
    from rlpost.policy import DEFAULT_MODEL, Policy
    from rlpost.run import seed_everything

    seed_everything(0)
    policy = Policy(DEFAULT_MODEL)  # float32 master weights, bf16 autocast: as training
    env = make("rlpost/WebShop-v0", max_turns=10)
    rng = random.Random(0)
    trajs = [(kind, _trajectory(policy, env, task, actions, rng))
             for kind, task, actions in _episodes(n_expert, n_agent)]
    breaks = sum(prefix_breaks(t) for _, t in trajs)
    cfg = GRPOConfig(micro_batch_size=2, max_tokens=48, max_grad_norm=1e9)
    opt = torch.optim.SGD(policy.trainable_parameters(), lr=0.0)

    fp32 = Policy(DEFAULT_MODEL, autocast=None)
    fp32_opt = torch.optim.SGD(fp32.trainable_parameters(), lr=0.0)

    one = dataclasses.replace(cfg, micro_batch_size=1)  # the float32 check: less memory

    def run(traj, packed: bool, pol=policy, o=opt, c=cfg) -> tuple[float, dict[str, torch.Tensor]]:
        rows = rows_from_trajectories([traj], pack_turns=packed)
        pol.model.zero_grad(set_to_none=True)
        t0 = time.perf_counter()
        update(c, pol, None, o, rows)
        dt = time.perf_counter() - t0
        return dt, {n: p.grad.clone() for n, p in pol.model.named_parameters()
                    if p.grad is not None}

    def rel_diff(a, b) -> float:
        num = sum(float((a[k].float() - b[k].float()).norm() ** 2) for k in a)
        return (num / sum(float(g.float().norm() ** 2) for g in a.values())) ** 0.5

    rows_out, ratios, grad_diffs, bf16_diffs = [], {"5-7": [], "8-10": []}, [], []
    for kind, traj in trajs:
        per_step, packed = [], []
        for _ in range(repeats):
            dt, g_step = run(traj, False)
            per_step.append(dt)
            dt, g_pack = run(traj, True)
            packed.append(dt)
        bf16_diffs.append(rel_diff(g_step, g_pack))
        grad_diffs.append(rel_diff(run(traj, False, fp32, fp32_opt, one)[1],
                                   run(traj, True, fp32, fp32_opt, one)[1]))
        n = len(traj.steps)
        ratio = statistics.median(per_step) / statistics.median(packed)
        ratios["8-10" if n >= 8 else "5-7"].append(ratio)
        tokens = len(traj.steps[-1].prompt_ids) + len(traj.steps[-1].action_ids)
        rows_out.append({"kind": kind, "turns": n, "tokens": tokens,
                         "per_step_s": statistics.median(per_step),
                         "packed_s": statistics.median(packed), "ratio": ratio,
                         "grad_rel_diff": grad_diffs[-1], "grad_rel_diff_bf16": bf16_diffs[-1]})
        print(f"{kind:6s} {n:2d} turns {tokens:5d} tokens: per-step {rows_out[-1]['per_step_s']:.2f}"
              f" s, packed {rows_out[-1]['packed_s']:.2f} s, x{ratio:.2f}", flush=True)

    summary = {
        "per_step_over_sequence_update_time": statistics.median(ratios["8-10"] + ratios["5-7"]),
        "per_step_over_sequence_update_time_8plus": statistics.median(ratios["8-10"]),
        "per_step_over_sequence_update_time_5to7": statistics.median(ratios["5-7"]),
        "max_grad_diff": max(grad_diffs),
        "max_grad_diff_bf16": max(bf16_diffs),
        "prefix_breaks": float(breaks),
        "trajectories": float(len(trajs)),
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }
    print_table("multi-turn update: per-step rows / packed sequence (median time ratio)",
                list(summary.items()))
    write_result(args.out, "multiturn_update", summary,
                 {"repeats": repeats, "micro_batch_size": cfg.micro_batch_size,
                  "autocast": "bfloat16", "trajectories": rows_out})


if __name__ == "__main__":
    main()
