"""No-Thinking-CLS-RL: the same GRPO classification fine-tuning, answering directly.

Paper: "Think or Not Think" (arXiv 2503.16188), the No-Thinking-RL variant: the prompt asks
"Please directly output the answer." and the only reward is exact equality of the whole
completion with the label (case-sensitive, no format reward). The paper finds it matches or beats
CLS-RL on classification with far shorter completions (and faster training).

What differs here: as in `cls-rl` (text classification on the bundled 135M model for the quick
CPU config; the paper's hyper-parameters in the paper config). Completions are capped at 16
tokens in the quick config, since an answer is a class name.

Results (``python benchmarks/learning_cls.py --recipe no-think-cls-rl``, quick config, 2-core
CPU, ~6.7 min a seed): held-out greedy accuracy on 120 topic tasks (6 classes) rises from 0.183
zero-shot to 0.806 after 20 steps (seeds 0/1/2: 0.658, 0.842, 0.917; spread 0.258).

Run:  rlpost recipe run no-think-cls-rl
"""

from __future__ import annotations

from rlpost.generate import Generator
from rlpost.recipes import cls_rl
from rlpost.recipes.cls_rl import Config, validate  # noqa: F401  (same checks)

NAME = "no-think-cls-rl"


def _answer_only(cfg: Config, max_tokens: int) -> Config:
    cfg.env.prompt_style = "answer"
    cfg.algo.max_tokens = max_tokens
    cfg.format_weight = 0.0
    return cfg


def quick() -> Config:
    return _answer_only(cls_rl.quick(), 16)


def smoke() -> Config:
    return _answer_only(cls_rl.smoke(), 8)


def paper() -> Config:
    return _answer_only(cls_rl.paper(), 128)


PRESETS = {"quick": quick, "smoke": smoke, "paper": paper}


def main(cfg: Config, stop_after: int | None = None, generator: Generator | None = None
         ) -> dict[str, float]:
    return cls_rl.main(cfg, name=NAME, stop_after=stop_after, generator=generator)
