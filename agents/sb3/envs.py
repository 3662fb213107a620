"""TokenGen-v0 envs for SB3: a picklable factory and DummyVecEnv / SubprocVecEnv builders."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv

ENV_ID = "TokenGen-v0"


@dataclass(frozen=True)
class TokenGenFactory:
    """A picklable ``() -> env`` for SB3's vector envs (subprocesses started by spawn included).

    Attributes:
        env_kwargs: keyword arguments of ``gym.make("TokenGen-v0", ...)``.
        monitor: wrap in SB3's ``Monitor`` (episode return/length in ``info["episode"]``, which
            feeds SB3's own ``rollout/ep_rew_mean``).
    """

    env_kwargs: Mapping[str, Any] = field(default_factory=dict)
    monitor: bool = True

    def __call__(self) -> gym.Env:
        import tokengym  # noqa: F401  (registers TokenGen-v0 in a freshly spawned process)

        env = gym.make(ENV_ID, **dict(self.env_kwargs))
        return Monitor(env) if self.monitor else env


def make_vec_env(
    env_kwargs: Mapping[str, Any],
    num_envs: int,
    vec_env: str = "dummy",
    start_method: str | None = None,
    seed: int | None = None,
) -> VecEnv:
    """``num_envs`` TokenGen envs in an SB3 vector env.

    Args:
        env_kwargs: keyword arguments of ``gym.make("TokenGen-v0", ...)``.
        num_envs: number of envs.
        vec_env: "dummy" (``DummyVecEnv``) or "subproc" (``SubprocVecEnv``).
        start_method: start method of "subproc" ("spawn", "fork", "forkserver"; None: SB3's).
        seed: if given, env i is reset with seed + i on the first reset (SB3 models also do
            this themselves from their own ``seed``).

    Returns:
        The vector env.

    Example:
        >>> vec = make_vec_env({"task": "target"}, num_envs=4, vec_env="subproc",
        ...                    start_method="spawn", seed=0)
    """
    fns = [TokenGenFactory(dict(env_kwargs)) for _ in range(num_envs)]
    if vec_env == "dummy":
        vec: VecEnv = DummyVecEnv(fns)  # type: ignore[arg-type]
    elif vec_env == "subproc":
        vec = SubprocVecEnv(fns, start_method=start_method)  # type: ignore[arg-type]
    else:
        raise ValueError(f"vec_env={vec_env!r} is invalid; expected one of ('dummy', 'subproc')")
    if seed is not None:
        vec.seed(seed)
    return vec
