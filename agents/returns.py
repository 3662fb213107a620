"""Returns, baselines and advantages for REINFORCE, on padded (B, T) episode batches.

Conventions: row b is one episode; ``valid[b, t]`` is True for its real steps; rewards past the
end are 0. Returns are defined on every column (not only valid ones) so that baselines can compare
episodes of different lengths: past its end an episode's ``env`` return is 0 (no reward is left)
and its ``broadcast`` return stays its total.
"""

from __future__ import annotations

import torch

CREDITS = ("env", "broadcast")
BASELINES = ("none", "mean", "rloo", "value")


def discounted_returns(rewards: torch.Tensor, gamma: float) -> torch.Tensor:
    """``G_t = sum_{k >= t} gamma^(k - t) r_k`` per row.

    Args:
        rewards: (B, T) per-step rewards, 0 past each episode's end.
        gamma: discount in [0, 1].

    Returns:
        (B, T) reward-to-go.

    Example:
        >>> discounted_returns(torch.tensor([[1.0, 0.0, 2.0]]), 0.5)
        tensor([[1.5000, 1.0000, 2.0000]])
    """
    out = torch.empty_like(rewards)
    running = torch.zeros_like(rewards[:, 0])
    for t in range(rewards.shape[1] - 1, -1, -1):  # T is the generation length: short
        running = rewards[:, t] + gamma * running
        out[:, t] = running
    return out


def broadcast_returns(rewards: torch.Tensor, gamma: float) -> torch.Tensor:
    """Every step gets the episode's (discounted from t=0) total ``sum_k gamma^k r_k``.

    Args:
        rewards: (B, T) per-step rewards, 0 past each episode's end.
        gamma: discount in [0, 1]; with 1 this is the plain sum of rewards.

    Returns:
        (B, T) with each row constant.
    """
    discount = gamma ** torch.arange(rewards.shape[1], device=rewards.device, dtype=rewards.dtype)
    total = (rewards * discount).sum(1, keepdim=True)  # (B, 1)
    return total.expand_as(rewards).clone()


def returns(rewards: torch.Tensor, gamma: float, credit: str) -> torch.Tensor:
    """Dispatch on ``credit``: ``"env"`` -> reward-to-go, ``"broadcast"`` -> episode total."""
    if credit == "env":
        return discounted_returns(rewards, gamma)
    if credit == "broadcast":
        return broadcast_returns(rewards, gamma)
    raise ValueError(f"credit={credit!r} is invalid; expected one of {CREDITS}")


def batch_baseline(g: torch.Tensor, kind: str, group_size: int = 1) -> torch.Tensor:
    """A baseline per (episode, step) computed from the batch's returns.

    Args:
        g: (B, T) returns on every column (see module docstring).
        kind: ``"none"`` (zeros), ``"mean"`` (mean over the batch at each step; it includes the
            episode itself, which shrinks the gradient's expectation by a factor 1 - 1/B),
            or ``"rloo"`` (mean over the other ``group_size - 1`` samples of the same prompt:
            unbiased). Rows ``[i * k, (i + 1) * k)`` must share a prompt for ``"rloo"``.
        group_size: k, the samples per prompt; ``"rloo"`` needs k >= 2 and B divisible by k.

    Returns:
        (B, T) baseline, without gradient.
    """
    g = g.detach()
    if kind == "none":
        return torch.zeros_like(g)
    if kind == "mean":
        return g.mean(0, keepdim=True).expand_as(g)
    if kind == "rloo":
        b, t = g.shape
        if group_size < 2 or b % group_size:
            raise ValueError(
                f"rloo needs group_size >= 2 dividing the batch; got group_size={group_size}, "
                f"batch={b}"
            )
        grouped = g.view(b // group_size, group_size, t)
        others = (grouped.sum(1, keepdim=True) - grouped) / (group_size - 1)
        return others.reshape(b, t)
    raise ValueError(f"baseline={kind!r} is not a batch baseline; expected none, mean or rloo")


def normalize(adv: torch.Tensor, valid: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Standardise advantages over the valid entries; invalid entries become 0."""
    n = valid.sum().clamp(min=1)
    mean = (adv * valid).sum() / n
    var = (((adv - mean) * valid) ** 2).sum() / n
    return (adv - mean) / (var.sqrt() + eps) * valid
