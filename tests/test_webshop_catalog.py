"""Tests for the synthetic WebShop catalog (schema, determinism, goals and distractors)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import defaultdict

import pytest

from rlpost.envs.webshop.catalog import generate_catalog
from rlpost.envs.webshop.vocab import TYPES

KEYS = {"asin": str, "name": str, "full_description": str, "small_description": list, "pricing": str,
        "customization_options": dict, "images": list, "category": str, "query": str,
        "product_category": str, "attributes": list, "instructions": list}
CATEGORIES = {"beauty", "electronics", "fashion", "food", "furniture"}


@pytest.fixture(scope="module")
def catalog() -> list[dict]:
    return generate_catalog()


def _dump(products: list[dict]) -> str:
    return json.dumps(products, sort_keys=True)


def test_deterministic_per_seed(catalog):
    assert _dump(generate_catalog()) == _dump(catalog)
    assert _dump(generate_catalog(seed=1)) != _dump(catalog)
    assert _dump(generate_catalog(60, seed=3)) == _dump(generate_catalog(60, seed=3))


def test_independent_of_hash_seed():
    code = ("import json, sys; from rlpost.envs.webshop.catalog import generate_catalog; "
            "sys.stdout.write(json.dumps(generate_catalog(300, seed=7), sort_keys=True))")
    outs = [subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONHASHSEED": hs},
                           capture_output=True, text=True, check=True).stdout for hs in ("1", "12345")]
    assert outs[0] == outs[1] == _dump(generate_catalog(300, seed=7))


def test_shape_and_types(catalog):
    assert len(catalog) >= 1000
    assert len({p["query"] for p in catalog}) >= 24
    assert {p["category"] for p in catalog} == CATEGORIES
    for p in catalog:
        assert set(p) == set(KEYS)
        for key, kind in KEYS.items():
            assert isinstance(p[key], kind), key
        assert 7 <= len(p["name"].split()) <= 16
        assert 3 <= len(p["small_description"]) <= 5
        assert all(isinstance(b, str) and b for b in p["small_description"])
        assert p["images"] == [f"https://synthetic.invalid/{p['asin']}.jpg"]
        assert 3 <= len(p["attributes"]) <= 6 and all(a == a.lower() for a in p["attributes"])
        assert len(p["customization_options"]) <= 3
        for values in p["customization_options"].values():
            assert 2 <= len(values) <= 8
            assert all(set(v) == {"value", "image"} and "/" not in v["value"] for v in values)
    with_options = sum(bool(p["customization_options"]) for p in catalog)
    assert with_options >= 0.7 * len(catalog)


def test_asins_unique_and_well_formed(catalog):
    asins = [p["asin"] for p in catalog]
    assert len(set(asins)) == len(asins)
    assert all(re.fullmatch(r"B0[A-Z0-9]{8}", a) for a in asins)


def test_types_spread_over_categories():
    per_category = defaultdict(list)
    for t in TYPES:
        per_category[t.category].append(t.query)
        assert len(t.attributes) >= 8
    assert set(per_category) == CATEGORIES
    assert all(len(qs) >= 4 for qs in per_category.values())
    assert len({t.query for t in TYPES}) == len({t.path for t in TYPES}) == len(TYPES)


def test_pricing_parses_like_the_original_loader(catalog):
    n_ranges = 0
    for p in catalog:
        prices = [float(re.sub(r"[^\d.]", "", x)) for x in p["pricing"].split("$")[1:]]
        assert len(prices) in (1, 2) and all(x > 0 for x in prices), p["pricing"]
        if len(prices) == 2:
            assert prices[0] < prices[1]
            n_ranges += 1
    assert 0.05 < n_ranges / len(catalog) < 0.3


def test_instructions_are_consistent_goals(catalog):
    n_goals = 0
    for p in catalog:
        groups = {name: [v["value"].strip().lower() for v in vals]
                  for name, vals in p["customization_options"].items()}
        for goal in p["instructions"]:
            n_goals += 1
            text = goal["instruction"]
            assert text == text.lower() and "price" not in text and not text.endswith(".")
            assert 1 <= len(goal["instruction_attributes"]) <= 3
            assert set(goal["instruction_attributes"]) <= set(p["attributes"])
            used_groups = []
            for option in goal["instruction_options"]:
                owners = [g for g, vals in groups.items() if option in vals and g not in used_groups]
                assert owners, (option, groups)
                used_groups.append(owners[0])
            for phrase in goal["instruction_attributes"] + goal["instruction_options"]:
                assert phrase in text, (phrase, text)
    assert n_goals >= 0.9 * len(catalog)


def test_titles_carry_type_nouns_and_breadcrumbs(catalog):
    heads = {t.query: t.head for t in TYPES}
    for p in catalog:
        assert heads[p["query"]] in p["name"]
        assert len([s for s in p["product_category"].split("›") if s.strip()]) >= 3


def test_goals_have_same_type_distractors(catalog):
    by_query = defaultdict(list)
    for p in catalog:
        by_query[p["query"]].append(p)
    goals = [(p, g) for p in catalog for g in p["instructions"]]
    hard = 0
    for p, goal in goals:
        others = [q for q in by_query[p["query"]] if q is not p
                  and set(goal["instruction_attributes"]) & set(q["attributes"])]
        hard += len(others) >= 2
    assert hard >= 0.8 * len(goals)


def test_small_catalogs_work():
    products = generate_catalog(50, seed=5)
    assert len(products) == 50 and len({p["asin"] for p in products}) == 50
