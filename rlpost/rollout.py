"""Lockstep multi-turn rollouts over groups of envs.

G copies of each task are reset with the same task and seed. Each turn makes ONE batched
generate call for all live episodes (token ids in, token ids + logprobs out), steps every env
with the model's raw text, and drops finished episodes from the batch. Episodes end when their
env terminates or truncates them (the turn limit is the env's `TimeLimit`, set at registration
or by `rlpost.env.make`); episodes whose next prompt would not fit the context are truncated: the
context limit is the generator's `max_model_len - params.max_tokens` unless the caller sets a
lower `max_prompt_tokens`, so one over-long episode never makes the engine reject the batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import gymnasium as gym

from rlpost.env import chat, check_turn_limits
from rlpost.generate import Generator, GenParams, Prompt
from rlpost.seeds import derive_seed
from rlpost.types import Message, Step, Trajectory


def rollout(
    envs: Sequence[gym.Env],
    tasks: Sequence[Any],
    group_size: int,
    generator: Generator,
    encode: Callable[[list[Message]], list[int]],
    params: GenParams,
    seed: int = 0,
    max_prompt_tokens: int | None = None,
    prefixes: Sequence[Sequence[str]] | None = None,
) -> list[Trajectory]:
    """Play `group_size` episodes of every task; returns trajectories in (task, copy) order.

    envs: at least len(tasks) * group_size env instances (reused across calls), each with a
    turn limit (gymnasium's `TimeLimit`: made by `rlpost.env.make` / `gymnasium.make`).
    encode: chat messages -> prompt token ids (the policy's chat template); the messages'
    images go with the ids to the generator (`Prompt`), in order.
    max_prompt_tokens: longest prompt to generate from; None = what the generator's context
    leaves for `params.max_tokens` new tokens.
    prefixes: per task, actions replayed after the reset (``options["replay"]``): the episode
    starts from the state they reach (EEF simulates the agent from states of expert episodes).
    The G copies of task g reset with `derive_seed(seed, "reset", g)` and each turn's generate
    call is seeded with `derive_seed(seed, "turn", k)`, so the same seed, envs and generator
    weights give the same trajectories.
    Raises ValueError when envs are too few, an env has no turn limit (the rollout would not
    end), or the context leaves no room for a prompt.
    """
    n = len(tasks) * group_size
    if len(envs) < n:
        raise ValueError(f"rollout needs {n} envs, got {len(envs)}")
    check_turn_limits(envs[:n], ValueError)
    limit = generator.max_model_len - params.max_tokens
    if max_prompt_tokens is not None:
        limit = min(limit, max_prompt_tokens)
    if limit < 1:
        raise ValueError(f"no room for a prompt: the generator's context is "
                         f"{generator.max_model_len} tokens and max_tokens {params.max_tokens}")
    trajs: list[Trajectory] = []
    anchors: list[Any] = []
    for g, task in enumerate(tasks):
        for k in range(group_size):
            options = {"task_id": task}
            if prefixes is not None:
                options["replay"] = list(prefixes[g])
            obs, info = envs[g * group_size + k].reset(seed=derive_seed(seed, "reset", g),
                                                        options=options)
            anchors.append(obs["anchor"])
            trajs.append(Trajectory(task_id=task, group_id=g,
                                    task=info.get("task", {"task_id": task})))

    live, turn = list(range(n)), 0
    while live:
        turn += 1
        chats = {i: chat(envs[i]) for i in live}
        prompts = {i: encode(chats[i]) for i in live}
        for i in [i for i in live if len(prompts[i]) > limit]:
            trajs[i].truncated = True
        live = [i for i in live if not trajs[i].truncated]
        if not live:
            break
        turn_params = replace(params, seed=derive_seed(seed, "turn", turn))
        requests = [Prompt(prompts[i], [im for m in chats[i] for im in m.images]) for i in live]
        completions = generator.generate(requests, turn_params)
        still_live = []
        for i, c in zip(live, completions):
            obs, reward, terminated, truncated, info = envs[i].step(c.text)
            trajs[i].steps.append(
                Step(prompts[i], c.token_ids, c.logprobs, c.text, float(reward), info,
                     c.finish_reason, anchor=anchors[i])
            )
            anchors[i] = obs["anchor"]
            trajs[i].messages = [*chats[i], Message("assistant", c.text)]
            # a TimeLimit also flags the terminating step truncated when it is the last allowed
            terminated, truncated = bool(terminated), bool(truncated) and not terminated
            trajs[i].terminated, trajs[i].truncated = terminated, truncated
            if not (terminated or truncated):
                still_live.append(i)
        live = still_live
    for t in trajs:
        t.success = bool(t.final_info.get("success"))
    return trajs
