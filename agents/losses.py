"""Loss functions of the two agents, on padded batches (pure functions of policy and tensors).

Both estimate a gradient of the form E[sum_t grad log pi(a_t | s_t) * weight_t]:
- REINFORCE: weight_t = G_t - b_t, with a_t sampled from the policy;
- supervised: weight_t = 1, with a_t the reference token (teacher forcing), EOS included.
Both sum over the steps of a sequence and average over sequences, as the formulas do.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

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
    feats = policy.features(d.tokens)  # (B, L, D)
    horizon, length = d.actions.shape[1], d.tokens.shape[1]
    steps = torch.arange(horizon, device=d.tokens.device)
    idx = (d.start[:, None] + steps).clamp(max=length - 1)  # (B, T)
    feats = feats.gather(1, idx[..., None].expand(-1, -1, feats.shape[-1]))  # (B, T, D)
    return masked_logits(policy.logits(feats), d.masks), feats


def supervised_loss(policy: Policy, d: Decisions) -> torch.Tensor:
    """Mean over sequences of the negative sequence log-likelihood ``-log p(y | x)``.

    ``y`` is the reference followed by EOS; padded decisions (``valid`` False) contribute
    nothing, so changing padded tokens changes neither the loss nor its gradient.
    """
    logits, _ = decision_logits(policy, d)
    logp = logits.log_softmax(-1).gather(-1, d.actions[..., None])[..., 0]  # (B, T)
    return -(logp * d.valid).sum() / d.tokens.shape[0]


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
