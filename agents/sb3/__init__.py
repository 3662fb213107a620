"""Stable-Baselines3 baselines on TokenGen-v0: PPO, A2C, DQN and sb3-contrib's MaskablePPO.

Run them like every agent, ``train(TrainConfig(agent="maskable_ppo", task="target"))``, or get
the model back with :func:`train_sb3`.

Example:
    >>> from tokengym.agents.sb3 import train_sb3
    >>> model, metrics = train_sb3(TrainConfig(agent="maskable_ppo", task="target"))
"""

from __future__ import annotations

from tokengym._requires import require

require("stable_baselines3", "sb3_contrib", extra="sb3", package=__name__)

from .act import sb3_act  # noqa: E402  (after the dependency check)
from .callbacks import MetricsCallback  # noqa: E402
from .envs import TokenGenFactory, make_vec_env  # noqa: E402
from .features import TokenExtractor  # noqa: E402
from .train import (  # noqa: E402
    ALGO_CLASSES,
    DEFAULT_KWARGS,
    build_model,
    evaluate_model,
    load_model,
    run_sb3,
    train_sb3,
)

__all__ = [
    "ALGO_CLASSES",
    "DEFAULT_KWARGS",
    "MetricsCallback",
    "TokenExtractor",
    "TokenGenFactory",
    "build_model",
    "evaluate_model",
    "load_model",
    "make_vec_env",
    "run_sb3",
    "sb3_act",
    "train_sb3",
]
