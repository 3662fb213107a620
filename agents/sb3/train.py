"""Train PPO, A2C, DQN or MaskablePPO on TokenGen-v0 and score it with the shared evaluation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import torch
from sb3_contrib import MaskablePPO
from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecEnv

import tokengym  # noqa: F401  (registers TokenGen-v0)

from ..evaluate import EvalResult, evaluate
from ..metrics import MetricsWriter
from .act import sb3_act
from .callbacks import MetricsCallback, Sink
from .config import SB3Config
from .envs import ENV_ID, make_vec_env
from .features import TokenExtractor

ALGO_CLASSES: dict[str, type[BaseAlgorithm]] = {
    "ppo": PPO,
    "a2c": A2C,
    "dqn": DQN,
    "maskable_ppo": MaskablePPO,
}

# Starting points for episodes of a few tokens; SB3's own defaults target long control episodes
# (DQN's 1e6-transition buffer alone would hold 80 MB of int64 observations per 10 tokens).
# Any of them is overridden by SB3Config.algo_kwargs (and learning_rate by its own field).
_PPO = {"learning_rate": 1e-3, "n_steps": 64, "batch_size": 128, "n_epochs": 4, "ent_coef": 0.01}
DEFAULT_KWARGS: dict[str, dict[str, Any]] = {
    "ppo": _PPO,
    "maskable_ppo": _PPO,
    "a2c": {"learning_rate": 1e-3, "n_steps": 8, "ent_coef": 0.01},
    "dqn": {
        "learning_rate": 1e-3,
        "buffer_size": 50_000,
        "learning_starts": 500,
        "batch_size": 64,
        "train_freq": 1,
        "target_update_interval": 250,
        "exploration_fraction": 0.3,
        "exploration_final_eps": 0.02,
    },
}


def policy_kwargs(config: SB3Config, pad_id: int) -> dict[str, Any]:
    """The ``policy_kwargs`` of the SB3 constructor for ``config.policy``."""
    kwargs: dict[str, Any] = {"net_arch": list(config.net_arch)}
    if config.policy == "token":
        kwargs["features_extractor_class"] = TokenExtractor
        kwargs["features_extractor_kwargs"] = {
            "pad_id": pad_id,
            "embed_dim": config.embed_dim,
            "hidden_dim": config.hidden_dim,
            "pooling": config.pooling,
        }
    return kwargs


def build_model(config: SB3Config, env: VecEnv | gym.Env) -> BaseAlgorithm:
    """The untrained SB3 model of ``config`` on ``env`` (seeded with ``config.seed``).

    Args:
        config: the run's configuration.
        env: a TokenGen env or an SB3 vector env of them.

    Returns:
        A PPO, A2C, DQN or MaskablePPO model with an ``MlpPolicy`` (token extractor or not).
    """
    probe = gym.make(ENV_ID, **dict(config.env_kwargs)).unwrapped
    kwargs = {**DEFAULT_KWARGS[config.agent], **dict(config.algo_kwargs)}
    if config.learning_rate is not None:
        kwargs["learning_rate"] = config.learning_rate
    return ALGO_CLASSES[config.agent](
        "MlpPolicy",
        env,
        gamma=config.gamma,
        policy_kwargs=policy_kwargs(config, probe.tokenizer.pad_id),
        seed=config.seed,
        device=config.device,
        verbose=0,
        **kwargs,
    )


def load_model(path: str | Path, agent: str, **kwargs: Any) -> BaseAlgorithm:
    """Load a model written by SB3's ``model.save(path)`` (``kwargs`` go to ``.load``)."""
    if agent not in ALGO_CLASSES:
        raise ValueError(f"agent={agent!r} is invalid; expected one of {tuple(ALGO_CLASSES)}")
    return ALGO_CLASSES[agent].load(path, **kwargs)


def evaluate_model(
    model: BaseAlgorithm,
    env_kwargs: dict[str, Any],
    *,
    split: str = "test",
    num_prompts: int | None = None,
    seed: int = 0,
    use_mask: bool | None = None,
) -> EvalResult:
    """Greedy success of ``model`` on ``split``, through the shared ``evaluate``.

    Example:
        >>> evaluate_model(model, {"task": "target"}).success_rate  # doctest: +SKIP
        1.0
    """
    act = sb3_act(model, use_mask=use_mask)
    return evaluate(act, env_kwargs, split=split, num_prompts=num_prompts, seed=seed)


def _discard(step: int, metrics: dict[str, float]) -> None:
    """The sink of a run without a metrics file."""


def train_sb3(
    config: SB3Config, sink: Sink | None = None
) -> tuple[BaseAlgorithm, dict[str, float]]:
    """Train one SB3 baseline and evaluate it greedily on the test split.

    Args:
        config: the run (algorithm, policy, env, budget, logging).
        sink: receives every metric line as ``sink(step, metrics)`` (default: the shared
            ``MetricsWriter`` on ``config.metrics_path``, or nothing when that is None).

    Returns:
        The trained model (its training env is closed: ``set_env`` before more ``learn``) and
        the final metrics: the last metric line, with ``eval/greedy_success`` and
        ``eval/greedy_reward`` of the final evaluation, plus ``eval/steps_to_target`` and
        ``eval/episodes_to_target`` (NaN when greedy success never reached
        ``config.target_success``).

    Example:
        >>> model, metrics = train_sb3(SB3Config(agent="maskable_ppo", total_timesteps=5_000))
        >>> metrics["eval/greedy_success"]  # doctest: +SKIP
        1.0
    """
    writer = None
    if sink is None and config.metrics_path is not None:
        writer = MetricsWriter(config.metrics_path)
        sink = writer.write
    threads = torch.get_num_threads()
    if config.torch_threads is not None:
        torch.set_num_threads(config.torch_threads)
    env = make_vec_env(
        config.env_kwargs, config.num_envs, config.vec_env, config.start_method, config.seed
    )
    try:
        model = build_model(config, env)
        callback = MetricsCallback(
            sink or _discard,
            config.log_every,
            lambda: evaluate_model(
                model,
                dict(config.env_kwargs),
                split=config.eval_split,
                num_prompts=config.eval_episodes,
                seed=config.seed,
            ),
            eval_every=config.eval_every,
            target=config.target_success,
            stop_at_target=config.stop_at_target,
            progress=config.progress,
            total=config.total_timesteps,
            desc=config.agent,
        )
        model.learn(config.total_timesteps, callback=callback, log_interval=None)  # type: ignore[arg-type]
        final = callback.last
        if "eval/greedy_success" not in final or final["charts/env_steps"] != model.num_timesteps:
            final = callback.write(callback.evaluate())  # unless the last line just evaluated
    finally:
        env.close()
        torch.set_num_threads(threads)
        if writer is not None:
            writer.close()
    metrics = dict(final)
    metrics["eval/steps_to_target"] = callback.steps_to_target
    metrics["eval/episodes_to_target"] = callback.episodes_to_target
    return model, metrics
