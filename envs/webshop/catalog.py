"""Synthetic product catalog in the raw schema of WebShop (Yao et al. 2022).

The original WebShop ships about a million products scraped from Amazon. That data cannot be
fetched in this offline setting, nor redistributed with the package, so this module generates a
stand-in catalog procedurally from a seed. Each record follows the raw schema of the original's
``items_shuffle.json`` (``asin``, ``name``, ``full_description``, ``small_description``,
``pricing``, ``customization_options``, ``images``, ``category``, ``query``,
``product_category``), merged with the ``attributes`` of ``items_ins_v2.json`` and the human
goal records of ``items_human_ins.json`` (``instructions``), exactly as the original loader
combines them.

The product types, attribute vocabularies and option pools live in :mod:`.vocab`. Within a type,
products draw overlapping attribute subsets and shared option values, so a goal's attributes and
options single out its target only among a few same-type products; the rest are distractors that
match some but not all of them.
"""

from __future__ import annotations

import random
from typing import Any

from .goal import options_separable
from .vocab import BRANDS, TYPES, ProductType

_ASIN_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_CENTS = ("99", "99", "95", "49", "89", "97", "00")
_ACRONYMS = {"usb": "USB", "led": "LED", "gmo": "GMO", "usda": "USDA", "msg": "MSG", "vesa": "VESA",
             "tv": "TV"}

_OPENERS = ("i'm looking for", "i need", "i want to buy", "find me", "i would like",
            "i am shopping for", "can you find me", "looking for", "i want", "please get me")
_OPTION_LEADS = (", in ", " in ", ", preferably in ", " and in ", ", in the ")
_OPTION_FORMS = {"color": "{} color", "size": "size {}", "scent": "{} scent", "flavor name": "{} flavor",
                 "style": "{} style", "capacity": "{} capacity", "item package quantity": "{}"}
# Relative weights of drawing 0, 1, 2 or 3 option groups (for listings and for goals alike).
_GROUP_WEIGHTS = (1, 5, 4, 2)
# Verb agreeing with an article, for the "<phrase> that is <attributes>" template.
_COPULA = {"a": "is", "an": "is", "a pair of": "are", "a set of": "are"}

_CATEGORY_LINES = {
    "beauty": ("Dermatologist tested and gentle enough for daily use.",
               "Suitable for all skin and hair types.",
               "Makes a thoughtful gift for friends and family."),
    "electronics": ("Compatible with most phones, tablets and laptops.",
                    "Backed by a 12 month warranty and friendly support.",
                    "Certified for safety against overheating and short circuits."),
    "fashion": ("True to size; please check the size chart before ordering.",
                "Suitable for casual outings, travel and everyday wear.",
                "Easy care fabric that keeps its shape wash after wash."),
    "food": ("Packed fresh and sealed to lock in flavor.",
             "A tasty choice for the office, the pantry or on the go.",
             "Made in a facility that follows strict quality standards."),
    "furniture": ("All hardware and step by step instructions are included.",
                  "Sturdy build that fits bedrooms, living rooms and offices.",
                  "Wipe clean with a damp cloth; avoid harsh chemicals."),
}


def _title_case(phrase: str) -> str:
    """Capitalise each word of a lowercase phrase, keeping known acronyms upper case."""
    return " ".join(_ACRONYMS.get(w, w[:1].upper() + w[1:]) for w in phrase.split())


def _join(items: list[str]) -> str:
    """Join phrases as English does: "a", "a and b", "a, b and c"."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _with_article(article: str, rest: str) -> str:
    """Prefix ``rest`` with ``article``, choosing "a" or "an" by the next word's first letter."""
    if not article:
        return rest
    if article in ("a", "an"):
        article = "an" if rest[:1] in "aeiou" else "a"
    return f"{article} {rest}"


def _make_asin(rng: random.Random, taken: set[str]) -> str:
    """Draw a fresh Amazon-style ASIN ("B0" + 8 characters) not in ``taken``."""
    while True:
        asin = "B0" + "".join(rng.choice(_ASIN_CHARS) for _ in range(8))
        if asin not in taken:
            taken.add(asin)
            return asin


def _make_pricing(rng: random.Random, ptype: ProductType) -> str:
    """Price string: one price ("$12.99") or, for about 15% of products, a range ("$10.99$25.99")."""
    lo, hi = ptype.price
    dollars = int(lo + (hi - lo) * rng.random() ** 1.5)
    if rng.random() >= 0.15:
        return f"${dollars}.{rng.choice(_CENTS)}"
    dollars = min(dollars, 850)
    top = min(900, max(dollars + 1, int(dollars * rng.uniform(1.2, 2.5))))
    return f"${dollars}.{rng.choice(_CENTS)}${top}.{rng.choice(_CENTS)}"


def _make_options(rng: random.Random, ptype: ProductType) -> dict[str, list[dict[str, Any]]]:
    """Pick 0-3 of the type's option groups and up to 2-8 values of each, in the type's order.

    A product's values (over all its groups) are pairwise separable by the reward's option rule
    (`goal.options_separable`): a value is skipped when the original's fuzzy match could not
    tell it from one already picked, so choosing a wrong value never earns the option term."""
    weights = _GROUP_WEIGHTS[: len(ptype.options) + 1]
    n_groups = rng.choices(range(len(weights)), weights=weights)[0]
    options: dict[str, list[dict[str, Any]]] = {}
    picked_all: list[str] = []
    for g in sorted(rng.sample(range(len(ptype.options)), n_groups)):
        name, pool = ptype.options[g]
        k = rng.randint(2, min(8, len(pool)))
        picked: list[int] = []
        for i in rng.sample(range(len(pool)), len(pool)):
            if len(picked) == k:
                break
            if all(options_separable(pool[i], v) for v in picked_all):
                picked.append(i)
                picked_all.append(pool[i])
        if len(picked) >= 2:  # a group with one value is no choice
            options[name] = [{"value": pool[i], "image": None} for i in sorted(picked)]
        else:
            picked_all = picked_all[: len(picked_all) - len(picked)]
    return options


def _make_name(rng: random.Random, ptype: ProductType, brand: str, attributes: list[str]) -> str:
    """Amazon-like Title Case title of 7-16 words that always contains the type's head nouns."""
    attr_words = {w for a in attributes[:2] for w in a.split()}
    descriptors = [d for d in ptype.descriptors if d.lower().split()[0] not in attr_words]
    rng.shuffle(descriptors)
    n_desc = rng.randint(1, 2)
    n_attr = rng.randint(1, 2)
    tail = rng.choice(ptype.tails)

    def words() -> list[str]:
        parts = [brand, *descriptors[:n_desc], *(_title_case(a) for a in attributes[:n_attr]), ptype.head, tail]
        return " ".join(parts).split()

    while len(words()) < 7 and n_desc < len(descriptors):
        n_desc += 1
    while len(words()) > 16 and (n_attr > 1 or n_desc > 1):
        if n_attr > 1:
            n_attr -= 1
        else:
            n_desc -= 1
    return " ".join(words())


def _make_descriptions(rng: random.Random, ptype: ProductType, brand: str, attributes: list[str],
                       options: dict[str, list[dict[str, Any]]]) -> tuple[str, list[str]]:
    """Full description (2-4 sentences) and 3-5 bullet points that mention the attributes."""
    head = ptype.head.lower()
    a = attributes
    sentences = [f"From {brand}: {head} with {_join(a[:2])}, made to last.",
                 f"Key features: {_join(a[2:])}.",
                 rng.choice(_CATEGORY_LINES[ptype.category])]
    for name, values in options.items():
        shown = _join([v["value"] for v in values[:3]])
        sentences.append(f"Choose the {name} that suits you, including {shown}.")
    full = " ".join([sentences[0], *rng.sample(sentences[1:], rng.randint(1, min(3, len(sentences) - 1)))])

    bullets = [f"{a[0].upper()} & {a[1].upper()}: {brand} {ptype.phrase}, {_join(a[2:4])}"]
    bullets += [f"{attr.upper()}: designed around {attr} so it keeps up with daily use" for attr in a[2:4]]
    bullets += list(_CATEGORY_LINES[ptype.category])
    return full, bullets[: rng.randint(3, 5)]


def _make_instruction(rng: random.Random, ptype: ProductType, attributes: list[str],
                      options: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """One human-style goal: 1-3 of the product's attributes and one value of 0..all its groups."""
    chosen_attrs = rng.sample(attributes, rng.choices((1, 2, 3), weights=(2, 4, 3))[0])
    groups = list(options)
    weights = _GROUP_WEIGHTS[: len(groups) + 1]
    n_opts = rng.choices(range(len(weights)), weights=weights)[0]
    picked = [groups[i] for i in sorted(rng.sample(range(len(groups)), n_opts))]
    chosen_opts = [rng.choice(options[g])["value"].strip().lower() for g in picked]

    attrs_text = _join(chosen_attrs)
    opener = rng.choice(_OPENERS)
    templates = [f"{opener} {_with_article(ptype.article, f'{attrs_text} {ptype.phrase}')}",
                 f"{opener} {_with_article(ptype.article, ptype.phrase)} with {attrs_text}",
                 f"{opener} {attrs_text} {ptype.phrase}"]
    if ptype.article in _COPULA:
        templates.append(f"{opener} {_with_article(ptype.article, ptype.phrase)} that "
                         f"{_COPULA[ptype.article]} {attrs_text}")
    text = rng.choice(templates)
    if chosen_opts:
        parts = [_OPTION_FORMS[g].format(v) for g, v in zip(picked, chosen_opts)]
        text += rng.choice(_OPTION_LEADS) + _join(parts)
    return {"instruction": text.lower(), "instruction_attributes": chosen_attrs,
            "instruction_options": chosen_opts}


def _make_product(rng: random.Random, ptype: ProductType, asin: str) -> dict[str, Any]:
    """One raw product record of the given type."""
    brand = rng.choice(BRANDS)
    attributes = rng.sample(ptype.attributes, rng.randint(3, 6))
    options = _make_options(rng, ptype)
    full, bullets = _make_descriptions(rng, ptype, brand, attributes, options)
    roll = rng.random()
    n_instructions = 0 if roll < 0.05 else 2 if roll < 0.10 else 1
    return {
        "asin": asin,
        "name": _make_name(rng, ptype, brand, attributes),
        "full_description": full,
        "small_description": bullets,
        "pricing": _make_pricing(rng, ptype),
        "customization_options": options,
        "images": [f"https://synthetic.invalid/{asin}.jpg"],
        "category": ptype.category,
        "query": ptype.query,
        "product_category": ptype.path,
        "attributes": attributes,
        "instructions": [_make_instruction(rng, ptype, attributes, options) for _ in range(n_instructions)],
    }


def generate_catalog(n_products: int = 1200, seed: int = 0) -> list[dict]:
    """Deterministic list of raw WebShop product records.

    Products are spread evenly over the product types of :data:`.vocab.TYPES` and shuffled, as in
    the original ``items_shuffle.json``. The same ``(n_products, seed)`` always yields the same
    records, independent of the process and of ``PYTHONHASHSEED``.
    """
    if n_products < 1:
        raise ValueError(f"n_products must be positive, got {n_products}")
    rng = random.Random(seed)
    type_ids = [i % len(TYPES) for i in range(n_products)]
    rng.shuffle(type_ids)
    taken: set[str] = set()
    return [_make_product(rng, TYPES[t], _make_asin(rng, taken)) for t in type_ids]
