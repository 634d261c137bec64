"""WebShop (Yao et al. 2022) as a text environment that installs with the package and runs offline.

Registered as ``rlpost/WebShop-v0``. Modules: ``catalog``/``vocab`` (the synthetic product
catalog in the original raw schema), ``engine`` (loading, prices, goals, splits, index),
``search`` (BM25), ``pages`` (the site's pages and their text), ``goal`` (the reward), ``env``
(the gym-style env) and ``expert`` (scripted oracle and weak experts).
"""

from rlpost.envs.webshop.env import WebShopConfig, WebShopEnv
from rlpost.envs.webshop.expert import WEAK_EXPERT, Expert, ExpertConfig

__all__ = ["WebShopConfig", "WebShopEnv", "WEAK_EXPERT", "Expert", "ExpertConfig"]
