"""PPO's critic: a value head on a language model's backbone, and the one forward that gives the
policy's logprobs and the critic's values of the same action tokens.

Two kinds (`CriticKind`):

- ``"separate"``: a copy of the policy's backbone (its decoder, without the LM head) with a
  value head: its own weights and optimizer, initialised from the policy at the start of the run
  (TL-Training initialises the critic from the PKT model; DeepSpeed-Chat and OpenRLHF from a
  separate model; Ouyang et al. 2022 from the reward model). Costs a second backbone.
- ``"shared"``: a value head on the policy's own backbone (the shared-trunk actor-critic of
  Schulman et al. 2017, sec. 5): one forward gives logits and values, and the value loss also
  trains the backbone (at the actor's learning rate, weighted by `vf_coef`).

V(s_t) is read from the hidden state that predicts action token t (`policy.action_hidden`): the
state after the prompt and the action's earlier tokens.
"""

from __future__ import annotations

import copy
import typing
from collections.abc import Sequence
from typing import Literal

import torch

from rlpost.policy import Policy, action_hidden, scatter_logprobs

CriticKind = Literal["separate", "shared"]
CRITIC_KINDS = typing.get_args(CriticKind)


class Critic(torch.nn.Module):
    """V(s) for the action tokens of `policy`'s rows: a linear value head (hidden size -> 1,
    float32, PyTorch's default init seeded by `seed`) on a backbone (see the module docstring).
    Its `state_dict` holds what it owns: the head, and with kind "separate" the backbone copy.
    Raises ValueError on an unknown kind."""

    def __init__(self, policy: Policy, kind: CriticKind = "separate", seed: int = 0):
        super().__init__()
        if kind not in CRITIC_KINDS:
            raise ValueError(f"unknown critic kind {kind!r}; one of {', '.join(CRITIC_KINDS)}")
        self.kind = kind
        hidden = policy.model.config.get_text_config().hidden_size
        if kind == "separate":
            self.backbone = copy.deepcopy(policy.model.get_decoder())
            for p in self.backbone.parameters():
                p.requires_grad_(True)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.head = torch.nn.Linear(hidden, 1, dtype=torch.float32)
        self.to(policy.device)

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        """What the critic's optimizer steps: the head (and the backbone copy when separate)."""
        return [p for p in self.parameters() if p.requires_grad]


def logprobs_and_values(policy: Policy, critic: Critic, rows: Sequence[tuple[list[int], list[int]]],
                        loss_masks: Sequence[Sequence[bool] | None] | None, temperature: float,
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The policy's logprobs of each row's action tokens (at `temperature`, see
    `policy.action_logprobs`) and the critic's values of the states before them.

    rows: B pairs (prompt_ids, action_ids); loss_masks as in `policy.action_logprobs`.
    Returns (logprobs [B, A], values [B, A] float32, mask [B, A]); 0 outside the mask. Runs in
    the policy's autocast; the value head in float32. Gradients flow (wrap in no_grad to score).
    """
    pad = policy.tokenizer.pad_token_id
    with policy.autocast_ctx():
        hidden, targets, mask = action_hidden(policy.model.get_decoder(), rows, pad,
                                              policy.device, loss_masks)
        logp = scatter_logprobs(policy.model, hidden, targets, mask, temperature)
        if critic.kind == "separate":
            hidden, _, _ = action_hidden(critic.backbone, rows, pad, policy.device, loss_masks)
    values = torch.zeros(mask.shape, dtype=torch.float32, device=mask.device)
    values[mask] = critic.head(hidden.float()).squeeze(-1)
    return logp, values, mask
