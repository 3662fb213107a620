"""Advantage estimators and loss aggregation, as pure functions on padded (..., B, T) batches.

Every function treats the last two dims as one batch (rows = episodes, columns = decisions) and
any leading dims as independent batches, so ``exact.py`` evaluates the very same functions on
every enumerated group at once. One option each, composed by :func:`estimate_advantages`:

| option | what it does | TRL / verl name |
|---|---|---|
| ``baseline="group"`` | ``G - mean_group(G)`` | GRPO's group mean |
| ``baseline="rloo"`` | ``G - mean of the other k - 1`` | RLOO |
| ``scale_rewards="group"`` | divide by the group's std of G (Bessel) | GRPO (TRL) |
| ``scale_rewards="batch"`` | divide by the batch's std of G | TRL ``scale_rewards="batch"`` |
| ``normalize_advantages`` | whiten over the batch's valid tokens | REINFORCE++ |
| ``gae_lambda`` | ``sum_l (gamma lambda)^l delta_{t+l}`` with the values | PPO GAE / VinePPO |
| ``loss_agg_mode`` | how per-token terms become one loss | verl ``loss_agg_mode`` |
"""

from __future__ import annotations

import torch

from .choices import LOSS_AGG_MODES, SCALE_REWARDS
from .returns import batch_baseline, normalize

STD_EPS = 1e-6  # added to a std before dividing (verl's epsilon)


def reward_std(g: torch.Tensor, kind: str, group_size: int) -> torch.Tensor:
    """The std of the returns that ``scale_rewards`` divides by, per column.

    Args:
        g: (..., B, T) returns.
        kind: ``"group"`` (over each group's k rows, Bessel-corrected as ``torch.std``) or
            ``"batch"`` (over the B rows).
        group_size: k; ``"group"`` needs k >= 2 dividing B.

    Returns:
        (..., B, T) std, broadcast back to every row.

    Example:
        >>> reward_std(torch.tensor([[0.0], [2.0]]), "group", 2)
        tensor([[1.4142],
                [1.4142]])
    """
    g = g.detach()
    if kind == "batch":
        return g.std(-2, keepdim=True).expand_as(g)
    if kind != "group":
        raise ValueError(f"scale_rewards={kind!r} is invalid; expected one of {SCALE_REWARDS}")
    b = g.shape[-2]
    if group_size < 2 or b % group_size:
        raise ValueError(
            f"a group std needs group_size >= 2 dividing the batch; got group_size={group_size}, "
            f"batch={b}"
        )
    grouped = g.unflatten(-2, (b // group_size, group_size))  # (..., G, k, T)
    return grouped.std(-2, keepdim=True).expand_as(grouped).flatten(-3, -2)


def gae_advantages(
    rewards: torch.Tensor, values: torch.Tensor, valid: torch.Tensor, gamma: float, lam: float
) -> torch.Tensor:
    """GAE: ``A_t = sum_l (gamma lam)^l delta_{t+l}``, ``delta_t = r_t + gamma V_{t+1} - V_t``.

    The value after an episode's last step is 0 (the episode has ended). lam = 1 gives
    ``G_t - V_t``; lam = 0 the one-step TD error (VinePPO's advantage).

    Args:
        rewards: (..., B, T) per-step rewards, 0 past each end.
        values: (..., B, T) V(s_t).
        valid: (..., B, T) bool real steps.
        gamma, lam: discount and GAE lambda in [0, 1].

    Returns:
        (..., B, T) advantages, 0 past each end.

    Example:
        >>> v = torch.tensor([[0.5, 0.25]])
        >>> gae_advantages(torch.tensor([[0.0, 1.0]]), v, torch.ones(1, 2, dtype=torch.bool), 1, 0)
        tensor([[-0.2500,  0.7500]])
    """
    mask = valid.to(values.dtype)
    values = values.detach() * mask
    following = torch.cat([values[..., 1:], torch.zeros_like(values[..., :1])], -1)
    delta = (rewards + gamma * following - values) * mask  # (..., B, T)
    out = torch.empty_like(delta)
    running = torch.zeros_like(delta[..., 0])
    for t in range(delta.shape[-1] - 1, -1, -1):  # T is the generation length: short
        running = delta[..., t] + gamma * lam * running * mask[..., t]
        out[..., t] = running
    return out * mask


def token_weights(
    valid: torch.Tensor, mode: str, horizon: int, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Coefficient c_{b,t} of each token's term in the loss: ``loss = -sum c * term``.

    Args:
        valid: (..., B, T) bool real decisions.
        mode: one of ``LOSS_AGG_MODES``.
        horizon: the env's ``max_new_tokens`` (the constant of ``"seq-mean-token-sum-norm"``).
        dtype: float dtype of the result.

    Returns:
        (..., B, T) weights, 0 on padding.

    Example:
        >>> token_weights(torch.tensor([[True, True], [True, False]]), "token-mean", 2)
        tensor([[0.3333, 0.3333],
                [0.3333, 0.0000]])
    """
    mask = valid.to(dtype)
    b = valid.shape[-2]
    if mode == "seq-mean-token-sum":
        return mask / b
    if mode == "token-mean":
        return mask / mask.sum((-2, -1), keepdim=True).clamp(min=1)
    if mode == "seq-mean-token-mean":
        return mask / (b * mask.sum(-1, keepdim=True).clamp(min=1))
    if mode == "seq-mean-token-sum-norm":
        return mask / (b * horizon)
    raise ValueError(f"loss_agg_mode={mode!r} is invalid; expected one of {LOSS_AGG_MODES}")


def estimate_advantages(
    g: torch.Tensor,
    valid: torch.Tensor,
    *,
    baseline: str = "none",
    group_size: int = 1,
    values: torch.Tensor | None = None,
    step_rewards: torch.Tensor | None = None,
    gamma: float = 1.0,
    gae_lambda: float | None = None,
    scale_rewards: str = "none",
    normalize_advantages: bool = False,
) -> torch.Tensor:
    """Per-token advantages of one estimator configuration, 0 past each episode's end.

    Args:
        g: (..., B, T) returns G_t of the credit mode (``returns.returns``).
        valid: (..., B, T) bool real decisions.
        baseline: one of ``returns.BASELINES``; ``"value"`` and ``"vine"`` read ``values``.
        group_size: k samples per prompt (consecutive rows).
        values: (..., B, T) V(s_t) (value head, Monte Carlo or exact), for value/vine.
        step_rewards: (..., B, T) per-step rewards whose reward-to-go is g; read by GAE.
        gamma: discount (GAE).
        gae_lambda: None: ``A = G - b``; a float: GAE(gamma, lambda) on ``values``.
        scale_rewards: ``"none"``, ``"group"`` or ``"batch"``: divide by that std of G.
        normalize_advantages: whiten over the batch's valid tokens last (REINFORCE++).

    Returns:
        (..., B, T) advantages, detached.

    Example:
        >>> g = torch.tensor([[1.0], [0.0]])
        >>> estimate_advantages(g, g >= 0, baseline="group", group_size=2, scale_rewards="group")
        tensor([[ 0.7071],
                [-0.7071]])
    """
    g = g.detach()
    mask = valid.to(g.dtype)
    if baseline in ("value", "vine"):
        if values is None:
            raise ValueError(f"baseline={baseline!r} needs the values V(s_t)")
        if gae_lambda is None:
            adv = g - values.detach()
        else:
            if step_rewards is None:
                raise ValueError("GAE needs the per-step rewards")
            adv = gae_advantages(step_rewards, values, valid, gamma, gae_lambda)
    else:
        if gae_lambda is not None:
            raise ValueError(f"GAE needs a critic (baseline value or vine); got {baseline!r}")
        adv = g - batch_baseline(g, baseline, group_size)
    if scale_rewards != "none":
        adv = adv / (reward_std(g, scale_rewards, group_size) + STD_EPS)
    adv = adv * mask
    if normalize_advantages:
        adv = normalize(adv, valid)
    return adv
