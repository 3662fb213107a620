"""Resolve a device spec such as ``"auto"`` to a ``torch.device``."""

from __future__ import annotations

import torch

DeviceLike = str | torch.device


def resolve_device(device: DeviceLike = "auto") -> torch.device:
    """Return the torch device for ``device``.

    Args:
        device: ``"auto"`` (CUDA when available, else CPU), or anything ``torch.device`` accepts.

    Returns:
        The resolved device.

    Raises:
        ValueError: if ``device`` names CUDA and no CUDA device is available.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={str(device)!r} but CUDA is not available; use 'auto' or 'cpu'")
    return resolved
