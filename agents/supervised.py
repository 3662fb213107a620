"""Supervised fine-tuning: grad J = E_{(x,y)~D}[grad log p(y|x)] on the task's reference answers.

Teacher forcing on ``[BOS, prompt, SEP, reference, EOS]`` sequences laid out exactly like the
env's observations, so the policy trained here is the policy the env runs.
"""

from __future__ import annotations

import time

import gymnasium as gym
import numpy as np
import torch

import tokengym  # noqa: F401  (registers TokenGen-v0)

from .base import Agent
from .config import TrainConfig
from .losses import Decisions, supervised_loss
from .policies import Policy


def reference_decisions(env: gym.Env, device: torch.device | str = "cpu") -> Decisions:
    """Every (prompt, reference + EOS) pair of the env's active split as padded decisions.

    Args:
        env: a ``TokenGen-v0`` env (wrapped or not) whose prompts all have references.
        device: where to put the tensors.

    Returns:
        Decisions with tokens (N, L), start (N,), actions = targets (N, T), masks (V,) from the
        env, valid (N, T).

    Raises:
        ValueError: if a prompt has no reference, or a target token is masked by the env.
    """
    base = env.unwrapped
    tok = base.tokenizer
    n, length, horizon = base.num_prompts, base.observation_length, base.max_new_tokens
    tokens = np.full((n, length), tok.pad_id, dtype=np.int64)
    targets = np.zeros((n, horizon), dtype=np.int64)
    valid = np.zeros((n, horizon), dtype=bool)
    start = np.zeros(n, dtype=np.int64)
    for i, (prompt, ref) in enumerate(zip(base.prompt_ids, base.reference_ids)):
        if ref is None:
            raise ValueError(f"prompt {i} has no reference answer; supervised training needs one")
        target = [*ref, tok.eos_id]  # EOS is always a target
        if len(target) > horizon:
            raise ValueError(
                f"reference {i} needs {len(target)} tokens with EOS but max_new_tokens={horizon}"
            )
        seq = [tok.bos_id, *prompt, tok.sep_id, *target]
        tokens[i, : len(seq)] = seq
        start[i] = len(prompt) + 1
        targets[i, : len(target)] = target
        valid[i, : len(target)] = True
    mask = torch.as_tensor(np.array(base.action_masks()), dtype=torch.bool)  # (V,), a copy
    if not mask[torch.from_numpy(targets[valid])].all():
        raise ValueError("a reference token is masked by the env's action mask")
    return Decisions(
        tokens=torch.from_numpy(tokens).to(device),
        start=torch.from_numpy(start).to(device),
        actions=torch.from_numpy(targets).to(device),
        masks=mask.to(device),
        valid=torch.from_numpy(valid).to(device),
    )


def minibatch(d: Decisions, index: torch.Tensor) -> Decisions:
    """Rows ``index`` of a padded decision batch, trimmed to their longest target.

    Masks shared by every decision ((V,)) are kept; per-decision masks ((B, T, V)) are indexed.
    """
    valid = d.valid[index]
    horizon = int(valid.any(0).sum())
    masks = d.masks if d.masks.dim() == 1 else d.masks[index, :horizon]
    return Decisions(
        tokens=d.tokens[index],
        start=d.start[index],
        actions=d.actions[index, :horizon],
        masks=masks,
        valid=valid[:, :horizon],
    )


class SupervisedAgent(Agent):
    """Teacher-forced maximum likelihood on the train split's references.

    Args:
        policy: the network to train (moved to ``config.device``).
        config: the run (agent "supervised"): env, batch_size, lr, max_grad_norm, seed...

    Example:
        >>> agent = SupervisedAgent(policy, TrainConfig(agent="supervised", task="copy"))
        >>> metrics = agent.train_iteration()
    """

    name = "supervised"

    def __init__(self, policy: Policy, config: TrainConfig) -> None:
        super().__init__(policy, config)
        env = gym.make("TokenGen-v0", **config.make_kwargs(split="train"))
        self.base = env.unwrapped
        self.data = reference_decisions(env, self.device)
        self.generator = torch.Generator().manual_seed(config.seed)  # CPU: indices only

    def update(self, batch: Decisions) -> dict[str, torch.Tensor]:
        """One gradient step on a batch of reference decisions."""
        loss = supervised_loss(self.policy, batch)
        stats = {"losses/nll": loss.detach()}
        self.optimizer_step(loss, stats)
        return stats

    def train_iteration(self) -> dict[str, float]:
        """Sample a minibatch and take one step; returns float metrics."""
        t0 = time.perf_counter()
        n = self.data.tokens.shape[0]
        index = torch.randint(0, n, (self.config.batch_size,), generator=self.generator)
        batch = minibatch(self.data, index.to(self.device))
        stats = self.update(batch)
        seconds = time.perf_counter() - t0
        n_tokens = int(batch.valid.sum())
        self.iteration += 1
        self.episodes += self.config.batch_size
        self.tokens += n_tokens
        metrics = {k: float(v) for k, v in stats.items()}
        metrics.update(
            {
                "losses/nll_per_token": metrics["losses/nll"] * self.config.batch_size / n_tokens,
                "charts/episodes": float(self.episodes),
                "charts/tokens": float(self.tokens),
                "perf/seconds": seconds,
                "perf/tokens_per_s": n_tokens / seconds,
                "perf/update_share": 1.0,
            }
        )
        return metrics
