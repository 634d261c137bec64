"""Few-shot classification env (CLS-RL prompts and rewards) over data that ships offline."""

from rlpost.envs.classification.data import DATASETS, Dataset, Example, load_dataset
from rlpost.envs.classification.env import (ANSWER_SUFFIX, THINK_SUFFIX, ClassificationConfig,
                                            ClassificationEnv, cls_rl_candidates, make_splits)

__all__ = ["ANSWER_SUFFIX", "DATASETS", "THINK_SUFFIX", "ClassificationConfig",
           "ClassificationEnv", "Dataset", "Example", "cls_rl_candidates", "load_dataset",
           "make_splits"]
