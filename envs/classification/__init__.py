"""Few-shot classification env (CLS-RL prompts and rewards) over data that ships offline.

Seams: `data` (datasets and rendering), `synthetic` (our generated text tasks), `splits`
(k-shot splits and candidate lists, pure), `env` (config, prompt, grading, the env).
"""

from rlpost.envs.classification.data import (DATASETS, Dataset, Example, load_dataset,
                                             load_examples)
from rlpost.envs.classification.env import (ANSWER_SUFFIX, THINK_SUFFIX, ClassificationConfig,
                                            ClassificationEnv, build_prompt, grade)
from rlpost.envs.classification.splits import (candidates_for, cls_rl_candidates, cls_rl_k,
                                               make_splits)

__all__ = ["ANSWER_SUFFIX", "DATASETS", "THINK_SUFFIX", "ClassificationConfig",
           "ClassificationEnv", "Dataset", "Example", "build_prompt", "candidates_for",
           "cls_rl_candidates", "cls_rl_k", "grade", "load_dataset", "load_examples",
           "make_splits"]
