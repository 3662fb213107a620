"""Returns, baselines and advantages for REINFORCE, on padded (B, T) episode batches.

Conventions: row b is one episode; ``valid[b, t]`` is True for its real steps; rewards past the
end are 0. R is the episode's sequence reward (the env's ``info["sequence_reward"]``) and T_b
its last step. The credit modes (``CREDITS``) decide the return G_t that weights
``grad log pi(a_t|s_t)``:

| credit | per-step rewards r_k | G_t |
|---|---|---|
| ``"final"`` | R at k = T_b, else 0 | ``gamma^(T_b - t) R`` (reward-to-go) |
| ``"every_token"`` | R at every k <= T_b | ``sum_{k=t..T_b} gamma^(k - t) R`` |
| ``"trajectory"`` | the env's rewards | ``G_0 = sum_k gamma^k r_k`` on every step |
| ``"env"`` | the env's rewards | ``sum_{k>=t} gamma^(k - t) r_k`` (reward-to-go) |

``"final"`` and ``"every_token"`` read R, never the env's per-step rewards, so they are the same
under every ``reward_mode``; under ``reward_mode="terminal"`` ``"final"`` equals ``"env"``.
Returns are defined on every column (not only valid ones) so that baselines can compare
episodes of different lengths: past its end a reward-to-go return is 0 (no reward is left) and
a ``"trajectory"`` return stays its total.
"""

from __future__ import annotations

import torch

from .choices import CREDITS


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
    running = torch.zeros_like(rewards[..., 0])
    for t in range(rewards.shape[-1] - 1, -1, -1):  # T is the generation length: short
        running = rewards[..., t] + gamma * running
        out[..., t] = running
    return out


def trajectory_returns(rewards: torch.Tensor, gamma: float) -> torch.Tensor:
    """Every step gets the episode's return from its start, ``G_0 = sum_k gamma^k r_k``.

    Args:
        rewards: (B, T) per-step rewards, 0 past each episode's end.
        gamma: discount in [0, 1]; with 1 this is the plain sum of rewards.

    Returns:
        (B, T) with each row constant.

    Example:
        >>> trajectory_returns(torch.tensor([[1.0, 0.0, 2.0]]), 0.5)
        tensor([[1.5000, 1.5000, 1.5000]])
    """
    discount = gamma ** torch.arange(rewards.shape[-1], device=rewards.device, dtype=rewards.dtype)
    total = (rewards * discount).sum(-1, keepdim=True)  # (B, 1)
    return total.expand_as(rewards).clone()


def sequence_rewards(
    sequence_reward: torch.Tensor, valid: torch.Tensor, credit: str
) -> torch.Tensor:
    """The per-step rewards that R stands for under ``"final"`` or ``"every_token"``.

    Args:
        sequence_reward: (B,) R of each episode.
        valid: (B, T) bool, True on each episode's real steps.
        credit: ``"final"`` (R on the last valid step) or ``"every_token"`` (R on every one).

    Returns:
        (B, T) rewards, 0 past each episode's end.

    Example:
        >>> valid = torch.tensor([[True, True, False]])
        >>> sequence_rewards(torch.tensor([2.0]), valid, "final")
        tensor([[0., 2., 0.]])
    """
    steps = valid.to(sequence_reward.dtype)  # (B, T)
    if credit == "final":
        following = torch.cat([valid[..., 1:], torch.zeros_like(valid[..., :1])], -1)  # (B, T)
        steps = (valid & ~following).to(sequence_reward.dtype)  # 1 on the last valid step
    return sequence_reward[..., None] * steps


def returns(
    rewards: torch.Tensor,
    gamma: float,
    credit: str,
    sequence_reward: torch.Tensor | None = None,
    valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """The returns G_t of a credit mode (see the module docstring's table).

    Args:
        rewards: (B, T) the env's per-step rewards, 0 past each episode's end.
        gamma: discount in [0, 1].
        credit: one of ``CREDITS``.
        sequence_reward: (B,) R per episode; needed by ``"final"`` and ``"every_token"``.
        valid: (B, T) bool real steps; needed by ``"final"`` and ``"every_token"``.

    Returns:
        (B, T) returns.

    Example:
        >>> valid = torch.tensor([[True, True, False]])
        >>> returns(torch.zeros(1, 3), 0.5, "every_token", torch.tensor([2.0]), valid)
        tensor([[3., 2., 0.]])
    """
    if credit == "env":
        return discounted_returns(rewards, gamma)
    if credit == "trajectory":
        return trajectory_returns(rewards, gamma)
    if credit in ("final", "every_token"):
        if sequence_reward is None or valid is None:
            raise ValueError(f"credit={credit!r} needs the sequence rewards R and the valid mask")
        r = sequence_rewards(sequence_reward.to(rewards.dtype), valid, credit)
        return discounted_returns(r, gamma)
    raise ValueError(f"credit={credit!r} is invalid; expected one of {CREDITS}")


def step_rewards(
    rewards: torch.Tensor,
    credit: str,
    sequence_reward: torch.Tensor | None = None,
    valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """The per-step rewards r_t whose reward-to-go is the credit's G_t (read by GAE).

    ``"trajectory"`` has none (its G_t is not a reward-to-go), so it is an error.

    Example:
        >>> step_rewards(torch.zeros(1, 2), "final", torch.tensor([1.0]), torch.ones(1, 2) > 0)
        tensor([[0., 1.]])
    """
    if credit == "env":
        return rewards
    if credit in ("final", "every_token"):
        if sequence_reward is None or valid is None:
            raise ValueError(f"credit={credit!r} needs the sequence rewards R and the valid mask")
        return sequence_rewards(sequence_reward.to(rewards.dtype), valid, credit)
    raise ValueError(
        f"credit={credit!r} has no per-step rewards; expected final, every_token or env"
    )


def batch_baseline(g: torch.Tensor, kind: str, group_size: int = 1) -> torch.Tensor:
    """A baseline per (episode, step) computed from the batch's returns.

    Args:
        g: (..., B, T) returns on every column (see module docstring); leading dims are
            independent batches.
        kind: ``"none"`` (zeros), ``"mean"`` (mean over the batch at each step; it includes the
            episode itself, which shrinks the gradient's expectation by a factor 1 - 1/B),
            ``"rloo"`` (mean over the other ``group_size - 1`` samples of the same prompt:
            unbiased) or ``"group"`` (mean over the group, itself included: GRPO's baseline,
            which shrinks the expectation by 1 - 1/k). Rows ``[i * k, (i + 1) * k)`` must share
            a prompt for ``"rloo"`` and ``"group"``.
        group_size: k, the samples per prompt; ``"rloo"`` needs k >= 2 and B divisible by k.

    Returns:
        (..., B, T) baseline, without gradient.

    Example:
        >>> batch_baseline(torch.tensor([[1.0], [3.0]]), "rloo", 2)
        tensor([[3.],
                [1.]])
    """
    g = g.detach()
    if kind == "none":
        return torch.zeros_like(g)
    if kind == "mean":
        return g.mean(-2, keepdim=True).expand_as(g)
    if kind in ("rloo", "group"):
        b = g.shape[-2]
        if group_size < (2 if kind == "rloo" else 1) or b % group_size:
            raise ValueError(
                f"{kind} needs group_size >= 2 dividing the batch; got group_size={group_size}, "
                f"batch={b}"
            )
        grouped = g.unflatten(-2, (b // group_size, group_size))  # (..., G, k, T)
        total = grouped.sum(-2, keepdim=True)
        if kind == "group":
            return (total / group_size).expand_as(grouped).flatten(-3, -2)
        return ((total - grouped) / (group_size - 1)).flatten(-3, -2)
    raise ValueError(
        f"baseline={kind!r} is not a batch baseline; expected none, mean, rloo or group"
    )


def normalize(adv: torch.Tensor, valid: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Standardise advantages over the valid entries of each (B, T) batch; invalid become 0.

    This is REINFORCE++'s whitening over the global batch. Leading dims are independent batches.
    """
    n = valid.sum((-2, -1), keepdim=True).clamp(min=1)
    mean = (adv * valid).sum((-2, -1), keepdim=True) / n
    var = (((adv - mean) * valid) ** 2).sum((-2, -1), keepdim=True) / n
    return (adv - mean) / (var.sqrt() + eps) * valid
