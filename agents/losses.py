"""Loss functions of the agents, on padded batches (pure functions of policy and tensors).

REINFORCE and supervised estimate a gradient of the form E[sum_t grad log pi(a_t | s_t) w_t]:
- REINFORCE: weight_t = G_t - b_t, with a_t sampled from the policy;
- supervised: weight_t = 1, with a_t the reference token (teacher forcing), EOS included.
Both sum over the steps of a sequence and average over sequences, as the formulas do.
DPO compares two completions of one prompt through their sequence log-probabilities
``log pi(y | x) = sum_t log pi(a_t | s_t)``, the same sum the supervised loss maximises.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .choices import DPO_LOSSES
from .policies import Policy, masked_logits
from .returns import batch_baseline, normalize, returns


@dataclass
class Decisions:
    """A padded batch of token decisions, the common input of both losses.

    Attributes:
        tokens: (B, L) int64 full sequences ``[BOS, prompt, SEP, completion, PAD...]``.
        start: (B,) int64 SEP position; decision t is made at position ``start + t``.
        actions: (B, T) int64 the token chosen at decision t (sampled or reference).
        masks: (B, T, V) or (V,) bool legal actions at each decision.
        valid: (B, T) bool real decisions (False on padding).
    """

    tokens: torch.Tensor
    start: torch.Tensor
    actions: torch.Tensor
    masks: torch.Tensor
    valid: torch.Tensor


def decision_logits(policy: Policy, d: Decisions) -> tuple[torch.Tensor, torch.Tensor]:
    """Masked logits and features at the T decision positions.

    Returns:
        logits (B, T, V) and features (B, T, D).
    """
    horizon, length = d.actions.shape[1], d.tokens.shape[1]
    # Causal features: the columns after the last decision change nothing, so skip them (one
    # host sync per call, outside any token loop).
    length = min(length, int(d.start.max()) + horizon)
    feats = policy.features(d.tokens[:, :length])  # (B, L', D)
    steps = torch.arange(horizon, device=d.tokens.device)
    idx = (d.start[:, None] + steps).clamp(max=length - 1)  # (B, T)
    feats = feats.gather(1, idx[..., None].expand(-1, -1, feats.shape[-1]))  # (B, T, D)
    return masked_logits(policy.logits(feats), d.masks), feats


def sequence_logp(policy: Policy, d: Decisions) -> torch.Tensor:
    """Log-probability ``log p(y | x) = sum_t log pi(a_t | s_t)`` of each row's completion.

    The sum runs over the valid decisions only: EOS, when the completion has one, is counted,
    and padded decisions (``valid`` False) contribute nothing, so changing padded tokens
    changes neither the result nor its gradient.

    Args:
        policy: the network.
        d: the decisions; ``actions`` are the completion's tokens.

    Returns:
        (B,) summed log-probabilities.

    Example:
        >>> logp = sequence_logp(policy, reference_decisions(env))  # doctest: +SKIP
    """
    logits, _ = decision_logits(policy, d)  # (B, T, V)
    logp = logits.log_softmax(-1).gather(-1, d.actions[..., None])[..., 0]  # (B, T)
    return (logp * d.valid).sum(1)  # (B,)


def supervised_loss(policy: Policy, d: Decisions) -> torch.Tensor:
    """Mean over sequences of the negative sequence log-likelihood ``-log p(y | x)``.

    ``y`` is the reference followed by EOS; padded decisions (``valid`` False) contribute
    nothing, so changing padded tokens changes neither the loss nor its gradient.
    """
    return -sequence_logp(policy, d).sum() / d.tokens.shape[0]


def dpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    *,
    beta: float = 0.1,
    loss: str = "sigmoid",
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """DPO (or IPO) loss on P preference pairs, from sequence log-probabilities.

    With the log-ratios ``h_c = logp_c - ref_c`` and ``h_r = logp_r - ref_r`` and
    ``h = h_c - h_r``, the per-pair loss is ``-log sigmoid(beta * h)`` (``"sigmoid"``, Rafailov
    et al. 2023) or ``(h - 1 / (2 beta))^2`` (``"ipo"``, Azar et al. 2023), averaged over pairs.
    Both use the summed sequence log-probabilities of :func:`sequence_logp` (TRL divides them by
    the length for IPO; here both losses read the same sums).

    Args:
        policy_chosen: (P,) ``log pi(y_c | x)`` under the trained policy.
        policy_rejected: (P,) ``log pi(y_r | x)`` under the trained policy.
        ref_chosen: (P,) ``log pi_ref(y_c | x)`` under the frozen reference.
        ref_rejected: (P,) ``log pi_ref(y_r | x)`` under the frozen reference.
        beta: inverse temperature of the implicit reward ``beta * h``.
        loss: ``"sigmoid"`` or ``"ipo"``.

    Returns:
        The scalar loss and detached statistics with TRL's names: ``rewards/chosen`` (mean of
        ``beta * h_c``), ``rewards/rejected``, ``rewards/accuracies`` (share of pairs with
        ``h_c > h_r``), ``rewards/margins`` (mean of ``beta * h``), plus ``logps/chosen``,
        ``logps/rejected`` and ``losses/dpo``.

    Example:
        >>> t = torch.tensor
        >>> loss, _ = dpo_loss(t([-1.0]), t([-2.0]), t([-1.5]), t([-1.5]), beta=1.0)
        >>> round(loss.item(), 6)  # -log sigmoid(1.0 * ((-1 + 1.5) - (-2 + 1.5)))
        0.313262
    """
    if loss not in DPO_LOSSES:
        raise ValueError(f"loss={loss!r} is invalid; expected one of {DPO_LOSSES}")
    chosen = policy_chosen - ref_chosen  # (P,) log-ratio h_c
    rejected = policy_rejected - ref_rejected  # (P,) log-ratio h_r
    h = chosen - rejected  # (P,)
    ipo = (h - 1.0 / (2.0 * beta)) ** 2  # (P,)
    value = (-F.logsigmoid(beta * h) if loss == "sigmoid" else ipo).mean()
    chosen_reward, rejected_reward = beta * chosen.detach(), beta * rejected.detach()  # (P,)
    stats = {
        "losses/dpo": value.detach(),
        "rewards/chosen": chosen_reward.mean(),
        "rewards/rejected": rejected_reward.mean(),
        "rewards/accuracies": (chosen_reward > rejected_reward).to(h.dtype).mean(),
        "rewards/margins": (chosen_reward - rejected_reward).mean(),
        "logps/chosen": policy_chosen.detach().mean(),
        "logps/rejected": policy_rejected.detach().mean(),
    }
    return value, stats


def reinforce_loss(
    policy: Policy,
    d: Decisions,
    rewards: torch.Tensor,
    *,
    sequence_reward: torch.Tensor | None = None,
    gamma: float = 1.0,
    credit: str = "env",
    baseline: str = "none",
    group_size: int = 1,
    normalize_advantages: bool = False,
    entropy_coef: float = 0.0,
    value_coef: float = 0.5,
    kl_coef: float = 0.0,
    ref_policy: Policy | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """REINFORCE surrogate whose gradient is ``mean_b sum_t grad log pi(a_t|s_t) (G_t - b_t)``.

    Args:
        policy: the network being trained.
        d: the sampled decisions.
        rewards: (B, T) env per-step rewards, 0 past each episode's end.
        sequence_reward: (B,) the episodes' sequence rewards R, read by ``credit="final"``
            and ``"every_token"``.
        gamma: discount of the returns.
        credit: one of ``returns.CREDITS``: ``"final"`` (R on the last token, reward-to-go),
            ``"every_token"`` (R on every token, reward-to-go), ``"trajectory"`` (every step
            gets the episode's ``G_0`` of the env rewards) or ``"env"`` (the env rewards'
            reward-to-go).
        baseline: ``"none"``, ``"mean"``, ``"rloo"`` or ``"value"`` (the policy's value head,
            trained by squared error to G_t with weight ``value_coef``).
        group_size: samples per prompt (consecutive rows) for ``"rloo"``.
        normalize_advantages: standardise advantages over the batch's valid steps.
        entropy_coef: weight of the entropy bonus (summed over steps, averaged over sequences).
        value_coef: weight of the value loss when ``baseline="value"``.
        kl_coef: weight of ``KL(pi || ref)`` summed over the visited states (exact over V).
        ref_policy: the frozen reference for the KL term.

    Returns:
        The scalar loss and a dict of detached statistics (namespaced metric names).
    """
    logits, feats = decision_logits(policy, d)  # (B, T, V), (B, T, D)
    logp_all = logits.log_softmax(-1)
    logp = logp_all.gather(-1, d.actions[..., None])[..., 0]  # (B, T)
    valid = d.valid.to(logp.dtype)
    n = d.tokens.shape[0]
    g = returns(rewards.to(logp.dtype), gamma, credit, sequence_reward, d.valid)  # (B, T)

    stats: dict[str, torch.Tensor] = {}
    value_loss = torch.zeros((), dtype=logp.dtype, device=logp.device)
    if baseline == "value":
        v = policy.values(feats)  # (B, T)
        b = v.detach()
        value_loss = (((v - g) ** 2) * valid).sum() / valid.sum().clamp(min=1)
        stats["losses/value_loss"] = value_loss.detach()
    else:
        b = batch_baseline(g, baseline, group_size)
    adv = (g - b) * valid
    if normalize_advantages:
        adv = normalize(adv, d.valid)
    policy_loss = -(logp * adv.detach()).sum() / n
    probs = logp_all.exp()
    entropy = -(probs * logp_all).sum(-1)  # (B, T)
    entropy_term = (entropy * valid).sum() / n
    loss = policy_loss - entropy_coef * entropy_term + value_coef * value_loss
    if kl_coef > 0:
        if ref_policy is None:
            raise ValueError("kl_coef > 0 needs a ref_policy")
        with torch.no_grad():
            ref_logits, _ = decision_logits(ref_policy, d)
        kl = F.kl_div(ref_logits.log_softmax(-1), logp_all, log_target=True, reduction="none")
        kl_term = (kl.sum(-1) * valid).sum() / n  # KL(pi || ref) per state, summed over steps
        loss = loss + kl_coef * kl_term
        stats["losses/kl"] = kl_term.detach()
    stats["losses/policy_loss"] = policy_loss.detach()
    stats["losses/entropy"] = (entropy * valid).sum().detach() / valid.sum().clamp(min=1)
    stats["losses/total"] = loss.detach()
    stats["charts/return"] = (g[:, 0]).mean().detach()
    return loss, stats
