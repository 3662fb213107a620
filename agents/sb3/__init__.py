"""Stable-Baselines3 baselines on TokenGen-v0: PPO, A2C, DQN and MaskablePPO.

The names load lazily, so ``from .sb3.cli import add_sb3_arguments`` works without SB3
installed; the others then raise an ImportError with the install line.

Example:
    >>> from tokengym_agents.sb3 import SB3Config, train_sb3  # "agents.sb3" in a checkout
    >>> model, metrics = train_sb3(SB3Config(agent="maskable_ppo", total_timesteps=5_000))
"""

from __future__ import annotations

import importlib
from typing import Any

from .cli import INSTALL_HINT, SB3_AGENTS, add_sb3_arguments, config_from_args, run_sb3
from .config import ALGOS, POLICIES, SB3Config

_LAZY = {
    "sb3_act": "act",
    "MetricsCallback": "callbacks",
    "TokenGenFactory": "envs",
    "make_vec_env": "envs",
    "TokenExtractor": "features",
    "ALGO_CLASSES": "train",
    "build_model": "train",
    "evaluate_model": "train",
    "load_model": "train",
    "train_sb3": "train",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        module = importlib.import_module(f".{_LAZY[name]}", __name__)
    except ImportError as e:
        raise ImportError(f"{INSTALL_HINT} ({e})") from e
    return getattr(module, name)


__all__ = [
    "ALGOS",
    "ALGO_CLASSES",
    "POLICIES",
    "SB3_AGENTS",
    "MetricsCallback",
    "SB3Config",
    "TokenExtractor",
    "TokenGenFactory",
    "add_sb3_arguments",
    "build_model",
    "config_from_args",
    "evaluate_model",
    "load_model",
    "make_vec_env",
    "run_sb3",
    "sb3_act",
    "train_sb3",
]
