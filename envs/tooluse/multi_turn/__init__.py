"""BFCL multi-turn tool use (`rlpost/ToolUseMultiTurn-v0`): episodes over BFCL's stateful APIs.

Seams: `data` (entries, function docs, ground truth), `executor` (runs parsed calls on an
episode's API instances, never `eval`), `scoring` (bfcl's per-turn state and response checks),
`env` (config, the episode loop, chat).
"""
