"""RLlib PPO on TokenGen-v0 (new API stack: RLModule + Learner), with the action mask applied.

Needs the ``ray`` extra (``pip install -e ".[ray]"``). Two pieces adapt the env to RLlib:

- ``MaskedTokenObs``: a wrapper that casts the int64 token ids to float32 (RLlib's default
  encoder is an MLP over float inputs) and adds the env's action mask, giving the Dict
  observation ``{"action_mask", "observations"}`` of RLlib's action-masking pattern;
- RLlib's ``ActionMaskingTorchRLModule`` (shipped with RLlib as an example class): a PPO module
  that adds ``log(mask)`` to the logits, so PAD, BOS and SEP are never sampled.

An RLlib callback adds, over the episodes of each training iteration, the share that succeeded
(``env_runners/tokengym/success``) and the number that ended on a masked token
(``env_runners/tokengym/invalid_token``, 0 while the mask holds). Tested with ray 2.49, 2.50,
2.58 and 2.60 (gymnasium 1.1.1 / 1.2.2, torch 2.13).

Example:
    >>> import ray
    >>> from tokengym.agents.rllib import train_ppo
    >>> ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True)
    >>> results = train_ppo({"task": "target"}, iterations=10)
    >>> results[-1]["env_runners"]["tokengym/success"]
    >>> ray.shutdown()
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.examples.rl_modules.classes.action_masking_rlm import ActionMaskingTorchRLModule
from ray.tune.registry import register_env

ENV_NAME = "TokenGenMasked-v0"
"""The name under which ``make_env`` is registered with Ray's env registry."""


class MaskedTokenObs(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """TokenGen observations as RLlib's action-masking modules read them.

    The observation becomes ``{"action_mask": Box(0, 1, (V,), float32), "observations":
    Box(0, V-1, (L,), float32)}``: the token ids cast to float32 and the mask of the tokens that
    may be generated (``env.unwrapped.action_masks()``, 0 for PAD, BOS and SEP).

    Example:
        >>> env = MaskedTokenObs(gym.make("TokenGen-v0", task="target"))
        >>> obs, info = env.reset(seed=0)
        >>> obs["action_mask"][:3]  # PAD, BOS, SEP
        array([0., 0., 0.], dtype=float32)
    """

    def __init__(self, env: gym.Env) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.ObservationWrapper.__init__(self, env)
        tokens = env.observation_space
        if not isinstance(tokens, spaces.Box) or not isinstance(env.action_space, spaces.Discrete):
            raise TypeError(
                f"MaskedTokenObs needs a Box observation and a Discrete action space, got "
                f"{tokens} and {env.action_space}"
            )
        vocab = int(env.action_space.n)
        self.observation_space = spaces.Dict(
            {
                "action_mask": spaces.Box(0.0, 1.0, (vocab,), np.float32),
                "observations": spaces.Box(0.0, float(vocab - 1), tokens.shape, np.float32),
            }
        )

    def observation(self, observation: np.ndarray) -> dict[str, np.ndarray]:
        """The float32 ids and the current action mask."""
        mask = self.env.unwrapped.action_masks()  # type: ignore[attr-defined]
        return {
            "action_mask": mask.astype(np.float32),
            "observations": observation.astype(np.float32),
        }


def make_env(env_config: Mapping[str, Any]) -> gym.Env:
    """RLlib's env creator: ``gym.make("TokenGen-v0", **env_config)`` wrapped in MaskedTokenObs.

    Example:
        >>> env = make_env({"task": "target"})
    """
    import tokengym  # noqa: F401  (registers TokenGen-v0 in a fresh Ray worker)

    return MaskedTokenObs(gym.make("TokenGen-v0", **dict(env_config)))


def _log_episode_end(*, episode: Any, metrics_logger: Any, **kwargs: Any) -> None:
    """RLlib ``on_episode_end`` callback: success share and masked-token endings."""
    info = episode.get_infos(-1)
    metrics_logger.log_value("tokengym/success", float(info["success"]), reduce="mean")
    invalid = float(info["stop_reason"] == "invalid_token")
    metrics_logger.log_value("tokengym/invalid_token", invalid, reduce="sum")


def ppo_config(
    env_kwargs: Mapping[str, Any],
    *,
    num_env_runners: int = 0,
    hidden: tuple[int, ...] = (64, 64),
    seed: int | None = None,
    **training: Any,
) -> PPOConfig:
    """A PPO config for TokenGen-v0 with the action mask applied.

    Args:
        env_kwargs: keyword arguments of ``gym.make("TokenGen-v0", ...)``.
        num_env_runners: sampling workers (0: sample in the driver process).
        hidden: layer sizes of the policy and value MLPs over the float32 token ids.
        seed: seed of RLlib and of the envs' resets.
        **training: overrides of ``PPOConfig.training`` (``lr``, ``train_batch_size_per_learner``,
            ``minibatch_size``, ``num_epochs``, ``entropy_coeff``, ...). Default ``gamma`` is the
            env's (1.0 unless ``env_kwargs`` sets it), so dense rewards keep their optimum.

    Returns:
        The config; ``ppo_config(...).build_algo()`` gives the algorithm.

    Example:
        >>> config = ppo_config({"task": "target"}, lr=1e-3, train_batch_size_per_learner=512)
        >>> algo = config.build_algo()
    """
    register_env(ENV_NAME, make_env)
    defaults: dict[str, Any] = {
        "gamma": float(env_kwargs.get("gamma", 1.0)),
        "lr": 3e-4,
        "train_batch_size_per_learner": 1024,
        "minibatch_size": 256,
        "num_epochs": 4,
        "entropy_coeff": 0.01,
    }
    module = RLModuleSpec(
        module_class=ActionMaskingTorchRLModule,
        model_config={"fcnet_hiddens": list(hidden), "head_fcnet_hiddens": []},
    )
    return (
        PPOConfig()
        .environment(ENV_NAME, env_config=dict(env_kwargs))
        .env_runners(num_env_runners=num_env_runners)
        .rl_module(rl_module_spec=module)
        .training(**{**defaults, **training})
        .callbacks(on_episode_end=_log_episode_end)
        .debugging(seed=seed)
    )


def train_ppo(
    env_kwargs: Mapping[str, Any], iterations: int, **overrides: Any
) -> list[dict[str, Any]]:
    """Train RLlib PPO on TokenGen-v0 for ``iterations`` training iterations.

    Call ``ray.init`` first to choose its resources (as in the module example); otherwise Ray
    starts itself on first use with its defaults (all cores).

    Args:
        env_kwargs: keyword arguments of ``gym.make("TokenGen-v0", ...)``.
        iterations: number of ``Algorithm.train()`` calls.
        **overrides: keyword arguments of ``ppo_config``.

    Returns:
        One RLlib result dict per iteration (``env_runners/episode_return_mean``,
        ``env_runners/tokengym/success``, ``learners/default_policy/policy_loss``, ...).

    Example:
        >>> results = train_ppo({"task": "target"}, iterations=2, seed=0)
    """
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    algo = ppo_config(env_kwargs, **overrides).build_algo()
    try:
        return [algo.train() for _ in range(iterations)]
    finally:
        algo.stop()
