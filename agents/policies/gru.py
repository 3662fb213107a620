"""A GRU next-token policy with a carried hidden state for incremental decoding."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from .base import Policy


@dataclass(frozen=True)
class GRUConfig:
    """Sizes of a :class:`GRUPolicy`.

    Attributes:
        vocab_size: number of tokens V (embedding rows and logits).
        embed_size: token embedding width.
        hidden_size: GRU hidden width (the feature size the heads read).
        num_layers: stacked GRU layers.
        value_head: also build a scalar value head.
    """

    vocab_size: int
    embed_size: int = 64
    hidden_size: int = 128
    num_layers: int = 1
    value_head: bool = False

    def __post_init__(self) -> None:
        for name in ("vocab_size", "embed_size", "hidden_size", "num_layers"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"GRUConfig.{name}={value!r} is invalid; expected an int >= 1")


class GRUPolicy(Policy):
    """Embedding -> GRU -> linear head.

    Args:
        config: the sizes.

    Example:
        >>> policy = GRUPolicy(GRUConfig(vocab_size=10))
        >>> policy(torch.zeros(2, 5, dtype=torch.long)).shape
        torch.Size([2, 5, 10])
    """

    def __init__(self, config: GRUConfig) -> None:
        super().__init__(config.vocab_size, config.hidden_size, config.value_head)
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.embed_size)
        self.gru = nn.GRU(
            config.embed_size, config.hidden_size, num_layers=config.num_layers, batch_first=True
        )

    def features(self, tokens: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru(self.embed(tokens))  # (B, T, H)
        return out

    def prefill(
        self, tokens: torch.Tensor, last: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # Packing stops each row at its own length, so h_n is the state after its SEP token.
        lengths = (last + 1).cpu()  # pack_padded_sequence wants CPU lengths; once per rollout
        packed = pack_padded_sequence(
            self.embed(tokens), lengths, batch_first=True, enforce_sorted=False
        )
        _, h = self.gru(packed)  # (layers, B, H), rows in the input order
        return h[-1], h

    def step(
        self, token: torch.Tensor, pos: torch.Tensor, state: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out, h = self.gru(self.embed(token).unsqueeze(1), state)  # (B, 1, H)
        return out[:, 0], h
