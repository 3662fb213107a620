"""REINFORCE: grad J = E_pi[sum_t grad log pi(a_t|s_t) G_t], on batched rollouts of the vector env.

Reads top to bottom: config, then the agent (sample prompts -> rollout -> loss -> step).
The loss itself lives in ``losses.py``; returns and baselines in ``returns.py``.
"""

from __future__ import annotations

import time

import gymnasium as gym
import numpy as np
import torch

import tokengym  # noqa: F401  (registers TokenGen-v0)

from .base import Agent, frozen_copy, grouped_prompts
from .checkpoint import load_checkpoint
from .config import TrainConfig
from .diagnostics import rollout_diagnostics
from .losses import Decisions, reinforce_loss, select
from .policies import Policy
from .returns import returns
from .rollout import Rollout, collect_rollout, rollout_metrics


def rollout_decisions(batch: Rollout) -> Decisions:
    """View a rollout as the decisions the loss reads, trimmed to its longest episode."""
    horizon = int(batch.valid.any(0).sum())  # one sync per update, outside the token loop
    return Decisions(
        tokens=batch.tokens,
        start=batch.start,
        actions=batch.actions[:, :horizon],
        masks=batch.masks[:, :horizon],
        valid=batch.valid[:, :horizon],
    )


class ReinforceAgent(Agent):
    """Batched REINFORCE on ``TokenGen-v0``.

    Args:
        policy: the network to train (moved to ``config.device``).
        config: the run (agent "reinforce"): env, batch_size, lr, gamma, credit, baseline...
        ref_policy: frozen reference for the KL penalty (a copy is taken; default: a copy of
            ``policy`` at construction when ``config.kl_coef > 0``).

    Example:
        >>> agent = ReinforceAgent(policy, TrainConfig(agent="reinforce", task="copy"))
        >>> metrics = agent.train_iteration()
    """

    name = "reinforce"

    def __init__(
        self,
        policy: Policy,
        config: TrainConfig,
        ref_policy: Policy | None = None,
    ) -> None:
        super().__init__(policy, config)
        self.env_kwargs = config.make_kwargs()
        self.vec = gym.make_vec("TokenGen-v0", num_envs=config.batch_size, **self.env_kwargs)
        self.base = getattr(self.vec, "unwrapped", self.vec)
        self.generator = torch.Generator(self.device).manual_seed(config.seed)
        self.prompt_rng = np.random.default_rng(config.seed)
        self.ref_policy = None
        if config.kl_coef > 0:
            self.ref_policy = frozen_copy(ref_policy or policy, self.device)
        self.teacher_policy = None
        if config.teacher is not None:  # credit="distill"; raises on a different vocabulary
            teacher = load_checkpoint(config.teacher, self.vec).policy
            self.teacher_policy = frozen_copy(teacher, self.device)

    def sample_prompts(self) -> np.ndarray:
        """(batch_size,) prompt indices: batch_size / group_size prompts, each repeated."""
        k = self.config.group_size
        return grouped_prompts(
            self.prompt_rng, self.base.num_prompts, self.config.batch_size // k, k
        )

    def rollout(self) -> Rollout:
        """Sample one episode per env with the current policy."""
        seed = self.config.seed if self.iteration == 0 else None
        return collect_rollout(
            self.vec, self.policy, self.sample_prompts(), self.generator, seed=seed
        )

    def update(self, batch: Rollout) -> dict[str, torch.Tensor]:
        """One rollout's update: one gradient step, or PPO's epochs over minibatches."""
        c = self.config
        d = rollout_decisions(batch)
        kwargs = dict(
            sequence_reward=batch.sequence_reward,
            gamma=c.gamma,
            credit=c.credit,
            baseline=c.baseline,
            group_size=c.group_size,
            normalize_advantages=c.normalize_advantages,
            entropy_coef=c.entropy_coef,
            value_coef=c.value_coef,
            kl_coef=c.kl_coef,
            ref_policy=self.ref_policy,
            scale_rewards=c.scale_rewards,
            gae_lambda=c.gae_lambda,
            loss_agg_mode=c.loss_agg_mode,
            horizon=int(self.base.max_new_tokens),
            kl_estimator=c.kl_estimator,
            kl_in_reward=c.kl_in_reward,
            teacher_policy=self.teacher_policy,
        )
        rewards = batch.rewards[:, : d.actions.shape[1]]
        if c.baseline == "vine":
            kwargs["values"] = self.vine_values(batch, d)
        cache: dict[str, torch.Tensor] = {}  # the rollout's advantages, entropy: diagnostics
        if c.ppo_epochs == 1 and c.num_minibatches == 1:  # ratio 1: the plain gradient
            loss, stats = reinforce_loss(self.policy, d, rewards, out=cache, **kwargs)
            self.optimizer_step(loss, stats)
            return {**stats, **rollout_diagnostics(batch, d, cache, c.group_size)}
        with torch.no_grad():  # advantages and log pi_old fixed at rollout time
            reinforce_loss(self.policy, d, rewards, out=cache, **kwargs)
        size = d.tokens.shape[0] // c.num_minibatches
        for _ in range(c.ppo_epochs):
            order = torch.randperm(d.tokens.shape[0], generator=self.generator, device=self.device)
            for lo in range(0, d.tokens.shape[0], size):
                rows = order[lo : lo + size]
                loss, stats = reinforce_loss(
                    self.policy,
                    select(d, rows),
                    rewards[rows],
                    **{**kwargs, "sequence_reward": batch.sequence_reward[rows]},
                    advantages=cache["advantages"][rows],
                    value_targets=cache["returns"][rows],
                    old_logp=cache["logp"][rows],
                    clip_range=c.clip_range,
                )
                self.optimizer_step(loss, stats)
        return {**stats, **rollout_diagnostics(batch, d, cache, c.group_size)}

    @torch.no_grad()
    def vine_values(self, batch: Rollout, d: Decisions) -> torch.Tensor:
        """VinePPO's V(s_t) of every visited prefix: the mean return-to-go of ``vine_rollouts``
        continuations sampled with the current policy from it (the env's prefix reset).

        Returns:
            (B, T) values, 0 past each episode's end.
        """
        c, k = self.config, self.config.vine_rollouts
        lengths = d.valid.sum(1).tolist()
        actions, prompts = d.actions.tolist(), batch.prompt_index.tolist()
        items = [(b, t) for b in range(len(lengths)) for t in range(lengths[b]) for _ in range(k)]
        values = torch.zeros(d.valid.shape, device=self.device)
        n = c.batch_size  # the agent's vector env runs the continuations, n at a time
        for lo in range(0, len(items), n):
            chunk = items[lo : lo + n]
            padded = chunk + [chunk[-1]] * (n - len(chunk))  # every env runs; extras unread
            roll = collect_rollout(
                self.vec,
                self.policy,
                np.array([prompts[b] for b, _ in padded]),
                self.generator,
                prefix=[actions[b][:t] for b, t in padded],
            )
            g = returns(roll.rewards, c.gamma, c.credit, roll.sequence_reward, roll.valid)
            rows = torch.tensor([b for b, _ in chunk], device=self.device)
            cols = torch.tensor([t for _, t in chunk], device=self.device)
            values.index_put_((rows, cols), g[: len(chunk), 0].float() / k, accumulate=True)
        return values

    def train_iteration(self) -> dict[str, float]:
        """Rollout then update; returns float metrics including time shares."""
        t0 = time.perf_counter()
        batch = self.rollout()
        t1 = time.perf_counter()
        stats = self.update(batch)
        t2 = time.perf_counter()
        self.iteration += 1
        n_tokens = int(batch.valid.sum())
        self.episodes += batch.valid.shape[0]
        self.tokens += n_tokens
        metrics = {k: float(v) for k, v in stats.items()}
        metrics.update(rollout_metrics(batch, t0, t1, t2))
        metrics.update(
            {"charts/episodes": float(self.episodes), "charts/tokens": float(self.tokens)}
        )
        return metrics
