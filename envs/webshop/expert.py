"""Scripted WebShop experts that play through the real action interface.

The oracle reads its goal (privileged: the target ASIN and options), searches with the
instruction, pages through results until the target shows up, clicks it, selects each goal
option and buys: it reaches reward 1.0 on every task whose target its searches surface.

The weak expert stands in for the paper's GPT-4 expert, which solved about 36% of WebShop's
training tasks. It does not know the target: it searches (sometimes with only the product type),
looks at the first `max_pages` result pages, opens the result whose title best matches the
instruction's words (or, with `p_first_match`, simply the first result), selects the options it
finds in the instruction (forgetting each with `p_skip_option`) and buys. Its failures are the
usual ones of LLM shoppers: vague searches, a look-alike product, a forgotten option. Every
choice draws from a generator seeded by (seed, task), so an episode is reproducible.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

import gymnasium as gym

from rlpost.envs.webshop import pages
from rlpost.envs.webshop.env import WebShopEnv


@dataclass
class ExpertConfig:
    """How the scripted expert shops; the defaults are the oracle."""

    oracle: bool = True
    """Knows the target product (True) or judges results by their titles (False)."""
    max_pages: int = 5
    """Result pages it looks through before giving up on a search."""
    p_vague_query: float = 0.0
    """Chance it searches the bare product type instead of the instruction."""
    p_first_match: float = 0.0
    """Chance it opens the first result instead of the best-looking one (weak expert only)."""
    p_skip_option: float = 0.0
    """Chance, per goal option, that it forgets to select it."""
    seed: int = 0
    """Seeds the expert's choices (with the task id): its episodes are reproducible."""


MAX_STEPS = 15
"""Actions the expert takes on a bare env (no TimeLimit): WebShop's registered limit."""

WEAK_EXPERT = ExpertConfig(oracle=False, max_pages=1, p_vague_query=0.4, p_first_match=0.3,
                           p_skip_option=0.2)
"""The default weak expert (solves about a third of training tasks; see benchmarks/webshop_env.py)."""


@dataclass
class ExpertEpisode:
    task_id: int
    actions: list[str]
    reward: float
    success: bool


_PRICE_TEXT = re.compile(r",? and price lower than [\d.]+ dollars$")


def instruction_query(instruction: str) -> str:
    """The instruction without its price clause: what a shopper types into the search bar."""
    return _PRICE_TEXT.sub("", instruction).strip()


def _title_score(title: str, instruction: str) -> int:
    words = set(re.findall(r"[a-z0-9]+", instruction.lower()))
    return sum(w in words for w in re.findall(r"[a-z0-9]+", title.lower()))


class Expert:
    """Chooses the next action from the env's page and goal; `play` runs a whole episode."""

    def __init__(self, config: ExpertConfig | None = None):
        self.config = config or ExpertConfig()

    def play(self, env: gym.Env, task_id: int) -> ExpertEpisode:
        """The expert's episode on `task_id`: until Buy Now or the env's turn limit (`env` is a
        WebShop env, wrapped in its TimeLimit or bare: then at most MAX_STEPS actions)."""
        cfg = self.config
        rng = random.Random(f"expert:{cfg.seed}:{task_id}")
        env.reset(options={"task_id": task_id})
        shop_env: WebShopEnv = env.unwrapped
        goal = shop_env.goal
        vague = rng.random() < cfg.p_vague_query
        query = goal["query"] if vague else instruction_query(goal["instruction_text"])
        skipped = {o for o in goal["goal_options"] if rng.random() < cfg.p_skip_option}
        first = (not cfg.oracle) and rng.random() < cfg.p_first_match
        searched_again = False
        reward, done = 0.0, False
        steps = 0
        while not done and steps < MAX_STEPS:
            action = self._next(shop_env, goal, query, skipped, first, searched_again)
            if action == "search-again":  # oracle: target not in the first pages
                searched_again = True
                query = f"{goal['query']} {' '.join(goal['attributes'])}"
                action = "click[Back to Search]"
            _, r, term, trunc, _ = env.step(action)
            reward, done, steps = r, term or trunc, steps + 1
        success = done and reward == 1.0
        return ExpertEpisode(task_id, shop_env.actions, float(reward), success)

    def _next(self, env: WebShopEnv, goal: dict, query: str, skipped: set[str], first: bool,
              searched_again: bool) -> str:
        cfg, s, shop = self.config, env.session, env.shop
        if s.page == "search":
            return f"search[{query}]"
        if s.page == "sub":
            return "click[< Prev]"
        if s.page == "results":
            window = pages.window(s)
            if cfg.oracle:
                if goal["asin"] in window:
                    return f"click[{goal['asin'].lower()}]"
                if s.page_num < cfg.max_pages and len(s.results) > s.page_num * len(window):
                    return "click[Next >]"
                if not searched_again:
                    return "search-again"
            if not window:
                return "click[Back to Search]"
            if first:
                pick = window[0]
            else:
                instr = goal["instruction_text"]
                pick = max(window, key=lambda a: _title_score(shop.by_asin[a]["Title"], instr))
            return f"click[{pick.lower()}]"
        # item page: select wanted options that this product offers, then buy
        offered = {v: g for g, vals in shop.by_asin[s.asin]["options"].items() for v in vals}
        for opt in goal["goal_options"]:
            if opt in skipped or opt not in offered:
                continue
            if s.options.get(offered[opt]) != opt:
                return f"click[{opt}]"
        return "click[Buy Now]"
