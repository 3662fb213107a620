"""Policy networks: token observations -> next-token logits, with incremental decoding."""

from __future__ import annotations

from .base import Policy, State, masked_logits
from .gru import GRUConfig, GRUPolicy
from .transformer import KVCache, TransformerConfig, TransformerPolicy

PolicyConfig = GRUConfig | TransformerConfig


def build_policy(config: PolicyConfig) -> Policy:
    """Build the policy that ``config`` describes.

    Example:
        >>> build_policy(GRUConfig(vocab_size=8)).__class__.__name__
        'GRUPolicy'
    """
    if isinstance(config, GRUConfig):
        return GRUPolicy(config)
    if isinstance(config, TransformerConfig):
        return TransformerPolicy(config)
    raise TypeError(
        f"unknown policy config {type(config).__name__}; expected GRUConfig or TransformerConfig"
    )


__all__ = [
    "GRUConfig",
    "GRUPolicy",
    "KVCache",
    "Policy",
    "PolicyConfig",
    "State",
    "TransformerConfig",
    "TransformerPolicy",
    "build_policy",
    "masked_logits",
]
