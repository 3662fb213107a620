"""REINFORCE: grad J = E_pi[sum_t grad log pi(a_t|s_t) G_t], on batched rollouts of the vector env.

Reads top to bottom: config, then the agent (sample prompts -> rollout -> loss -> step).
The loss itself lives in ``losses.py``; returns and baselines in ``returns.py``.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch

import tokengym  # noqa: F401  (registers TokenGen-v0)

from .device import resolve_device
from .losses import Decisions, reinforce_loss
from .policies import Policy
from .returns import BASELINES, CREDITS
from .rollout import Rollout, collect_rollout
from .validation import check_optimizer_fields


@dataclass(frozen=True)
class ReinforceConfig:
    """Hyper-parameters of :class:`ReinforceAgent`.

    Attributes:
        batch_size: episodes per update (= the vector env's num_envs).
        lr: Adam learning rate.
        gamma: discount of the returns G_t (match the env's ``gamma`` for dense rewards).
        credit: how tokens are credited (see ``returns.py``): "final" (R on the last token,
            reward-to-go), "every_token" (R on every token, reward-to-go), "trajectory" (every
            token gets the episode's discounted return G_0) or "env" (the env's per-step
            rewards, reward-to-go).
        baseline: "none", "mean" (batch mean per step), "rloo" (leave-one-out over the
            group_size samples of each prompt) or "value" (a learned value head).
        group_size: samples per prompt in a batch; "rloo" needs >= 2.
        normalize_advantages: standardise advantages over each batch.
        entropy_coef: entropy bonus weight.
        value_coef: value loss weight (baseline="value").
        kl_coef: weight of KL(pi || reference policy); needs a reference policy.
        max_grad_norm: clip the global gradient norm to this (None: no clipping).
        seed: seeds the action sampler, the prompt sampler and the env.
        device: "auto" (CUDA when available), "cpu", "cuda", ...
    """

    batch_size: int = 512
    lr: float = 1e-3
    gamma: float = 1.0
    credit: str = "env"
    baseline: str = "mean"
    group_size: int = 1
    normalize_advantages: bool = False
    entropy_coef: float = 0.0
    value_coef: float = 0.5
    kl_coef: float = 0.0
    max_grad_norm: float | None = 1.0
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        check_optimizer_fields(self.batch_size, self.lr, self.max_grad_norm)
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma={self.gamma!r} is invalid; expected a float in [0, 1]")
        if self.credit not in CREDITS:
            raise ValueError(f"credit={self.credit!r} is invalid; expected one of {CREDITS}")
        if self.baseline not in BASELINES:
            raise ValueError(f"baseline={self.baseline!r} is invalid; expected one of {BASELINES}")
        if not isinstance(self.group_size, int) or self.group_size < 1:
            raise ValueError(f"group_size={self.group_size!r} is invalid; expected an int >= 1")
        if self.batch_size % self.group_size:
            raise ValueError(
                f"batch_size={self.batch_size} is not a multiple of group_size={self.group_size}"
            )
        if self.baseline == "rloo" and self.group_size < 2:
            raise ValueError(
                f"baseline='rloo' needs group_size >= 2 samples per prompt; got {self.group_size}"
            )
        for name in ("entropy_coef", "value_coef", "kl_coef"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)!r} is invalid; expected >= 0")


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


class ReinforceAgent:
    """Batched REINFORCE on ``TokenGen-v0``.

    Args:
        policy: the network to train (moved to ``config.device``).
        env_kwargs: keyword arguments of ``gym.make_vec("TokenGen-v0", ...)`` (task, reward...).
        config: hyper-parameters.
        ref_policy: frozen reference for the KL penalty (a copy is taken; default: a copy of
            ``policy`` at construction when ``config.kl_coef > 0``).

    Example:
        >>> agent = ReinforceAgent(policy, {"task": "copy", "reward_mode": "dense"})
        >>> metrics = agent.train_iteration()
    """

    name = "reinforce"

    def __init__(
        self,
        policy: Policy,
        env_kwargs: dict,
        config: ReinforceConfig | None = None,
        ref_policy: Policy | None = None,
    ) -> None:
        self.config = config = config or ReinforceConfig()
        self.device = resolve_device(config.device)
        self.policy = policy.to(self.device)
        self.env_kwargs = dict(env_kwargs)
        self.vec = gym.make_vec("TokenGen-v0", num_envs=config.batch_size, **self.env_kwargs)
        self.base = getattr(self.vec, "unwrapped", self.vec)
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=config.lr)
        self.generator = torch.Generator(self.device).manual_seed(config.seed)
        self.prompt_rng = np.random.default_rng(config.seed)
        self.ref_policy = None
        if config.kl_coef > 0:
            self.ref_policy = copy.deepcopy(ref_policy or policy).to(self.device).eval()
            self.ref_policy.requires_grad_(False)
        self.iteration = 0
        self.episodes = 0
        self.tokens = 0

    def sample_prompts(self) -> np.ndarray:
        """(batch_size,) prompt indices: batch_size / group_size prompts, each repeated."""
        k = self.config.group_size
        prompts = self.prompt_rng.integers(0, self.base.num_prompts, self.config.batch_size // k)
        return np.repeat(prompts, k)

    def rollout(self) -> Rollout:
        """Sample one episode per env with the current policy."""
        seed = self.config.seed if self.iteration == 0 else None
        return collect_rollout(
            self.vec, self.policy, self.sample_prompts(), self.generator, seed=seed
        )

    def update(self, batch: Rollout) -> dict[str, torch.Tensor]:
        """One gradient step on a rollout; returns detached statistics."""
        c = self.config
        d = rollout_decisions(batch)
        loss, stats = reinforce_loss(
            self.policy,
            d,
            batch.rewards[:, : d.actions.shape[1]],
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
        )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if c.max_grad_norm is not None:
            stats["losses/grad_norm"] = torch.nn.utils.clip_grad_norm_(
                self.policy.parameters(), c.max_grad_norm
            )
        self.optimizer.step()
        return stats

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
        metrics.update(
            {
                "charts/success": float(batch.success.float().mean()),
                "charts/sequence_reward": float(batch.sequence_reward.mean()),
                "charts/episode_length": n_tokens / batch.valid.shape[0],
                "charts/episodes": float(self.episodes),
                "charts/tokens": float(self.tokens),
                "perf/seconds": t2 - t0,
                "perf/tokens_per_s": n_tokens / (t2 - t0),
                "perf/rollout_share": (t1 - t0 - batch.env_seconds) / (t2 - t0),
                "perf/env_share": batch.env_seconds / (t2 - t0),
                "perf/update_share": (t2 - t1) / (t2 - t0),
            }
        )
        return metrics
