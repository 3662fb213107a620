"""Environment throughput: single TokenGen-v0 vs CartPole-v1, native vector env vs SyncVectorEnv.

Run: `tokengym-bench run --only throughput` (numbers are steps per second; medians of repeats, with
every ratio taken from numbers measured in the same run).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

import tokengym

DEFAULT_ENV: dict[str, Any] = {"task": "copy", "reward_mode": "dense"}


@dataclass(frozen=True)
class Throughput:
    """Steps per second of one environment setup (median over repeats)."""

    name: str
    steps_per_second: float
    repeats: list[float]


def _legal_actions(env_kwargs: dict[str, Any], count: int, seed: int) -> np.ndarray:
    """Uniform draws over the tokens the env's action mask allows (EOS included)."""
    mask = tokengym.TokenGenEnv(**env_kwargs).action_masks()
    return np.random.default_rng(seed).choice(np.flatnonzero(mask), size=count)


def _time_single(env: gym.Env, actions: list[Any]) -> float:
    env.reset(seed=0)
    step, reset = env.step, env.reset
    start = time.perf_counter()
    for action in actions:
        _, _, terminated, truncated, _ = step(action)
        if terminated or truncated:
            reset()
    return len(actions) / (time.perf_counter() - start)


def _time_vector(env: gym.vector.VectorEnv, actions: np.ndarray) -> float:
    env.reset(seed=0)
    step = env.step
    start = time.perf_counter()
    for batch in actions:
        step(batch)
    return actions.size / (time.perf_counter() - start)


def _interleaved(runs: dict[str, Callable[[], float]], repeats: int) -> dict[str, Throughput]:
    """Medians over repeats taken round-robin, so that load on a noisy machine hits all alike."""
    for run in runs.values():
        run()  # warm-up
    values: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            values[name].append(run())
    return {name: Throughput(name, statistics.median(v), v) for name, v in values.items()}


def measure(
    env_kwargs: dict[str, Any] | None = None,
    single_steps: int = 100_000,
    num_envs: int = 1024,
    vector_steps: int = 200,
    sync_steps: int = 20,
    repeats: int = 5,
) -> dict[str, Throughput]:
    """Measures all four setups in one run; returns them by name."""
    kwargs = dict(DEFAULT_ENV if env_kwargs is None else env_kwargs)
    tokens = _legal_actions(kwargs, single_steps, seed=0)
    single_actions = [np.int64(a) for a in tokens]
    cartpole_actions = [np.int64(a) for a in np.random.default_rng(0).integers(0, 2, single_steps)]
    vector_actions = _legal_actions(kwargs, num_envs * vector_steps, 1).reshape(-1, num_envs)
    native = gym.make_vec("TokenGen-v0", num_envs=num_envs, copy=False, **kwargs)
    sync = gym.make_vec("TokenGen-v0", num_envs=num_envs, vectorization_mode="sync", **kwargs)
    single = gym.make("TokenGen-v0", **kwargs)
    cartpole = gym.make("CartPole-v1")
    runs = {
        "TokenGen-v0 (gym.make)": lambda: _time_single(single, single_actions),
        "CartPole-v1 (gym.make)": lambda: _time_single(cartpole, cartpole_actions),
        f"TokenGen native vector, N={num_envs}": lambda: _time_vector(native, vector_actions),
        f"TokenGen SyncVectorEnv, N={num_envs}": lambda: _time_vector(
            sync, vector_actions[:sync_steps]
        ),
    }
    return _interleaved(runs, repeats)


def table(results: dict[str, Throughput]) -> str:
    """A Markdown table with the two ratios the speed goals are about."""
    values = list(results.values())
    single, cartpole, native, sync = values
    lines = ["| setup | steps/s (median) |", "|---|---:|"]
    lines += [f"| {r.name} | {r.steps_per_second:,.0f} |" for r in values]
    lines += [
        "",
        f"TokenGen-v0 / CartPole-v1: {single.steps_per_second / cartpole.steps_per_second:.1f}x; "
        f"native vector / SyncVectorEnv: {native.steps_per_second / sync.steps_per_second:.1f}x",
    ]
    return "\n".join(lines)
