"""`rlpost/WebShop-v0`: the text WebShop of Yao et al. 2022, offline, with the original's rules.

Actions use the original grammar, parsed with its regex ``(.+)\\[(.+)\\]``:
``search[keywords]`` (from any page, as the original's text env allows) and ``click[value]`` with
a value that is clickable on the current page (a button text, a product ASIN, an option value;
case-insensitive). The model's raw text may carry a ReAct thought: the action is the first line
after the last "Action:" when there is one, else the first non-empty line.

An invalid action changes nothing: reward 0.0, ``info["valid"] = False`` (the original's rule;
no extra penalty). Reward is 0.0 on every step except ``click[Buy Now]``, which ends the episode
with the original's reward; ``info["reward_components"]`` then holds every term and weight, and
``success`` is reward == 1.0. Episodes are truncated by the turn limit (15 actions, valid or
not; gymnasium's TimeLimit from the registration, or `rlpost.env.make(..., max_turns=)`).
Stepping an ended episode is inert: reward 0.0, valid False, terminated True.

Observation ``text`` is the original's ``text`` mode ([SEP]-joined visible texts);
``info["available_actions"]`` is its ``get_available_actions()``. History becomes chat as:
system prompt, then the first page as a user message, then per action the raw action text
(stripped) as assistant and the next page as user. With `max_history` = k only the last k pages
are shown in full; older ones become "[page omitted]", which keeps prompts short on CPU.

Tasks are goal indices into the shop's goal list: "test" are the first `n_test`, "validation" the
next `n_val`, "train" the rest, as the original splits its human goals.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from rlpost.env import Env, Observation, env_config
from rlpost.envs.webshop import pages
from rlpost.envs.webshop.engine import Shop, load_shop
from rlpost.envs.webshop.goal import get_reward
from rlpost.errors import RlpostError
from rlpost.types import Message

_ACTION_RE = re.compile(r"(.+)\[(.+)\]")

SYSTEM_PROMPT = (
    "You are shopping on the WebShop website for the user's instruction. Each turn you see the "
    "page and reply with exactly one action: search[keywords] to search, or click[text] to click "
    "something shown on the page (a product id, an option, Description, Features, Reviews, "
    "< Prev, Next >, Back to Search, Buy Now). Buy the item that best matches the instruction."
)


@dataclass
class WebShopConfig:
    """Catalog, splits, episode length and how history is shown."""

    n_products: int = 1200
    """Products in the synthetic catalog."""
    catalog_seed: int = 0
    """Seeds the catalog, the prices paid for price ranges and the goals' price bounds."""
    n_test: int = 100
    """Test goals (the first goals after the fixed shuffle)."""
    n_val: int = 100
    """Validation goals (the next ones); the rest are train goals."""
    max_history: int | None = None
    """Pages shown in full in the chat (the latest ones); None = all."""

    def validate(self) -> None:
        if self.n_products < 50:
            raise RlpostError("env.n_products must be >= 50")
        if self.n_test < 1 or self.n_val < 0:
            raise RlpostError("env.n_test must be >= 1 and env.n_val >= 0")
        if self.max_history is not None and self.max_history < 1:
            raise RlpostError("env.max_history must be >= 1 or None")


def parse_action(text: str) -> tuple[str, str | None]:
    """(name, argument) of the model's text; argument None when the grammar does not match."""
    if "Action:" in text:
        text = text.rsplit("Action:", 1)[1]
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    m = _ACTION_RE.match(line)
    if m is None:
        return line, None
    return m.group(1).strip(), m.group(2)


class WebShopEnv(Env):
    """The WebShop site as a text env (see the module docstring); episodes end at Buy Now, or
    at the registered turn limit (15, gymnasium's TimeLimit)."""

    def __init__(self, config: WebShopConfig | None = None, **overrides: Any):
        super().__init__()
        self.config = env_config(WebShopConfig, config, overrides)
        self.shop: Shop = load_shop(self.config.n_products, self.config.catalog_seed,
                                    self.config.n_test, self.config.n_val)
        self.task_id: int | None = None
        self.goal: dict[str, Any] = {}
        self.session = pages.Session()
        self._pages: list[str] = []
        self._actions: list[str] = []
        self._done = False
        self._reward = 0.0

    # -- tasks and reset -------------------------------------------------------------------
    def tasks(self, split: str) -> list[int]:
        key = {"val": "validation"}.get(split, split)
        if key not in self.shop.splits:
            raise RlpostError(f"unknown split {split!r}; choose train, validation or test")
        return list(self.shop.splits[key])

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[Observation, dict[str, Any]]:
        super().reset(seed=seed)
        task, replay = self.reset_options(options, len(self.shop.goals))
        self.task_id, self.goal = task, self.shop.goals[task]
        self.session = pages.Session()
        self._done, self._reward = False, 0.0
        self._pages, self._actions = [self._render()], []
        for action in replay:
            self.step(action)
        goal = self.goal
        task_record = {"task_id": task, "instruction": goal["instruction_text"],
                       "asin": goal["asin"], "attributes": list(goal["attributes"]),
                       "goal_options": list(goal["goal_options"]),
                       "price_upper": goal["price_upper"], "name": goal["name"]}
        return self._obs(), {**self._info(valid=True), "task": task_record}

    # -- stepping --------------------------------------------------------------------------
    def available_actions(self) -> dict[str, Any]:
        """The original's ``get_available_actions()``: search bar and clickables."""
        if self._done:
            return {"has_search_bar": False, "clickables": []}
        return {"has_search_bar": self.session.page == "search",
                "clickables": list(pages.clickables(self.shop, self.session))}

    def step(self, action: str) -> tuple[Observation, float, bool, bool, dict[str, Any]]:
        action = self.action_text(action)  # not text, or too long: invalid, never an error
        if self._done:  # ended: inert, as documented
            return self._obs(), 0.0, True, False, self._info(valid=False) | {
                "success": self._reward == 1.0}
        name, arg = parse_action(action)
        valid, bought = False, False
        if name == "search" and arg is not None and arg.strip():
            pages.search(self.shop, self.session, arg.lower().split(" "))
            valid = True
        elif name == "click" and arg is not None:
            target = arg.strip().lower()
            table = pages.clickables(self.shop, self.session)
            if target in table and target != "search":
                kind, group = table[target]
                bought = pages.click(self.shop, self.session, target, kind, group)
                valid = True
        components: dict[str, float] = {}
        if bought:
            asin = self.session.asin
            result = get_reward(self.shop.by_asin[asin], self.goal, self.shop.prices[asin],
                                self.session.options)
            self._reward, components, self._done = result.reward, result.components, True
        if valid:
            self._actions.append(action.strip())
            self._pages.append(self._render())
        info = self._info(valid=valid, components=components)
        if self._done:
            info["success"] = self._reward == 1.0
        return self._obs(), self._reward if bought else 0.0, self._done, False, info

    # -- views -----------------------------------------------------------------------------
    def _render(self) -> str:
        return pages.render(self.shop, self.session, self.goal["instruction_text"],
                            self._reward if self._done else None)

    def _obs(self) -> Observation:
        return {"text": self._pages[-1], "anchor": repr((self.task_id, self.session.anchor()))}

    def _info(self, valid: bool, components: dict[str, float] | None = None) -> dict[str, Any]:
        return {"valid": valid, "task_id": self.task_id, "reward_components": components or {},
                "available_actions": self.available_actions(), "page": self.session.page}

    @property
    def instruction(self) -> str:
        return self.goal["instruction_text"]

    @property
    def actions(self) -> list[str]:
        """Valid actions taken so far (invalid ones change nothing and are not kept)."""
        return list(self._actions)

    def messages(self) -> list[Message]:
        k = self.config.max_history
        msgs = [Message("system", SYSTEM_PROMPT)]
        n = len(self._pages)
        for i, page in enumerate(self._pages):
            shown = page if k is None or i >= n - k else "[page omitted]"
            msgs.append(Message("user", shown))
            if i < len(self._actions):
                msgs.append(Message("assistant", self._actions[i]))
        return msgs
