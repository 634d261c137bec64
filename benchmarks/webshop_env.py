"""WebShop env throughput: env steps per second, search latency, shop build time, experts.

Steps are timed over expert episodes (search, result pages, item pages, options, Buy Now with
the reward) and over random valid clicks; search latency over the goals' instruction queries.
Also reports how often the oracle and the weak expert solve train and test tasks.

    python benchmarks/webshop_env.py [--quick] [--out FILE]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time

from _common import print_table, write_result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer episodes and queries")
    ap.add_argument("--out", default="benchmarks/results/webshop_env.json")
    args = ap.parse_args()
    n_eps, n_queries = (100, 100) if args.quick else (600, 1000)

    from rlpost.env import env_tasks, make
    from rlpost.envs.webshop.expert import WEAK_EXPERT, Expert, instruction_query
    from rlpost.envs.webshop.goal import title_nouns

    t0 = time.perf_counter()
    env = make("rlpost/WebShop-v0")  # the registered 15-action limit
    build_s = time.perf_counter() - t0
    shop = env.unwrapped.shop
    t0 = time.perf_counter()
    title_nouns(shop.products[0]["name"])
    spacy_load_s = time.perf_counter() - t0

    lat = []
    for g in shop.goals[:n_queries]:
        q = instruction_query(g["instruction_text"]).split(" ")
        t0 = time.perf_counter()
        shop.search(q)
        lat.append(time.perf_counter() - t0)

    train, test = env_tasks(env, "train"), env_tasks(env, "test")
    rates, steps, secs = {}, 0, 0.0
    for name, expert in (("oracle", Expert()), ("weak", Expert(WEAK_EXPERT))):
        for split, tasks in (("train", train[:n_eps]), ("test", test)):
            t0 = time.perf_counter()
            eps = [expert.play(env, t) for t in tasks]
            secs += time.perf_counter() - t0
            steps += sum(len(e.actions) + 1 for e in eps)  # + the reset
            rates[f"{name}_{split}_success"] = sum(e.success for e in eps) / len(eps)
            rates[f"{name}_{split}_score"] = 100 * statistics.mean(e.reward for e in eps)

    rng = random.Random(0)
    obs, info = env.reset(options={"task_id": train[0]})
    n_random, t0 = 5 * n_eps, time.perf_counter()
    for i in range(n_random):
        clicks = [c for c in info["available_actions"]["clickables"] if c not in ("search",)]
        action = rng.choice([f"click[{c}]" for c in clicks] + ["search[shoes for men]"])
        obs, _, term, trunc, info = env.step(action)
        if term or trunc:
            obs, info = env.reset(options={"task_id": rng.choice(train)})
    random_s = time.perf_counter() - t0

    summary = {
        "steps_per_s": steps / secs, "random_steps_per_s": n_random / random_s,
        "search_ms_median": 1000 * statistics.median(lat),
        "search_ms_p95": 1000 * sorted(lat)[int(0.95 * len(lat))],
        "shop_build_s": build_s, "spacy_load_s": spacy_load_s,
        "products": float(len(shop.products)), "goals": float(len(shop.goals)),
    } | rates
    print_table("WebShop env: throughput, search latency and experts (1 process, 1 core)",
                list(summary.items()))
    write_result(args.out, "webshop_env", summary, {"episodes_per_split": n_eps,
                                                    "queries": n_queries, "quick": args.quick})


if __name__ == "__main__":
    sys.exit(main())
