"""Shared test configurations and rollout helpers."""

from __future__ import annotations

from typing import Any

import numpy as np

TASK_NAMES = ("copy", "reverse", "sort", "addition", "parity", "target")

# Small configurations: every task in every reward mode, and the one-token edge case.
CONFIGS: list[dict[str, Any]] = [
    {"task": name, "reward_mode": mode, "gamma": 0.9, "train_size": 40, "test_size": 10}
    for name in TASK_NAMES
    for mode in ("terminal", "dense", "progress")
] + [
    {
        "task": "target",
        "target": "a",
        "reward_mode": "dense",
        "max_new_tokens": 1,
        "train_size": 20,
        "test_size": 5,
    },
    {"task": "parity", "max_new_tokens": 1, "train_size": 20, "test_size": 5},
    {
        "dataset": [{"prompt": p, "answer": p[::-1]} for p in ("hi", "ab", "cab", "ho", "abc")],
        "reward": "edit",
        "reward_mode": "dense",
    },
]


def config_id(config: dict[str, Any]) -> str:
    return "-".join(
        f"{k}={v}" for k, v in config.items() if k not in ("train_size", "test_size", "dataset")
    )


def policy_actions(seed: int, vocab_size: int, eos_id: int, steps: int) -> np.ndarray:
    """Actions that mostly pick ordinary tokens, sometimes EOS, rarely a masked token."""
    rng = np.random.default_rng(seed)
    actions = rng.integers(4, vocab_size, size=steps)
    actions[rng.random(steps) < 0.15] = eos_id
    actions[rng.random(steps) < 0.03] = 0  # PAD: ends the episode as invalid
    return actions


def train_config(agent: str, env_kwargs: dict, **fields: Any) -> Any:
    """A CPU ``TrainConfig`` for ``agent`` on the env that ``env_kwargs`` describes.

    ``task``, ``reward_mode`` and ``gamma`` move to their own fields (the env's defaults when
    absent); everything else stays an env argument.
    """
    from tokengym.agents import TrainConfig

    env = dict(env_kwargs)
    return TrainConfig(
        agent=agent,
        task=env.pop("task", None),
        reward_mode=env.pop("reward_mode", "terminal"),
        gamma=env.pop("gamma", 1.0),
        env_kwargs=env,
        **{"device": "cpu", "progress": False, "target_success": None, **fields},
    )
