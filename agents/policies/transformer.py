"""A small causal transformer policy with a KV cache for incremental decoding."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .base import Policy


@dataclass(frozen=True)
class TransformerConfig:
    """Sizes of a :class:`TransformerPolicy`.

    Attributes:
        vocab_size: number of tokens V.
        max_len: longest sequence (learned positions); at least the env's observation_length.
        d_model: residual width (the feature size the heads read).
        n_layers: transformer blocks.
        n_heads: attention heads; must divide d_model.
        d_ff: hidden width of each MLP (0 means 4 * d_model).
        value_head: also build a scalar value head.
    """

    vocab_size: int
    max_len: int = 64
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    d_ff: int = 0
    value_head: bool = False

    def __post_init__(self) -> None:
        for name in ("vocab_size", "max_len", "d_model", "n_layers", "n_heads"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"TransformerConfig.{name}={value!r} is invalid; expected an int >= 1"
                )
        if not isinstance(self.d_ff, int) or self.d_ff < 0:
            raise ValueError(
                f"TransformerConfig.d_ff={self.d_ff!r} is invalid; expected an int >= 0"
            )
        if self.d_model % self.n_heads:
            raise ValueError(
                f"TransformerConfig.d_model={self.d_model} is not divisible by "
                f"n_heads={self.n_heads}; pick n_heads among the divisors of d_model"
            )


@dataclass
class KVCache:
    """Preallocated keys and values, one slot per position: (layers, B, heads, max_len, head)."""

    k: torch.Tensor
    v: torch.Tensor


class Block(nn.Module):
    """Pre-LayerNorm transformer block; attention goes through ``attend`` so the cache can hook."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.ln1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model))

    def split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, T, D) -> q, k, v each (B, heads, T, D / heads)."""
        b, t, d = x.shape
        qkv = self.qkv(self.ln1(x)).view(b, t, 3, self.n_heads, d // self.n_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (B, h, T, hd)
        return q, k, v

    def finish(self, x: torch.Tensor, att: torch.Tensor) -> torch.Tensor:
        """Residual update from attention output (B, heads, T, hd)."""
        b, _, t, _ = att.shape
        x = x + self.proj(att.transpose(1, 2).reshape(b, t, -1))
        return x + self.mlp(self.ln2(x))


class TransformerPolicy(Policy):
    """Token + learned position embeddings -> causal pre-LN blocks -> LayerNorm -> head.

    Args:
        config: the sizes.

    Example:
        >>> policy = TransformerPolicy(TransformerConfig(vocab_size=10, max_len=8))
        >>> policy(torch.zeros(2, 5, dtype=torch.long)).shape
        torch.Size([2, 5, 10])
    """

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__(config.vocab_size, config.d_model, config.value_head)
        self.config = config
        d_ff = config.d_ff or 4 * config.d_model
        self.tok = nn.Embedding(config.vocab_size, config.d_model)
        self.pos = nn.Embedding(config.max_len, config.d_model)
        self.blocks = nn.ModuleList(
            Block(config.d_model, config.n_heads, d_ff) for _ in range(config.n_layers)
        )
        self.ln_f = nn.LayerNorm(config.d_model)

    def _check_len(self, t: int) -> None:
        if t > self.config.max_len:
            raise ValueError(
                f"sequence length {t} exceeds TransformerConfig.max_len={self.config.max_len}; "
                "build the policy with max_len >= the env's observation_length"
            )

    def _run(self, tokens: torch.Tensor, cache: KVCache | None) -> torch.Tensor:
        t = tokens.shape[1]
        self._check_len(t)
        x = self.tok(tokens) + self.pos.weight[:t]  # (B, T, D)
        for i, block in enumerate(self.blocks):
            q, k, v = block.split(x)
            if cache is not None:
                cache.k[i, :, :, :t] = k
                cache.v[i, :, :, :t] = v
            x = block.finish(x, F.scaled_dot_product_attention(q, k, v, is_causal=True))
        return self.ln_f(x)

    def features(self, tokens: torch.Tensor) -> torch.Tensor:
        return self._run(tokens, None)

    def new_cache(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> KVCache:
        """Allocate an empty cache for ``batch_size`` rows."""
        c = self.config
        shape = (c.n_layers, batch_size, c.n_heads, c.max_len, c.d_model // c.n_heads)
        return KVCache(
            torch.zeros(shape, device=device, dtype=dtype),
            torch.zeros(shape, device=device, dtype=dtype),
        )

    def prefill(self, tokens: torch.Tensor, last: torch.Tensor) -> tuple[torch.Tensor, KVCache]:
        # Slots past a row's SEP hold pad keys for now; step() overwrites them before any query
        # can see them, since a query at pos only attends to slots <= pos.
        cache = self.new_cache(tokens.shape[0], tokens.device, self.tok.weight.dtype)
        tokens = tokens[:, : int(last.max()) + 1]  # no column after the last SEP; one sync
        x = self._run(tokens, cache)  # (B, T', D)
        rows = torch.arange(tokens.shape[0], device=tokens.device)
        return x[rows, last], cache

    def step(
        self, token: torch.Tensor, pos: torch.Tensor, state: KVCache
    ) -> tuple[torch.Tensor, KVCache]:
        rows = torch.arange(token.shape[0], device=token.device)
        x = (self.tok(token) + self.pos(pos)).unsqueeze(1)  # (B, 1, D)
        slots = torch.arange(self.config.max_len, device=token.device)
        visible = (slots[None, :] <= pos[:, None])[:, None, None, :]  # (B, 1, 1, max_len)
        for i, block in enumerate(self.blocks):
            q, k, v = block.split(x)  # (B, h, 1, hd)
            state.k[i, rows, :, pos] = k[:, :, 0]
            state.v[i, rows, :, pos] = v[:, :, 0]
            att = F.scaled_dot_product_attention(q, state.k[i], state.v[i], attn_mask=visible)
            x = block.finish(x, att)
        return self.ln_f(x)[:, 0], state
