"""What every custom agent shares: its config, device, policy, optimizer step and counters."""

from __future__ import annotations

import copy

import numpy as np
import torch

from .config import TrainConfig
from .device import resolve_device
from .divergence import UpdateGuard, gradient_norm
from .optim import EagerAdam
from .policies import Policy


class Agent:
    """The common part of :class:`ReinforceAgent`, :class:`SupervisedAgent` and :class:`DPOAgent`.

    Args:
        policy: the network to train (moved to ``config.device``).
        config: the run; ``config.agent`` must be the subclass's ``name``.

    Attributes:
        iteration, episodes, tokens: updates done, episodes (or examples) and tokens trained on.
    """

    name = ""

    def __init__(self, policy: Policy, config: TrainConfig) -> None:
        if config.agent != self.name:
            raise ValueError(f"config.agent={config.agent!r} is invalid; expected {self.name!r}")
        self.config = config
        self.device = resolve_device(config.device)
        self.policy = policy.to(self.device)
        self.optimizer = EagerAdam(self.policy.parameters(), lr=config.lr)  # no torch._dynamo
        self.iteration = 0
        self.episodes = 0
        self.tokens = 0
        self.guard = UpdateGuard()

    def optimizer_step(self, loss: torch.Tensor, stats: dict[str, torch.Tensor]) -> None:
        """Backpropagate ``loss``, clip to ``max_grad_norm`` (its norm into ``stats``), step.

        Raises:
            DivergenceError: on a non-finite loss or gradient, before the step (the weights
                stay the last finite ones).
        """
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.max_grad_norm is not None:
            norm = torch.nn.utils.clip_grad_norm_(
                self.policy.parameters(), self.config.max_grad_norm
            )
            stats["losses/grad_norm"] = norm
        else:
            norm = gradient_norm(list(self.policy.parameters()))
        self.guard.check(self.iteration + 1, loss, norm)
        self.optimizer.step()


def frozen_copy(policy: Policy, device: torch.device) -> Policy:
    """A copy of ``policy`` on ``device`` in eval mode, without gradients (a reference policy)."""
    frozen = copy.deepcopy(policy).to(device).eval()
    frozen.requires_grad_(False)
    return frozen


def grouped_prompts(
    rng: np.random.Generator, num_prompts: int, groups: int, group_size: int
) -> np.ndarray:
    """(groups * group_size,) prompt indices: ``groups`` prompts drawn iid, each repeated.

    Example:
        >>> grouped_prompts(np.random.default_rng(0), 10, 2, 3).tolist()
        [8, 8, 8, 6, 6, 6]
    """
    return np.repeat(rng.integers(0, num_prompts, groups), group_size)
