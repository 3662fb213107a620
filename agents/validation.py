"""Checks shared by the agents' config dataclasses."""

from __future__ import annotations


def check_optimizer_fields(batch_size: object, lr: object, max_grad_norm: object) -> None:
    """Rejects a batch size, learning rate or clipping norm that training cannot use."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} is invalid; expected an int >= 1")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
        raise ValueError(f"lr={lr!r} is invalid; expected a float > 0")
    if max_grad_norm is not None and not (
        isinstance(max_grad_norm, (int, float)) and max_grad_norm > 0
    ):
        raise ValueError(f"max_grad_norm={max_grad_norm!r} is invalid; expected > 0 or None")
