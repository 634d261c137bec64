"""Built-in environments, registered by id; the core reaches them only through these strings."""

from rlpost.env import register

register("rlpost/Classification-v0", "rlpost.envs.classification:ClassificationEnv", max_turns=1)
register("rlpost/GuessNumber-v0", "rlpost.envs.guess_number:GuessNumberEnv", max_turns=6)
register("rlpost/WebShop-v0", "rlpost.envs.webshop.env:WebShopEnv", max_turns=15)
register("rlpost/ToolUse-v0", "rlpost.envs.tooluse.env:ToolUseEnv", max_turns=1)
# 32 model turns (each call step and each closing text reply is one): the ground truth played
# one call per step takes at most 17 (two long-context entries have a 34-call turn, which fits
# the 20-step cap only with several calls per step); the rest is slack for retries
register("rlpost/ToolUseMultiTurn-v0",
         "rlpost.envs.tooluse.multi_turn.env:ToolUseMultiTurnEnv", max_turns=32)
