"""The shop: products loaded as the original's ``load_products`` does, prices, goals, splits, search.

Products come from the synthetic catalog (``catalog.py``) in the original raw schema and are
normalised line for line like ``web_agent_site/engine/engine.py``: Title/Description/BulletPoints,
parsed pricing and price tag, lower-cased option values with "/" -> " | ", Attributes, Reviews (none,
as in the original, whose review loading is commented out) and Rating "N.A.". Each product becomes
one search document, built as the original's ``convert_product_file_format.py`` builds it. A shop
is built once per (catalog size, seed) and shared by every env instance of the process.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

from rlpost.envs.webshop.catalog import generate_catalog
from rlpost.errors import RlpostError
from rlpost.envs.webshop.goal import build_goals
from rlpost.envs.webshop.search import BM25Index

SEARCH_RETURN_N = 50
PRODUCT_WINDOW = 10


def load_product(raw: dict[str, Any]) -> dict[str, Any]:
    """One raw catalog record -> the engine's product dict (the original's derived fields)."""
    p = dict(raw)
    p["Title"] = p["name"]
    p["Description"] = p["full_description"]
    p["Reviews"] = []
    p["Rating"] = "N.A."
    small = p["small_description"]
    p["BulletPoints"] = small if isinstance(small, list) else [small]
    pricing = p.get("pricing")
    if not pricing:
        prices, tag = [100.0], "$100.0"
    else:
        prices = [float(Decimal(re.sub(r"[^\d.]", "", x))) for x in pricing.split("$")[1:]]
        if len(prices) == 1:
            tag = f"${prices[0]}"
        else:
            tag = f"${prices[0]} to ${prices[1]}"
            prices = prices[:2]
    p["pricing"], p["Price"] = prices, tag
    options: dict[str, list[str]] = {}
    for name, contents in (p.get("customization_options") or {}).items():
        if contents is None:
            continue
        options[name.lower()] = [c["value"].strip().replace("/", " | ").lower() for c in contents]
    p["options"] = options
    p["Attributes"] = list(p.get("attributes") or ["DUMMY_ATTR"])
    p["MainImage"] = p["images"][0] if p.get("images") else None
    p["query"] = p["query"].lower().strip()
    return p


def document_text(p: dict[str, Any]) -> str:
    """The text the original indexes: Title, Description, first bullet, option text; lower-cased."""
    option_text = ", and ".join(f"{name}: {', '.join(values)}" for name, values in p["options"].items())
    first_bullet = p["BulletPoints"][0] if p["BulletPoints"] else ""
    return " ".join([p["Title"], p["Description"], first_bullet, option_text]).lower()


def product_prices(products: list[dict[str, Any]], rng: random.Random) -> dict[str, float]:
    """The price actually paid: the single price, or uniform within a range (100.0 if none)."""
    prices = {}
    for p in products:
        pricing = p["pricing"]
        if not pricing:
            prices[p["asin"]] = 100.0
        elif len(pricing) == 1:
            prices[p["asin"]] = pricing[0]
        else:
            prices[p["asin"]] = rng.uniform(*pricing[:2])
    return prices


@dataclass
class Shop:
    products: list[dict[str, Any]]
    by_asin: dict[str, dict[str, Any]]
    prices: dict[str, float]
    goals: list[dict[str, Any]]
    index: BM25Index
    splits: dict[str, list[int]]
    """Goal indices per split: "test" first, then "validation", then "train" (as the original)."""

    def search(self, keywords: list[str]) -> list[dict[str, Any]]:
        """The top SEARCH_RETURN_N products for `keywords` (the original joins them with spaces)."""
        hits = self.index.search(" ".join(keywords), k=SEARCH_RETURN_N)
        return [self.products[h.doc] for h in hits]


@lru_cache(maxsize=4)
def load_shop(n_products: int = 1200, seed: int = 0, n_test: int = 100, n_val: int = 100) -> Shop:
    """Build (once per process and arguments) the catalog, prices, goals, splits and index."""
    products, seen = [], set()
    for raw in generate_catalog(n_products, seed):
        if raw["asin"] in seen:
            continue
        seen.add(raw["asin"])
        products.append(load_product(raw))
    rng = random.Random(seed)
    prices = product_prices(products, rng)
    goals = build_goals(products, prices, seed=233 + seed)
    if len(goals) < n_test + n_val + 1:
        raise RlpostError(f"catalog of {n_products} products gives {len(goals)} goals, fewer than "
                         f"n_test + n_val + 1 = {n_test + n_val + 1}")
    ids = list(range(len(goals)))
    splits = {"test": ids[:n_test], "validation": ids[n_test:n_test + n_val],
              "train": ids[n_test + n_val:]}
    index = BM25Index([document_text(p) for p in products])
    return Shop(products, {p["asin"]: p for p in products}, prices, goals, index, splits)
