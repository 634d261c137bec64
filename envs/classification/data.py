"""Labelled examples for the classification env, all from data that ships in packages or that
this package generates (no downloads).

- ``digits``: scikit-learn's 8x8 handwritten digits (1,797; UCI) rendered as an ASCII grid;
  labels ``"0"`` .. ``"9"``.
- ``iris``, ``wine``, ``breast_cancer``: scikit-learn's bundled UCI tables as text records
  (``feature name: value`` lines, values rounded to 4 significant digits). Wine's classes
  ``class_0..2`` are renamed ``cultivar_1..3``; breast_cancer keeps only the 10 ``mean ...``
  features so the prompt stays short.
- ``topics``: our generated news-like sentences, 6 topics (see `synthetic`).
- ``sentiment``: our generated product reviews, positive / negative.

scikit-learn is imported inside the loaders only; every dataset is built once per process.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from rlpost.envs.classification import synthetic


@dataclass(frozen=True)
class Example:
    """One labelled record."""

    text: str
    """The record as the model reads it (sentence, ASCII grid or feature lines)."""
    label: str
    """The class name; the answer the reward compares against."""
    pixels: tuple[int, ...] = ()
    """digits only: the 64 grey levels (0..16, row-major) the grid was drawn from."""


@dataclass(frozen=True)
class Dataset:
    """A named dataset: its question, class names (in a fixed order) and examples."""

    name: str
    question: str
    """Asked before the record; the candidate list follows the record."""
    classes: tuple[str, ...]
    examples: tuple[Example, ...]
    image_question: str = ""
    """The question when the record is shown as an image instead (empty: no image form)."""


DATASETS: tuple[str, ...] = ("topics", "sentiment", "digits", "iris", "wine", "breast_cancer")
RAMP = " .:-=+*#%@"
"""Grey-level ramp for ASCII digits: blank background to dense ink."""


def digit_ascii(pixels: list[int] | tuple[int, ...]) -> str:
    """8x8 grey levels 0..16 -> 8 lines of 8 characters from `RAMP` (0 -> ' ', 16 -> '@')."""
    chars = [RAMP[min(len(RAMP) - 1, int(v) * len(RAMP) // 17)] for v in pixels]
    return "\n".join("".join(chars[r * 8 : r * 8 + 8]) for r in range(8))


def digit_image(pixels: tuple[int, ...], size: int = 112) -> Any:
    """The 8x8 digit as a `size` x `size` RGB PIL image, dark ink on white (nearest upscaling)."""
    from PIL import Image

    grey = bytes(255 - round(int(v) * 255 / 16) for v in pixels)
    return Image.frombytes("L", (8, 8), grey).resize((size, size), Image.NEAREST).convert("RGB")


def format_value(v: float) -> str:
    """A feature value rounded to 4 significant digits, never in exponent notation."""
    import numpy as np

    return np.format_float_positional(float(v), precision=4, unique=True, fractional=False,
                                      trim="-")


def render_record(names: list[str], values: list[float]) -> str:
    """``feature name: value`` lines."""
    return "\n".join(f"{n}: {format_value(v)}" for n, v in zip(names, values))


def _digits() -> Dataset:
    from sklearn.datasets import load_digits

    d = load_digits()
    examples = []
    for x, y in zip(d.data, d.target):
        pixels = tuple(int(v) for v in x)
        examples.append(Example(digit_ascii(pixels), str(int(y)), pixels))
    return Dataset("digits", "Which digit (0-9) is drawn in this 8x8 grid?",
                   tuple(str(i) for i in range(10)), tuple(examples),
                   image_question="Which digit (0-9) is drawn in the image?")


def _table(name: str, question: str, classes: tuple[str, ...] | None = None,
           feature_prefix: str = "") -> Dataset:
    """A scikit-learn table; `classes` renames the targets, `feature_prefix` filters columns."""
    import sklearn.datasets

    d = getattr(sklearn.datasets, f"load_{name}")()
    names = classes or tuple(str(t) for t in d.target_names)
    cols = [i for i, f in enumerate(d.feature_names) if f.startswith(feature_prefix)]
    features = [str(d.feature_names[i]) for i in cols]
    examples = tuple(
        Example(render_record(features, [row[i] for i in cols]), names[int(y)])
        for row, y in zip(d.data, d.target)
    )
    return Dataset(name, question, names, examples)


def _generated(name: str, question: str, pairs: list[tuple[str, str]],
               classes: tuple[str, ...]) -> Dataset:
    return Dataset(name, question, classes, tuple(Example(t, y) for t, y in pairs))


@lru_cache(maxsize=None)
def load_dataset(name: str) -> Dataset:
    """The named dataset (built once per process). Raises ValueError for an unknown name."""
    if name == "topics":
        return _generated("topics", "What is the topic of this news snippet?",
                          synthetic.topics(), tuple(synthetic.TOPICS))
    if name == "sentiment":
        return _generated("sentiment", "Is this product review positive or negative?",
                          synthetic.sentiment(), tuple(synthetic.SENTIMENT))
    if name == "digits":
        return _digits()
    if name == "iris":
        return _table("iris", "Which species of iris has these measurements?")
    if name == "wine":
        return _table("wine", "Which of three cultivars (grape growers) made this wine?",
                      ("cultivar_1", "cultivar_2", "cultivar_3"))
    if name == "breast_cancer":
        # scikit-learn's target 0 = malignant, 1 = benign
        return _table("breast_cancer", "Is this breast tumour malignant or benign?",
                      feature_prefix="mean ")
    raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")


def load_examples(dataset: str) -> list[Example]:
    """The examples of `dataset`, in their fixed order (the order task ids index)."""
    return list(load_dataset(dataset).examples)
