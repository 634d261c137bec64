"""Tool use on BFCL data: single-step calls (`rlpost/ToolUse-v0`) and multi-turn episodes over
BFCL's stateful APIs (`rlpost/ToolUseMultiTurn-v0`)."""
