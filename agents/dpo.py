"""DPO: preference optimisation against a frozen reference, on env-verified or reference pairs.

Prompts come iid from a fixed set and R is deterministic, so a preference between two
completions of one prompt is a fact the env can check. DPO turns those facts into a loss that
looks like supervised learning: raise ``log pi(y_c | x) - log pi_ref(y_c | x)`` above the same
ratio of the rejected completion (``losses.dpo_loss``).

- ``dpo_mode="online"`` (default): every iteration samples ``group_size`` completions per prompt
  from the current policy in the native vector env, scores them with the env's R, and pairs the
  best (chosen) with the worst (rejected) of each group; groups whose completions all score the
  same carry no preference and are skipped.
- ``dpo_mode="offline"``: a fixed dataset built once, at construction: the train split's reference
  answer (chosen) against one completion sampled from the reference policy (rejected).

Reads top to bottom: config, pair construction, then the agent (pairs -> log-probs -> loss).
"""

from __future__ import annotations

import time

import gymnasium as gym
import numpy as np
import torch

import tokengym  # noqa: F401  (registers TokenGen-v0)

from .base import Agent, frozen_copy, grouped_prompts
from .config import TrainConfig
from .diagnostics import group_centred, policy_entropy, rollout_diagnostics
from .losses import Decisions, decision_logits, dpo_loss, sequence_logp
from .policies import Policy
from .reinforce import rollout_decisions
from .rollout import Rollout, collect_rollout, rollout_metrics
from .supervised import minibatch, reference_decisions

# Metrics of an update, reported as NaN (written as null) on an iteration with no pair.
PAIR_STATS = (
    "losses/dpo",
    "losses/grad_norm",
    "rewards/chosen",
    "rewards/rejected",
    "rewards/accuracies",
    "rewards/margins",
    "logps/chosen",
    "logps/rejected",
)


def preference_pairs(rewards: torch.Tensor, group_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of the best and the worst completion of each group that is not a tie.

    Args:
        rewards: (B,) sequence rewards, groups of ``group_size`` consecutive rows per prompt.
        group_size: k, completions per prompt.

    Returns:
        chosen (P,) and rejected (P,) int64 row indices, one pair per group whose best reward
        beats its worst (the first best and first worst row on equal rewards).

    Example:
        >>> preference_pairs(torch.tensor([0.0, 1.0, 0.5, 0.5]), 2)
        (tensor([1]), tensor([0]))
    """
    groups = rewards.view(-1, group_size)  # (G, k)
    keep = groups.amax(1) > groups.amin(1)  # (G,) ties carry no preference
    offset = torch.arange(groups.shape[0], device=rewards.device) * group_size  # (G,)
    chosen = offset + groups.argmax(1)  # (G,)
    rejected = offset + groups.argmin(1)  # (G,)
    return chosen[keep], rejected[keep]


def offline_pairs(
    env_kwargs: dict, reference: Policy, generator: torch.Generator, seed: int
) -> tuple[Decisions, Decisions]:
    """The fixed dataset: each train prompt's reference answer vs one sampled completion.

    Pairs whose sampled completion equals the reference answer (no preference) are dropped.

    Args:
        env_kwargs: keyword arguments of ``gym.make("TokenGen-v0", ...)``; the pairs cover
            every prompt of the train split.
        reference: the policy the rejected completions are sampled from.
        generator: sampler on the reference's device.
        seed: reset seed of the sampling env.

    Returns:
        chosen and rejected decisions, (M, ...) each, row i of both for the same prompt.

    Raises:
        ValueError: if every sampled completion equals its reference.
    """
    kwargs = {**env_kwargs, "split": "train"}
    env = gym.make("TokenGen-v0", **kwargs)
    device = next(reference.parameters()).device
    n = env.unwrapped.num_prompts
    chosen = reference_decisions(env, device)  # (N, T) targets over the full horizon
    vec = gym.make_vec("TokenGen-v0", num_envs=n, **kwargs)
    sampled = collect_rollout(vec, reference, np.arange(n), generator, seed=seed)
    vec.close()
    same = (chosen.actions == sampled.actions).all(1) & (chosen.valid == sampled.valid).all(1)
    keep = torch.nonzero(~same)[:, 0]  # (M,)
    if len(keep) == 0:
        raise ValueError("every sampled completion equals its reference: no preference pairs")
    return minibatch(chosen, keep), minibatch(rollout_decisions(sampled), keep)


class DPOAgent(Agent):
    """Direct preference optimisation on ``TokenGen-v0`` with a frozen reference policy.

    Args:
        policy: the network to train (moved to ``config.device``).
        config: the run (agent "dpo"): env (training uses its train split), batch_size
            (prompts per update online, pairs offline), group_size (completions per prompt),
            lr, beta, dpo_loss, dpo_mode, max_grad_norm, seed.
        reference: the frozen reference ``pi_ref`` (a copy is taken; default: a copy of
            ``policy`` at construction, i.e. the initial or ``--init`` policy).

    Example:
        >>> agent = DPOAgent(policy, TrainConfig(agent="dpo", task="target"))
        >>> metrics = agent.train_iteration()  # metrics["rewards/margins"], ...
    """

    name = "dpo"

    def __init__(
        self,
        policy: Policy,
        config: TrainConfig,
        reference: Policy | None = None,
    ) -> None:
        super().__init__(policy, config)
        self.reference = frozen_copy(reference or policy, self.device)
        self.env_kwargs = config.make_kwargs(split="train")
        self.generator = torch.Generator(self.device).manual_seed(config.seed)  # completions
        self.index_generator = torch.Generator().manual_seed(config.seed)  # CPU: offline pairs
        self.prompt_rng = np.random.default_rng(config.seed)
        if config.dpo_mode == "online":
            n = config.batch_size * config.group_size
            self.vec = gym.make_vec("TokenGen-v0", num_envs=n, **self.env_kwargs)
            self.base = getattr(self.vec, "unwrapped", self.vec)
        else:
            self.base = gym.make("TokenGen-v0", **self.env_kwargs).unwrapped
            self.chosen, self.rejected = offline_pairs(
                self.env_kwargs, self.reference, self.generator, config.seed
            )
            with torch.no_grad():  # the reference and the dataset are fixed: score them once
                self.ref_chosen = sequence_logp(self.reference, self.chosen)  # (M,)
                self.ref_rejected = sequence_logp(self.reference, self.rejected)  # (M,)

    def sample_prompts(self) -> np.ndarray:
        """(batch_size * group_size,) prompt indices: batch_size prompts, each repeated."""
        c = self.config
        return grouped_prompts(self.prompt_rng, self.base.num_prompts, c.batch_size, c.group_size)

    def rollout(self) -> Rollout:
        """Sample ``group_size`` completions of ``batch_size`` prompts with the current policy."""
        seed = self.config.seed if self.iteration == 0 else None
        return collect_rollout(
            self.vec, self.policy, self.sample_prompts(), self.generator, seed=seed
        )

    def update(
        self,
        chosen: Decisions,
        rejected: Decisions,
        ref_chosen: torch.Tensor | None = None,
        ref_rejected: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """One gradient step on P pairs; the reference log-probs are computed when not given."""
        c = self.config
        if ref_chosen is None or ref_rejected is None:
            with torch.no_grad():
                ref_chosen = sequence_logp(self.reference, chosen)  # (P,)
                ref_rejected = sequence_logp(self.reference, rejected)  # (P,)
        loss, stats = dpo_loss(
            sequence_logp(self.policy, chosen),  # (P,)
            sequence_logp(self.policy, rejected),  # (P,)
            ref_chosen,
            ref_rejected,
            beta=c.beta,
            loss=c.dpo_loss,
        )
        self.optimizer_step(loss, stats)
        return stats

    def train_iteration(self) -> dict[str, float]:
        """Build pairs (online: a fresh rollout) and take one step; returns float metrics."""
        if self.config.dpo_mode == "offline":
            return self._offline_iteration()
        t0 = time.perf_counter()
        batch = self.rollout()
        chosen_rows, rejected_rows = preference_pairs(batch.sequence_reward, self.config.group_size)
        t1 = time.perf_counter()
        stats: dict[str, torch.Tensor | float] = dict.fromkeys(PAIR_STATS, float("nan"))
        d = rollout_decisions(batch)
        with torch.no_grad():  # the sampling policy's entropy, before the step changes it
            out = {"entropy": policy_entropy(decision_logits(self.policy, d)[0])}
        out["advantages"] = group_centred(batch.sequence_reward, self.config.group_size)
        stats.update(rollout_diagnostics(batch, d, out, self.config.group_size))
        if len(chosen_rows) > 0:
            stats.update(self.update(minibatch(d, chosen_rows), minibatch(d, rejected_rows)))
        t2 = time.perf_counter()
        self.iteration += 1
        n_tokens = int(batch.valid.sum())
        self.episodes += batch.valid.shape[0]
        self.tokens += n_tokens
        metrics = {k: float(v) for k, v in stats.items()}
        metrics.update(rollout_metrics(batch, t0, t1, t2))
        metrics["charts/pairs"] = float(len(chosen_rows))
        metrics.update(
            {"charts/episodes": float(self.episodes), "charts/tokens": float(self.tokens)}
        )
        return metrics

    def _offline_iteration(self) -> dict[str, float]:
        """One step on ``batch_size`` pairs drawn with replacement from the fixed dataset."""
        t0 = time.perf_counter()
        m = self.chosen.tokens.shape[0]
        index = torch.randint(0, m, (self.config.batch_size,), generator=self.index_generator)
        index = index.to(self.device)
        chosen, rejected = minibatch(self.chosen, index), minibatch(self.rejected, index)
        stats = self.update(chosen, rejected, self.ref_chosen[index], self.ref_rejected[index])
        seconds = time.perf_counter() - t0
        n_tokens = int(chosen.valid.sum()) + int(rejected.valid.sum())
        self.iteration += 1
        self.episodes += self.config.batch_size
        self.tokens += n_tokens
        metrics = {k: float(v) for k, v in stats.items()}
        metrics.update(
            {
                "charts/pairs": float(self.config.batch_size),
                "charts/episodes": float(self.episodes),
                "charts/tokens": float(self.tokens),
                "perf/seconds": seconds,
                "perf/tokens_per_s": n_tokens / seconds,
                "perf/update_share": 1.0,
            }
        )
        return metrics
