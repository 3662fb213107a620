"""Collapse diagnostics of one rollout: is the policy still exploring, and does the batch still
carry a gradient?

A collapsed REINFORCE or DPO run gives the same answer to nearly every prompt: its entropy falls,
its groups of completions all score alike (zero advantage, no DPO pair) and each prompt's samples
are copies of one completion. Small pure functions on the rollout's (B, T) tensors; every agent
that samples reports them under ``diagnostics/`` (:func:`collapse_diagnostics`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from .losses import Decisions
    from .rollout import Rollout

# |A| at or below this counts as a zero advantage: leave-one-out and group means of equal
# rewards can differ from the reward by a rounding error.
ZERO_ADVANTAGE_ATOL = 1e-6


def policy_entropy(logits: torch.Tensor) -> torch.Tensor:
    """(B, T) entropy ``-sum_a pi(a|s_t) log pi(a|s_t)`` of masked logits (B, T, V).

    Example:
        >>> policy_entropy(torch.zeros(1, 1, 4)).tolist()  # uniform over 4: log 4
        [[1.3862943649291992]]
    """
    logp = logits.log_softmax(-1)  # (B, T, V)
    return -(logp.exp() * logp).sum(-1)


def token_entropy(entropy: torch.Tensor, valid: torch.Tensor) -> float:
    """Mean of the (B, T) per-token entropies over the valid tokens (0.0 when there are none).

    Example:
        >>> token_entropy(torch.tensor([[1.0, 3.0], [2.0, 9.0]]), torch.tensor([[1, 1], [1, 0]]))
        2.0
    """
    mask = valid.to(entropy.dtype)
    return float((entropy * mask).sum() / mask.sum().clamp(min=1))


def zero_advantage_share(
    advantages: torch.Tensor, valid: torch.Tensor, atol: float = ZERO_ADVANTAGE_ATOL
) -> float:
    """Share of the B rows whose advantage is 0 (within ``atol``) on every valid token.

    Such a sequence adds nothing to the policy gradient ``sum_t A_t grad log pi(a_t|s_t)``.

    Example:
        >>> adv = torch.tensor([[0.0, 0.0], [0.5, 0.0], [0.0, 7.0]])
        >>> zero_advantage_share(adv, torch.tensor([[1, 1], [1, 1], [1, 0]]).bool())
        0.6666666666666666
    """
    zero = (advantages.abs() <= atol) | ~valid.bool()  # (B, T)
    return int(zero.all(1).sum()) / zero.shape[0]


def zero_group_share(sequence_reward: torch.Tensor, group_size: int) -> float:
    """Share of the groups (``group_size`` consecutive rows, one prompt) whose rewards all agree.

    Such a group has zero advantage under a group or leave-one-out baseline and no DPO pair.

    Example:
        >>> zero_group_share(torch.tensor([1.0, 1.0, 0.0, 1.0, 0.0, 0.0]), 2)
        0.6666666666666666
    """
    if group_size < 1 or sequence_reward.shape[0] % group_size:
        raise ValueError(
            f"group_size={group_size} is invalid for a batch of {sequence_reward.shape[0]} rows; "
            f"expected an int >= 1 that divides it"
        )
    groups = sequence_reward.view(-1, group_size)  # (G, k)
    return int((groups.amax(1) == groups.amin(1)).sum()) / groups.shape[0]


def group_centred(sequence_reward: torch.Tensor, group_size: int) -> torch.Tensor:
    """(B, 1) sequence advantage ``R - mean_group(R)``: the advantage of a DPO sample, whose
    gradient comes from how its reward compares with the rest of its group.

    Example:
        >>> group_centred(torch.tensor([1.0, 0.0, 0.5, 0.5]), 2).tolist()
        [[0.5], [-0.5], [0.0], [0.0]]
    """
    groups = sequence_reward.view(-1, group_size)  # (G, k)
    return (groups - groups.mean(1, keepdim=True)).reshape(-1, 1)


def distinct_per_prompt(
    actions: torch.Tensor, valid: torch.Tensor, prompt_index: torch.Tensor
) -> float:
    """Mean over the batch's prompts of the number of distinct completions sampled for it.

    A completion is a row's valid actions (its padding is ignored); rows of one prompt need
    not be adjacent.

    Example:
        >>> actions = torch.tensor([[1, 2], [1, 2], [1, 3], [4, 0]])
        >>> valid = torch.tensor([[1, 1], [1, 1], [1, 1], [1, 0]]).bool()
        >>> distinct_per_prompt(actions, valid, torch.tensor([0, 0, 0, 5]))  # (2 + 1) / 2
        1.5
    """
    completions = torch.where(valid.bool(), actions, -1)  # (B, T) padding made alike
    keyed = torch.cat([prompt_index[:, None].to(actions.dtype), completions], 1)  # (B, 1 + T)
    pairs = torch.unique(keyed, dim=0).shape[0]  # distinct (prompt, completion) pairs
    return pairs / torch.unique(prompt_index).shape[0]


def collapse_diagnostics(
    *,
    entropy: torch.Tensor,
    advantages: torch.Tensor,
    valid: torch.Tensor,
    actions: torch.Tensor,
    sequence_reward: torch.Tensor,
    prompt_index: torch.Tensor,
    group_size: int,
) -> dict[str, float]:
    """The ``diagnostics/*`` metrics of one rollout.

    Args:
        entropy: (B, T) per-token entropy of the policy that sampled the rollout.
        advantages: (B, T) per-token advantages the update weighs (or (B, 1), broadcast).
        valid: (B, T) bool, True on the episodes' real steps.
        actions: (B, T) sampled actions.
        sequence_reward: (B,) R of each row.
        prompt_index: (B,) prompt of each row.
        group_size: completions per prompt (consecutive rows); 1 leaves out the group share.

    Returns:
        ``diagnostics/entropy``, ``diagnostics/zero_advantage_share``,
        ``diagnostics/distinct_per_prompt`` and, when ``group_size > 1``,
        ``diagnostics/zero_group_share``.
    """
    metrics = {
        "diagnostics/entropy": token_entropy(entropy, valid),
        "diagnostics/zero_advantage_share": zero_advantage_share(
            advantages.expand_as(valid), valid
        ),
        "diagnostics/distinct_per_prompt": distinct_per_prompt(actions, valid, prompt_index),
    }
    if group_size > 1:
        metrics["diagnostics/zero_group_share"] = zero_group_share(sequence_reward, group_size)
    return metrics


def rollout_diagnostics(
    batch: Rollout, d: Decisions, out: Mapping[str, torch.Tensor], group_size: int
) -> dict[str, float]:
    """:func:`collapse_diagnostics` of a rollout ``batch``, its decisions ``d`` and the
    ``out`` tensors of ``losses.reinforce_loss`` (``entropy``, ``advantages``)."""
    return collapse_diagnostics(
        entropy=out["entropy"],
        advantages=out["advantages"],
        valid=d.valid,
        actions=d.actions,
        sequence_reward=batch.sequence_reward,
        prompt_index=batch.prompt_index,
        group_size=group_size,
    )
