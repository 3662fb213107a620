"""A features extractor that reads token ids as tokens, not as floats.

SB3 hands a ``Box`` observation to the policy as a float tensor; ``MlpPolicy`` then feeds the
ids to a linear layer as magnitudes, which means nothing for a vocabulary. ``TokenExtractor``
casts them back to ids, embeds them and summarises the sequence with a GRU (read up to the last
non-PAD position) or a masked mean over the non-PAD positions (with learned position
embeddings, so order is not lost) joined with the last token's embedding. Its size grows with
the embedding width, not with V x L.
"""

from __future__ import annotations

import gymnasium as gym
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from ..config import SB3_POOLINGS as POOLINGS


class TokenExtractor(BaseFeaturesExtractor):
    """Embed the token ids of a TokenGen observation and pool them into one feature vector.

    Args:
        observation_space: the env's ``Box(0, V-1, (L,), int64)``.
        pad_id: the tokenizer's PAD id (``env.unwrapped.tokenizer.pad_id``); PAD only ever fills
            the tail of an observation.
        embed_dim: token embedding width.
        hidden_dim: output feature size (the GRU's hidden size, or the projection after pooling).
        pooling: "gru" (the GRU state at the last non-PAD token) or "mean" (the masked mean of
            token plus position embeddings, concatenated with the last non-PAD token's, then a
            linear layer and ReLU: the mean alone dilutes the newest token by the length).

    Example:
        >>> policy_kwargs = {"features_extractor_class": TokenExtractor,
        ...                  "features_extractor_kwargs": {"pad_id": 0}}
    """

    def __init__(
        self,
        observation_space: gym.spaces.Box,
        pad_id: int,
        embed_dim: int = 32,
        hidden_dim: int = 64,
        pooling: str = "gru",
    ) -> None:
        if pooling not in POOLINGS:
            raise ValueError(f"pooling={pooling!r} is invalid; expected one of {POOLINGS}")
        if len(observation_space.shape) != 1:
            raise ValueError(
                f"observation_space.shape={observation_space.shape} is invalid; expected (L,) "
                f"token ids"
            )
        for name, value in (("embed_dim", embed_dim), ("hidden_dim", hidden_dim)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r} is invalid; expected an int >= 1")
        super().__init__(observation_space, features_dim=hidden_dim)
        vocab_size = int(observation_space.high.max()) + 1
        if not 0 <= pad_id < vocab_size:
            raise ValueError(f"pad_id={pad_id!r} is invalid; expected an int in [0, {vocab_size})")
        self.pad_id = pad_id
        self.pooling = pooling
        self.embed = nn.Embedding(vocab_size, embed_dim)
        if pooling == "gru":
            self.gru = nn.GRU(embed_dim, hidden_dim, batch_first=True)
        else:
            self.position = nn.Embedding(observation_space.shape[0], embed_dim)
            self.proj = nn.Sequential(nn.Linear(2 * embed_dim, hidden_dim), nn.ReLU())

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        """(B, L) float token ids -> (B, hidden_dim) features."""
        tokens = observations.long()  # (B, L): SB3 preprocessing made them floats
        real = tokens != self.pad_id  # (B, L)
        last = real.sum(1).clamp(min=1) - 1  # (B,) index of the last non-PAD token
        rows = torch.arange(tokens.shape[0], device=tokens.device)
        x = self.embed(tokens)  # (B, L, E)
        if self.pooling == "gru":
            out, _ = self.gru(x)  # (B, L, H)
            return out[rows, last]  # (B, H)
        x = x + self.position.weight[None, : tokens.shape[1]]  # (B, L, E)
        weights = real.unsqueeze(-1).to(x.dtype)  # (B, L, 1)
        pooled = (x * weights).sum(1) / weights.sum(1).clamp(min=1.0)  # (B, E)
        return self.proj(torch.cat([pooled, x[rows, last]], dim=-1))  # (B, H)
