"""Built-in environments, registered by id; the core reaches them only through these strings."""

from rlpost.env import register

register("rlpost/Classification-v0", "rlpost.envs.classification:ClassificationEnv", max_turns=1)
register("rlpost/GuessNumber-v0", "rlpost.envs.guess_number:GuessNumberEnv", max_turns=6)
register("rlpost/WebShop-v0", "rlpost.envs.webshop.env:WebShopEnv", max_turns=15)
register("rlpost/ToolUse-v0", "rlpost.envs.tooluse.env:ToolUseEnv", max_turns=1)
