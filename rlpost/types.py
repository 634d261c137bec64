"""The data that flows between stages: messages, steps, trajectories, preference pairs.

Every stage boundary in rlpost is one of these dataclasses. Token ids recorded at rollout time
are the ones trained on: nothing is re-tokenized between rollout and update.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from collections.abc import Hashable
from typing import Any


@dataclass
class Message:
    """One chat message; `images` holds PIL images for vision-language models, `tools` the
    function schemas (JSON-schema dicts) offered from this message on (rendered by
    `rlpost.chat.render_chat`: the template's ``tools=`` or text in the content)."""

    role: str
    content: str
    images: list[Any] = field(default_factory=list)
    tools: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass
class Step:
    """One agent turn: the prompt the model saw, the tokens it sampled, what the env answered."""

    prompt_ids: list[int]
    action_ids: list[int]
    sample_logprobs: list[float]
    """Logprobs of `action_ids` under the generator's sampling distribution, as it reported them."""
    action_text: str
    reward: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)
    finish_reason: str = "stop"
    anchor: Hashable = None
    """The env's name for the state this step acted from (`obs["anchor"]`): GiGPO's step groups."""
    advantage: float = 0.0
    """This step's advantage, written by the trainer (GRPO: its trajectory's; GiGPO: + step term)."""


@dataclass
class Trajectory:
    """One episode of one env copy. `group_id` ties the G copies of one task together."""

    task_id: Any
    group_id: int
    steps: list[Step] = field(default_factory=list)
    reward: float = 0.0
    """Total reward used for the advantage (env reward plus reward functions, weighted)."""
    components: dict[str, float] = field(default_factory=dict)
    """Per-component rewards (unweighted), for metrics."""
    success: bool = False
    terminated: bool = False
    truncated: bool = False
    advantage: float = 0.0
    """Episode-level advantage (GRPO's group-relative one), written by the trainer."""
    task: dict[str, Any] = field(default_factory=dict)
    """The task's record with its ground truth (reset's ``info["task"]``), for reward models
    and judges."""
    messages: list[Message] = field(default_factory=list)
    """The chat of the last turn followed by the last action (as an assistant message)."""

    @property
    def env_reward(self) -> float:
        return sum(s.reward for s in self.steps)

    @property
    def final_info(self) -> dict[str, Any]:
        return self.steps[-1].info if self.steps else {}

    @property
    def completion_text(self) -> str:
        """All actions joined; for single-turn envs, the completion."""
        return "\n".join(s.action_text for s in self.steps)

    @property
    def num_action_tokens(self) -> int:
        return sum(len(s.action_ids) for s in self.steps)


@dataclass
class PreferencePair:
    """A shared prompt with a chosen and a rejected continuation (DPO/SimPO/IPO)."""

    prompt_ids: list[int]
    chosen_ids: list[int]
    rejected_ids: list[int]
    chosen_score: float = 0.0
    rejected_score: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)
