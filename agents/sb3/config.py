"""The configuration of one Stable-Baselines3 baseline run."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ALGOS = ("ppo", "a2c", "dqn", "maskable_ppo")
POLICIES = ("mlp", "token")
POOLINGS = ("gru", "mean")
VEC_ENVS = ("dummy", "subproc")
START_METHODS = (None, "spawn", "fork", "forkserver")


def _check_int(name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name}={value!r} is invalid; expected an int >= {low}")


def _check_choice(name: str, value: object, allowed: tuple) -> None:
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is invalid; expected one of {allowed}")


@dataclass(frozen=True)
class SB3Config:
    """One SB3 training run on ``TokenGen-v0``.

    Attributes:
        agent: "ppo", "a2c", "dqn" (stable-baselines3) or "maskable_ppo" (sb3-contrib, reads the
            env's ``action_masks()``).
        policy: "mlp" (plain SB3 ``MlpPolicy``: token ids read as floats) or "token" (the
            :class:`~.features.TokenExtractor` in front of the same heads).
        pooling: how the token extractor summarises the sequence: "gru" or "mean".
        embed_dim: token embedding width of the token extractor.
        hidden_dim: feature width of the token extractor.
        net_arch: hidden layers of the policy/value (or Q) heads after the features.
        env_kwargs: keyword arguments of ``gym.make("TokenGen-v0", ...)`` for training; the
            evaluation uses the same with ``split="test"``.
        total_timesteps: env steps (tokens) to train for.
        num_envs: parallel envs of the vector env.
        vec_env: "dummy" (``DummyVecEnv``, in-process) or "subproc" (``SubprocVecEnv``).
        start_method: multiprocessing start method of "subproc" (None: SB3's default).
        seed: seeds SB3 (torch, numpy, action sampling) and the envs (env i gets seed + i).
        learning_rate: optimiser step size (None: the module's default for the algorithm,
            ``train.DEFAULT_KWARGS``: 1e-3 for all four).
        gamma: discount (1.0: the episode is the whole completion, nothing to discount).
        algo_kwargs: any other constructor argument of the SB3 class (n_steps, batch_size,
            ent_coef, exploration_fraction, ...).
        eval_every: env steps between greedy evaluations on the test split (0: only at the end).
        eval_episodes: prompts per evaluation, the first of the split (None: all of it).
        eval_split: the split evaluations run on: "test" (the yardstick) or "train".
        target_success: greedy test success whose first crossing is recorded (steps and
            episodes to reach it).
        stop_at_target: stop training at that crossing (needs eval_every > 0).
        log_every: env steps between metric lines.
        metrics_path: JSONL file of metric lines (None: keep them in memory only).
        progress: show a tqdm progress bar over total_timesteps.
        device: torch device for SB3 ("auto", "cpu", "cuda").
        torch_threads: torch's CPU threads during training (restored after it; None: leave
            torch's setting). 1 is fastest for these small networks: several threads cost up
            to 7x in synchronisation on a 2-core machine.
    """

    agent: str = "ppo"
    policy: str = "token"
    pooling: str = "gru"
    embed_dim: int = 32
    hidden_dim: int = 64
    net_arch: tuple[int, ...] = (64,)
    env_kwargs: Mapping[str, Any] = field(default_factory=lambda: {"task": "target"})
    total_timesteps: int = 20_000
    num_envs: int = 8
    vec_env: str = "dummy"
    start_method: str | None = None
    seed: int = 0
    learning_rate: float | None = None
    gamma: float = 1.0
    algo_kwargs: Mapping[str, Any] = field(default_factory=dict)
    eval_every: int = 0
    eval_episodes: int | None = None
    eval_split: str = "test"
    target_success: float = 0.9
    stop_at_target: bool = False
    log_every: int = 1_000
    metrics_path: str | None = None
    progress: bool = False
    device: str = "auto"
    torch_threads: int | None = 1

    def __post_init__(self) -> None:
        _check_choice("agent", self.agent, ALGOS)
        _check_choice("policy", self.policy, POLICIES)
        _check_choice("pooling", self.pooling, POOLINGS)
        _check_choice("vec_env", self.vec_env, VEC_ENVS)
        _check_choice("start_method", self.start_method, START_METHODS)
        _check_choice("eval_split", self.eval_split, ("test", "train"))
        for name in ("embed_dim", "hidden_dim", "total_timesteps", "num_envs", "log_every"):
            _check_int(name, getattr(self, name), 1)
        _check_int("seed", self.seed, 0)
        if self.torch_threads is not None:
            _check_int("torch_threads", self.torch_threads, 1)
        _check_int("eval_every", self.eval_every, 0)
        if self.eval_episodes is not None:
            _check_int("eval_episodes", self.eval_episodes, 1)
        if not all(isinstance(n, int) and n >= 1 for n in self.net_arch):
            raise ValueError(
                f"net_arch={self.net_arch!r} is invalid; expected a tuple of ints >= 1"
            )
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise ValueError(
                f"learning_rate={self.learning_rate!r} is invalid; expected a float > 0 or None"
            )
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma={self.gamma!r} is invalid; expected a float in [0, 1]")
        if not 0.0 < self.target_success <= 1.0:
            raise ValueError(
                f"target_success={self.target_success!r} is invalid; expected a float in (0, 1]"
            )
        if self.stop_at_target and not self.eval_every:
            raise ValueError(
                "stop_at_target=True is invalid with eval_every=0; set eval_every > 0 so that "
                "success is measured during training"
            )
        if "split" in self.env_kwargs:
            raise ValueError(
                f"env_kwargs={dict(self.env_kwargs)!r} is invalid; 'split' is set by the run "
                f"(train for training, test for evaluation)"
            )
        reserved = {"env", "policy", "seed", "learning_rate", "gamma", "device", "policy_kwargs"}
        clash = sorted(reserved & set(self.algo_kwargs))
        if clash:
            raise ValueError(
                f"algo_kwargs={dict(self.algo_kwargs)!r} is invalid; {clash} are set by "
                f"SB3Config fields of the same name"
            )
