"""Labelled examples for the classification env, all from data that ships in packages or that
this module generates (no downloads).

- ``digits``: scikit-learn's 8x8 handwritten digits (1,797; UCI ML hand-written digits) as ASCII.
- ``iris``, ``wine``, ``breast_cancer``: scikit-learn's bundled UCI tables as text records.
- ``topics``: our generated news-like sentences, 6 topics.
- ``sentiment``: our generated product reviews, positive / negative.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Example:
    text: str
    label: str


@dataclass(frozen=True)
class Dataset:
    name: str
    question: str
    """Asked before the record; the candidate list follows the record."""
    classes: tuple[str, ...]
    examples: tuple[Example, ...]


DATASETS = ("topics", "sentiment", "digits", "iris", "wine", "breast_cancer")
_RAMP = " .:-=+*#%@"


def digit_ascii(pixels: list[float]) -> str:
    """8x8 grey levels 0..16 -> 8 lines of 8 characters from a dark-to-bright ramp."""
    chars = [_RAMP[min(len(_RAMP) - 1, int(v) * len(_RAMP) // 17)] for v in pixels]
    return "\n".join("".join(chars[r * 8 : r * 8 + 8]) for r in range(8))


def _digits() -> Dataset:
    from sklearn.datasets import load_digits

    d = load_digits()
    ex = tuple(Example(digit_ascii(list(x)), str(int(y))) for x, y in zip(d.data, d.target))
    return Dataset("digits", "Which digit (0-9) is drawn in this 8x8 grid?",
                   tuple(str(i) for i in range(10)), ex)


def _table(loader: str, question: str, names: tuple[str, ...], keep: int | None = None) -> Dataset:
    import sklearn.datasets

    d = getattr(sklearn.datasets, loader)()
    cols = list(d.feature_names)[:keep]
    ex = []
    for row, y in zip(d.data, d.target):
        fields = ", ".join(f"{c}: {v:.4g}" for c, v in zip(cols, row))
        ex.append(Example(fields, names[int(y)]))
    return Dataset(loader.removeprefix("load_"), question, names, tuple(ex))


_TOPICS: dict[str, tuple[list[str], list[str]]] = {
    "sports": (["the striker", "the goalkeeper", "the home team", "the coach", "the champion",
                "the tennis player", "the relay squad"],
               ["scored twice in the final minutes", "won the league title", "was injured before "
                "the match", "broke the marathon record", "lost the semi-final on penalties",
                "signed a new contract with the club", "trained hard for the tournament"]),
    "cooking": (["the chef", "my grandmother", "the bakery", "the home cook", "the restaurant",
                 "the pastry team"],
                ["simmered the tomato sauce for hours", "baked fresh bread with rye flour",
                 "seasoned the soup with garlic and basil", "roasted the chicken in the oven",
                 "whisked eggs and sugar for the cake", "chopped onions for the stew"]),
    "weather": (["the forecast", "the storm", "a cold front", "the heatwave", "the rain",
                 "the meteorologist"],
                ["predicts heavy snow tomorrow", "brought strong winds and thunder",
                 "will push temperatures below freezing", "kept the sky cloudy all week",
                 "warned of flooding along the coast", "expects sunny skies and a dry breeze"]),
    "finance": (["the central bank", "the stock market", "investors", "the company",
                 "the bank", "shareholders"],
                ["raised interest rates again", "fell sharply after the earnings report",
                 "bought government bonds", "reported record quarterly profits",
                 "cut its dividend to save cash", "worried about inflation and loans"]),
    "music": (["the band", "the orchestra", "the singer", "the pianist", "the rapper",
               "the guitarist"],
              ["released a new album", "played a sold-out concert", "recorded a song in the "
               "studio", "tuned the violin before the symphony", "topped the charts with a single",
               "rehearsed the melody and the chorus"]),
    "health": (["the doctor", "the hospital", "the nurse", "patients", "the clinic",
                "researchers"],
               ["recommended more sleep and exercise", "treated the flu with rest and fluids",
                "tested a new vaccine", "warned about high blood pressure", "prescribed "
                "medicine for the infection", "studied a healthy diet for the heart"]),
}
_WHEN = ["", "on Monday", "this week", "last night", "yesterday", "earlier today", "in the spring"]

_SENTIMENT = {
    "positive": ["I love it", "works perfectly", "excellent quality", "great value for the money",
                 "arrived quickly and looks beautiful", "highly recommend it", "exceeded my "
                 "expectations", "very comfortable and sturdy"],
    "negative": ["I hate it", "broke after two days", "terrible quality", "a waste of money",
                 "arrived late and damaged", "would not recommend it", "worse than described",
                 "uncomfortable and flimsy"],
}
_PRODUCTS = ["headphones", "backpack", "coffee maker", "desk lamp", "running shoes", "phone case",
             "blender", "office chair", "water bottle", "keyboard"]


def _topics(per_class: int = 60, seed: int = 1234) -> Dataset:
    rng, seen, ex = random.Random(seed), set(), []
    for label, (subjects, predicates) in _TOPICS.items():
        n = 0
        while n < per_class:
            when = rng.choice(_WHEN)
            s = f"{rng.choice(subjects).capitalize()} {rng.choice(predicates)}{' ' + when if when else ''}."
            if s not in seen:
                seen.add(s)
                ex.append(Example(s, label))
                n += 1
    rng.shuffle(ex)
    return Dataset("topics", "What is the topic of this sentence?", tuple(_TOPICS), tuple(ex))


def _sentiment(per_class: int = 150, seed: int = 4321) -> Dataset:
    rng, seen, ex = random.Random(seed), set(), []
    for label, phrases in _SENTIMENT.items():
        n = 0
        while n < per_class:
            a, b = rng.sample(phrases, 2)
            s = f"This {rng.choice(_PRODUCTS)}: {a}, {b}."
            if s not in seen:
                seen.add(s)
                ex.append(Example(s, label))
                n += 1
    rng.shuffle(ex)
    return Dataset("sentiment", "Is the sentiment of this product review positive or negative?",
                   tuple(_SENTIMENT), tuple(ex))


@lru_cache(maxsize=None)
def load_dataset(name: str) -> Dataset:
    """The named dataset (cached; tables load lazily from scikit-learn)."""
    if name == "topics":
        return _topics()
    if name == "sentiment":
        return _sentiment()
    if name == "digits":
        return _digits()
    if name == "iris":
        return _table("load_iris", "Which species of iris has these measurements?",
                      ("setosa", "versicolor", "virginica"))
    if name == "wine":
        return _table("load_wine", "Which of three cultivars (grape growers) made this wine?",
                      ("cultivar_1", "cultivar_2", "cultivar_3"))
    if name == "breast_cancer":
        # UCI's target 0 = malignant, 1 = benign; only the 10 "mean ..." features, to stay short
        return _table("load_breast_cancer", "Is this breast tumour malignant or benign?",
                      ("malignant", "benign"), keep=10)
    raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
