"""Recipes: one module per paper, each with a `Config` dataclass, `PRESETS` and `main(cfg)`.

The first line of a recipe module's docstring is its summary in ``rlpost recipe list``.
"""

RECIPES: dict[str, str] = {
    "cls-rl": "rlpost.recipes.cls_rl",
    "no-think-cls-rl": "rlpost.recipes.no_think_cls_rl",
    "eef": "rlpost.recipes.eef",
    "rft": "rlpost.recipes.rft",
    "itool": "rlpost.recipes.itool",
    "tl-training": "rlpost.recipes.tl_training",
}
