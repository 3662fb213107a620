"""Turn a trained SB3 model into the ``act(obs, action_mask) -> actions`` of ``evaluate``."""

from __future__ import annotations

import numpy as np
import torch
from sb3_contrib import MaskablePPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.dqn.policies import DQNPolicy

from ..evaluate import Act


def _scores(model: BaseAlgorithm, obs: np.ndarray) -> torch.Tensor:
    """(N, V) action scores of a plain SB3 model: policy logits or Q-values."""
    policy = model.policy
    policy.set_training_mode(False)
    obs_t, _ = policy.obs_to_tensor(obs)
    with torch.no_grad():
        if isinstance(policy, DQNPolicy):
            return policy.q_net(obs_t)  # (N, V)
        if isinstance(policy, ActorCriticPolicy):
            return policy.get_distribution(obs_t).distribution.logits  # (N, V)
    raise TypeError(f"cannot mask the actions of a {type(policy).__name__}")


def sb3_act(
    model: BaseAlgorithm, *, deterministic: bool = True, use_mask: bool | None = None
) -> Act:
    """Wrap an SB3 model as the ``act`` callable that :func:`agents.evaluate.evaluate` runs.

    Args:
        model: a PPO, A2C, DQN or MaskablePPO model.
        deterministic: greedy actions (argmax) rather than samples from the policy.
        use_mask: forbid the env's masked tokens. None: only for MaskablePPO, which was trained
            with masks; PPO, A2C and DQN then act as they were trained, so choosing PAD, BOS or
            SEP ends the episode as a failure. True also masks the logits (Q-values for DQN) of
            plain models; it requires ``deterministic=True`` for them.

    Returns:
        ``act(obs (N, L) int64, action_mask (N, V)) -> actions (N,) int64``.

    Example:
        >>> result = evaluate(sb3_act(model), {"task": "target"})  # doctest: +SKIP
    """
    maskable = isinstance(model, MaskablePPO)
    if use_mask is None:
        use_mask = maskable
    if use_mask and not maskable and not deterministic:
        raise ValueError("use_mask=True with a plain SB3 model needs deterministic=True")

    def act(obs: np.ndarray, action_mask: np.ndarray) -> np.ndarray:
        mask = np.asarray(action_mask).astype(bool)  # (N, V)
        if maskable:
            masks = mask if use_mask else np.ones_like(mask)
            actions, _ = model.predict(obs, deterministic=deterministic, action_masks=masks)
        elif use_mask:
            scores = _scores(model, obs).cpu()  # (N, V)
            scores = scores.masked_fill(~torch.as_tensor(mask), torch.finfo(scores.dtype).min)
            actions = scores.argmax(-1).numpy()
        else:
            actions, _ = model.predict(obs, deterministic=deterministic)
        return np.asarray(actions, dtype=np.int64).reshape(len(obs))

    return act
