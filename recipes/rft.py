"""RFT: rejection-sampling fine-tuning of a WebShop agent (the baseline EEF improves on).

RFT: Yuan et al. 2023, arXiv 2308.01825; as an agent-tuning baseline in EEF (arXiv 2504.13145).

Behaviour-clone the expert's successful episodes, then iterate: the agent explores every
training task from its start state, successful episodes are kept (shortest per task), and the
policy is fine-tuned on the expert successes plus everything kept. Same stages, data and
config as the `eef` recipe with ``method = "rft"`` (expert failures are never explored).

Run:  rlpost recipe run rft
"""

from __future__ import annotations

from rlpost.errors import RlpostError
from rlpost.generate import Generator
from rlpost.recipes import eef
from rlpost.recipes.eef import Config

NAME = "rft"


def _rft(make):
    def preset() -> Config:
        cfg = make()
        cfg.method = "rft"
        return cfg

    preset.__doc__ = make.__doc__
    return preset


PRESETS = {name: _rft(make) for name, make in eef.PRESETS.items()}
validate = eef.validate


def main(cfg: Config, name: str = NAME, generator: Generator | None = None,
         zero_shot: bool = True) -> dict[str, float]:
    """Zero-shot eval, expert episodes, BC, then `cfg.iterations` RFT iterations."""
    if cfg.method != "rft":
        raise RlpostError("the rft recipe runs method=rft; use the eef recipe for EEF")
    return eef.main(cfg, name, generator, zero_shot)
