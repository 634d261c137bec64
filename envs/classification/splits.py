"""Pure sampling rules of the classification env: k-shot / held-out splits and candidate lists.

Everything here is a function of its arguments and an explicit seed, so a split and a task's
candidate order are the same in every process (string seeds hash with SHA-512 in `random`,
independent of PYTHONHASHSEED).
"""

from __future__ import annotations

import random


def make_splits(labels: list[str], shots: int, n_test: int,
                seed: int) -> tuple[list[int], list[int]]:
    """k-shot train indices and held-out test indices into `labels`, both sorted.

    Train holds `shots` examples of each class (all of a class that has fewer). Test holds up to
    `n_test` of the remaining examples, drawn round-robin over the classes (in order of first
    appearance) so it is balanced wherever the classes have enough left. The two are disjoint.
    """
    rng = random.Random(f"splits:{seed}")
    by_class: dict[str, list[int]] = {}
    for i, y in enumerate(labels):
        by_class.setdefault(y, []).append(i)
    for idx in by_class.values():
        rng.shuffle(idx)
    train = sorted(i for idx in by_class.values() for i in idx[:shots])
    pools = [idx[shots:] for idx in by_class.values()]
    test: list[int] = []
    while len(test) < n_test and any(pools):
        for pool in pools:
            if pool and len(test) < n_test:
                test.append(pool.pop())
    return train, sorted(test)


def cls_rl_k(n_classes: int) -> int:
    """CLS-RL's candidate-list size: 40% of the classes (rounded down) clipped to [30, 100];
    all classes when there are fewer than 30 (and never more than there are)."""
    if n_classes < 30:
        return n_classes
    return min(max(int(0.4 * n_classes), 30), 100, n_classes)


def cls_rl_candidates(classes: list[str], label: str, rng: random.Random) -> list[str]:
    """CLS-RL's candidate list: `cls_rl_k` classes, the ground truth always among them, shuffled."""
    k = cls_rl_k(len(classes))
    others = [c for c in classes if c != label]
    out = [label] + (others if k >= len(classes) else rng.sample(others, k - 1))
    rng.shuffle(out)
    return out


def candidates_for(classes: list[str], label: str, rule: str, split_seed: int,
                   task_id: int) -> list[str]:
    """The candidate list shown for one task: fixed by (split_seed, task_id).

    rule ``"all"``: every class, shuffled; ``"cls_rl"``: `cls_rl_candidates`.
    """
    rng = random.Random(f"candidates:{split_seed}:{task_id}")
    if rule == "cls_rl":
        return cls_rl_candidates(classes, label, rng)
    out = list(classes)
    rng.shuffle(out)
    return out
