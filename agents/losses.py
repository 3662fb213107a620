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

from .advantages import estimate_advantages, token_weights
from .choices import DPO_LOSSES, KL_ESTIMATORS
from .policies import Policy, masked_logits
from .returns import discounted_returns, returns, step_rewards


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


def kl_per_token(
    logp_all: torch.Tensor, ref_logp_all: torch.Tensor, actions: torch.Tensor, estimator: str
) -> torch.Tensor:
    """KL(pi || ref) at each decision, exact or estimated from the sampled token.

    With ``log r = log ref(a_t|s_t) - log pi(a_t|s_t)`` (Schulman's notation): ``"k1"`` is
    ``-log r`` (unbiased, high variance, can be negative), ``"k2"`` ``(log r)^2 / 2``, ``"k3"``
    ``r - 1 - log r`` (unbiased, >= 0), ``"full"`` ``sum_v pi(v) (log pi(v) - log ref(v))``.

    Args:
        logp_all: (B, T, V) log pi; ref_logp_all: (B, T, V) log ref (no gradient).
        actions: (B, T) sampled tokens.
        estimator: one of ``KL_ESTIMATORS``.

    Returns:
        (B, T) per-token KL values (with gradient through ``logp_all``).

    Example:
        >>> lp = torch.log(torch.tensor([[[0.5, 0.5]]]))
        >>> ref = torch.log(torch.tensor([[[0.25, 0.75]]]))
        >>> round(kl_per_token(lp, ref, torch.tensor([[0]]), "k1").item(), 6)  # log 0.5/0.25
        0.693147
    """
    if estimator == "full":
        return F.kl_div(ref_logp_all, logp_all, log_target=True, reduction="none").sum(-1)
    logp = logp_all.gather(-1, actions[..., None])[..., 0]
    ref = ref_logp_all.gather(-1, actions[..., None])[..., 0]
    log_r = ref - logp
    if estimator == "k1":
        return -log_r
    if estimator == "k2":
        return 0.5 * log_r**2
    if estimator == "k3":
        return log_r.exp() - 1 - log_r
    raise ValueError(f"kl_estimator={estimator!r} is invalid; expected one of {KL_ESTIMATORS}")


def select(d: Decisions, rows: torch.Tensor) -> Decisions:
    """The decisions of some rows (a PPO minibatch)."""
    masks = d.masks[rows] if d.masks.dim() == 3 else d.masks
    return Decisions(d.tokens[rows], d.start[rows], d.actions[rows], masks, d.valid[rows])


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
    scale_rewards: str = "none",
    gae_lambda: float | None = None,
    loss_agg_mode: str = "seq-mean-token-sum",
    horizon: int | None = None,
    kl_estimator: str = "full",
    kl_in_reward: bool = False,
    teacher_policy: Policy | None = None,
    values: torch.Tensor | None = None,
    advantages: torch.Tensor | None = None,
    value_targets: torch.Tensor | None = None,
    old_logp: torch.Tensor | None = None,
    clip_range: float = 0.2,
    out: dict[str, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Policy-gradient loss whose gradient is ``sum_{b,t} c_{b,t} A_{b,t} grad log pi(a_t|s_t)``.

    With the defaults, c = 1/B on valid steps and A = G - b: REINFORCE's
    ``mean_b sum_t grad log pi(a_t|s_t) (G_t - b_t)``. The advantages A come from
    ``advantages.estimate_advantages`` (GRPO, Dr. GRPO, RLOO, REINFORCE++, GAE); the weights c
    from ``advantages.token_weights`` (``loss_agg_mode``). With ``old_logp`` the term is PPO's
    clipped ``min(rho A, clip(rho, 1 - eps, 1 + eps) A)``, ``rho = pi / pi_old``.

    Args:
        policy: the network being trained.
        d: the sampled decisions.
        rewards: (B, T) env per-step rewards, 0 past each episode's end.
        sequence_reward: (B,) the episodes' sequence rewards R (credit final, every_token).
        gamma: discount of the returns.
        credit: one of ``returns.CREDITS`` or ``"distill"`` (A = -(log pi - log pi_teacher)
            per token, read from ``teacher_policy``).
        baseline: one of ``returns.BASELINES``; ``"value"`` trains the value head by squared
            error to G_t with weight ``value_coef``; ``"vine"`` reads ``values``.
        group_size: samples per prompt (consecutive rows) for rloo, group, scale_rewards.
        normalize_advantages: whiten advantages over the batch's valid steps (REINFORCE++).
        entropy_coef: weight of the entropy bonus (aggregated like the policy term).
        value_coef: weight of the value loss when ``baseline="value"``.
        kl_coef: weight of ``KL(pi || ref)`` (per token, aggregated like the policy term).
        ref_policy: the frozen reference for the KL term.
        scale_rewards, gae_lambda: see ``advantages.estimate_advantages``.
        loss_agg_mode, horizon: see ``advantages.token_weights`` (horizon: the env's
            ``max_new_tokens``; default the batch's T).
        kl_estimator: one of ``KL_ESTIMATORS``.
        kl_in_reward: subtract ``kl_coef * KL`` from each token's reward instead of adding it to
            the loss (the KL then carries no gradient of its own).
        teacher_policy: the frozen teacher of ``credit="distill"``.
        values: (B, T) V(s_t) for ``baseline="vine"``.
        advantages, value_targets, old_logp: (B, T) precomputed at rollout time (PPO epochs).
        clip_range: PPO's epsilon, read with ``old_logp``.
        out: when given, receives the (B, T) tensors ``advantages``, ``returns``, ``logp`` and
            ``entropy`` (detached).

    Returns:
        The scalar loss and a dict of detached statistics (namespaced metric names).
    """
    logits, feats = decision_logits(policy, d)  # (B, T, V), (B, T, D)
    logp_all = logits.log_softmax(-1)
    logp = logp_all.gather(-1, d.actions[..., None])[..., 0]  # (B, T)
    valid = d.valid.to(logp.dtype)
    n = d.tokens.shape[0]
    weights = token_weights(d.valid, loss_agg_mode, horizon or d.valid.shape[1], logp.dtype)
    stats: dict[str, torch.Tensor] = {}

    kl_tok = None
    if kl_coef > 0:
        if ref_policy is None:
            raise ValueError("kl_coef > 0 needs a ref_policy")
        with torch.no_grad():
            ref_logits, _ = decision_logits(ref_policy, d)
        ref_logp_all = ref_logits.log_softmax(-1)
        kl_tok = kl_per_token(logp_all, ref_logp_all, d.actions, kl_estimator) * valid  # (B, T)
        full = kl_per_token(logp_all.detach(), ref_logp_all, d.actions, "full") * valid
        stats["kl/sequence"] = full.sum() / n  # exact KL(pi || ref) per sequence
        stats["kl/token"] = full.sum() / valid.sum().clamp(min=1)

    v = policy.values(feats) if baseline == "value" else None  # (B, T)
    if advantages is None:
        rewards = rewards.to(logp.dtype)
        if credit == "distill":
            if teacher_policy is None:
                raise ValueError("credit='distill' needs a teacher_policy")
            with torch.no_grad():
                teacher_logits, _ = decision_logits(teacher_policy, d)
            teacher = teacher_logits.log_softmax(-1).gather(-1, d.actions[..., None])[..., 0]
            g = -(logp.detach() - teacher) * valid  # (B, T) per-token reverse-KL reward
            advantages = g
        else:
            step_r = None
            if kl_in_reward and kl_tok is not None:
                step_r = step_rewards(rewards, credit, sequence_reward, d.valid)
                step_r = (step_r - kl_coef * kl_tok.detach()) * valid
                g = discounted_returns(step_r, gamma)
            else:
                g = returns(rewards, gamma, credit, sequence_reward, d.valid)  # (B, T)
                if gae_lambda is not None:
                    step_r = step_rewards(rewards, credit, sequence_reward, d.valid)
            advantages = estimate_advantages(
                g,
                d.valid,
                baseline=baseline,
                group_size=group_size,
                values=v if v is not None else values,
                step_rewards=step_r,
                gamma=gamma,
                gae_lambda=gae_lambda,
                scale_rewards=scale_rewards,
                normalize_advantages=normalize_advantages,
            )
        value_targets = g
    advantages = advantages.detach()

    if old_logp is None:
        surrogate = logp * advantages
    else:
        ratio = (logp - old_logp).exp()
        clipped = ratio.clamp(1 - clip_range, 1 + clip_range)
        surrogate = torch.minimum(ratio * advantages, clipped * advantages)
        stats["losses/clipfrac"] = (((ratio - 1).abs() > clip_range) * valid).sum().detach() / (
            valid.sum().clamp(min=1)
        )
    policy_loss = -(weights * surrogate).sum()
    value_loss = torch.zeros((), dtype=logp.dtype, device=logp.device)
    if v is not None:
        value_loss = (((v - value_targets) ** 2) * valid).sum() / valid.sum().clamp(min=1)
        stats["losses/value_loss"] = value_loss.detach()
    probs = logp_all.exp()
    entropy = -(probs * logp_all).sum(-1)  # (B, T)
    entropy_term = (entropy * weights).sum()
    loss = policy_loss - entropy_coef * entropy_term + value_coef * value_loss
    if kl_tok is not None:
        kl_term = (kl_tok * weights).sum()
        if not kl_in_reward:
            loss = loss + kl_coef * kl_term
        stats["losses/kl"] = kl_term.detach()
    stats["losses/policy_loss"] = policy_loss.detach()
    stats["losses/entropy"] = (entropy * valid).sum().detach() / valid.sum().clamp(min=1)
    stats["losses/total"] = loss.detach()
    if value_targets is not None:
        stats["charts/return"] = value_targets[:, 0].mean().detach()
    if out is not None:
        out.update(
            advantages=advantages,
            returns=value_targets.detach() if value_targets is not None else advantages,
            logp=logp.detach(),
            entropy=entropy.detach(),
        )
    return loss, stats
