"""The policy interface shared by every network: token observations in, logits out.

A policy reads the env's token layout ``[BOS, prompt..., SEP, generated..., PAD...]`` and
predicts the next token at every position. Two ways in:

- ``forward(tokens)``: the whole sequence at once (teacher forcing and loss computation);
- ``prefill`` then ``step``: incremental decoding for rollouts, with a carried state (GRU hidden
  state, transformer KV cache) so that a rollout costs one token per call, not the whole prefix.

Both paths must give the same logits; ``tests/agents/test_policies.py`` checks it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch
from torch import nn

State = Any  # opaque per-policy decoding state (a tensor or a cache object)


def masked_logits(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Set the logits of illegal actions to the dtype's lowest finite value.

    A finite value (not -inf) keeps ``p * log p`` at 0 for masked actions, so entropies and KL
    terms stay free of NaN.

    Args:
        logits: (..., V) raw logits.
        mask: (..., V) bool, True where the action is allowed.

    Returns:
        (..., V) logits with disallowed entries replaced.
    """
    return logits.masked_fill(~mask, torch.finfo(logits.dtype).min)


class Policy(nn.Module, ABC):
    """Base class: a causal next-token network with a linear head and an optional value head.

    Subclasses implement ``features``, ``prefill`` and ``step``; the base supplies the heads.

    Args:
        vocab_size: number of tokens V (the env's action space size).
        width: feature size D that the heads read.
        value_head: also build a scalar value head (for a learned REINFORCE baseline).
    """

    def __init__(self, vocab_size: int, width: int, value_head: bool) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.lm_head = nn.Linear(width, vocab_size)
        self.value_head = nn.Linear(width, 1) if value_head else None

    @abstractmethod
    def features(self, tokens: torch.Tensor) -> torch.Tensor:
        """Causal features for every position: (B, T) int64 -> (B, T, D)."""

    @abstractmethod
    def prefill(self, tokens: torch.Tensor, last: torch.Tensor) -> tuple[torch.Tensor, State]:
        """Read each row's prefix ``tokens[b, : last[b] + 1]`` and start decoding.

        Args:
            tokens: (B, T) int64 padded prefixes (anything after ``last`` is ignored).
            last: (B,) int64 index of each row's last real token (the SEP position).

        Returns:
            Features at ``last`` (B, D) and the state to pass to ``step``.
        """

    @abstractmethod
    def step(
        self, token: torch.Tensor, pos: torch.Tensor, state: State
    ) -> tuple[torch.Tensor, State]:
        """Append one token per row and return the new last-position features.

        Args:
            token: (B,) int64 token just emitted.
            pos: (B,) int64 position that token occupies in the sequence.
            state: the state from ``prefill`` or the previous ``step``.

        Returns:
            Features at ``pos`` (B, D) and the updated state.
        """

    def logits(self, feats: torch.Tensor) -> torch.Tensor:
        """Next-token logits from features: (..., D) -> (..., V)."""
        return self.lm_head(feats)

    def values(self, feats: torch.Tensor) -> torch.Tensor:
        """State values from features: (..., D) -> (...). Needs ``value_head=True``."""
        if self.value_head is None:
            raise RuntimeError("this policy has no value head; build it with value_head=True")
        return self.value_head(feats).squeeze(-1)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Next-token logits at every position: (B, T) -> (B, T, V)."""
        return self.logits(self.features(tokens))
