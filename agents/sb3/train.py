"""Train PPO, A2C, DQN or MaskablePPO on TokenGen-v0 and score it with the shared evaluation.

``train(TrainConfig(agent="maskable_ppo", ...))`` comes here; the TrainConfig fields prefixed
``sb3_`` (and num_envs, vec_env, start_method, log_every) are read only by these agents.
"""

from __future__ import annotations

import io
import signal
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch
from sb3_contrib import MaskablePPO
from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecEnv

import tokengym  # noqa: F401  (registers TokenGen-v0)

from ..checkpoint import write_atomic
from ..config import TrainConfig
from ..evaluate import EvalResult, evaluate
from ..optim import EagerAdam
from ..run import claim_folder, end_run, new_run_folder
from ..signals import stop_on_signals
from ..trained import stop_reason
from .act import sb3_act
from .callbacks import MetricsCallback, Sink
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
# Any of them is overridden by TrainConfig.sb3_kwargs (the learning rate is TrainConfig.lr).
_PPO = {"n_steps": 64, "batch_size": 128, "n_epochs": 4, "ent_coef": 0.01}
DEFAULT_KWARGS: dict[str, dict[str, Any]] = {
    "ppo": _PPO,
    "maskable_ppo": _PPO,
    "a2c": {"n_steps": 8, "ent_coef": 0.01},
    "dqn": {
        "buffer_size": 50_000,
        "learning_starts": 500,
        "batch_size": 64,
        "train_freq": 1,
        "target_update_interval": 250,
        "exploration_fraction": 0.3,
        "exploration_final_eps": 0.02,
    },
}


def policy_kwargs(config: TrainConfig, pad_id: int) -> dict[str, Any]:
    """The ``policy_kwargs`` of the SB3 constructor for ``config.sb3_policy``."""
    kwargs: dict[str, Any] = {"net_arch": list(config.sb3_net_arch)}
    # SB3's own Adam (its eps included), without the torch._dynamo import; A2C keeps RMSprop.
    if config.agent in ("ppo", "maskable_ppo"):
        kwargs |= {"optimizer_class": EagerAdam, "optimizer_kwargs": {"eps": 1e-5}}
    elif config.agent == "dqn":
        kwargs["optimizer_class"] = EagerAdam
    if config.sb3_policy == "token":
        kwargs["features_extractor_class"] = TokenExtractor
        kwargs["features_extractor_kwargs"] = {
            "pad_id": pad_id,
            "embed_dim": config.sb3_embed_dim,
            "hidden_dim": config.sb3_hidden_dim,
            "pooling": config.sb3_pooling,
        }
    return kwargs


def build_model(config: TrainConfig, env: VecEnv | gym.Env) -> BaseAlgorithm:
    """The untrained SB3 model of ``config`` on ``env`` (seeded with ``config.seed``).

    Args:
        config: the run's configuration.
        env: a TokenGen env or an SB3 vector env of them.

    Returns:
        A PPO, A2C, DQN or MaskablePPO model with an ``MlpPolicy`` (token extractor or not).
    """
    probe = gym.make(ENV_ID, **config.make_kwargs()).unwrapped
    kwargs = {**DEFAULT_KWARGS[config.agent], **dict(config.sb3_kwargs)}
    return ALGO_CLASSES[config.agent](
        "MlpPolicy",
        env,
        learning_rate=config.lr,
        gamma=config.gamma,
        policy_kwargs=policy_kwargs(config, probe.tokenizer.pad_id),
        seed=config.seed,
        device=config.device,
        verbose=0,
        **kwargs,
    )


def load_model(path: str | Path, agent: str, **kwargs: Any) -> BaseAlgorithm:
    """Load a model written by SB3's ``model.save(path)`` (``kwargs`` go to ``.load``).

    Warning: SB3's ``model.zip`` holds pickled Python objects, and loading one runs the code
    they name (as ``BaseAlgorithm.load`` does): load only files from a source you trust.
    """
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
    config: TrainConfig, sink: Sink | None = None
) -> tuple[BaseAlgorithm, dict[str, float]]:
    """Train one SB3 baseline and evaluate it greedily on the test split.

    Args:
        config: the run (an SB3 agent; budget ``total_timesteps`` env steps).
        sink: receives every metric line as ``sink(step, metrics)`` (default: none).

    Returns:
        The trained model (its training env is closed: ``set_env`` before more ``learn``) and
        the final metrics: the last metric line, with ``eval/greedy_success`` and
        ``eval/greedy_reward`` of the final evaluation, plus ``eval/steps_to_target`` and
        ``eval/episodes_to_target`` (NaN when greedy success never reached
        ``config.target_success``, or without one). Ctrl-C ends ``learn`` early, as SB3 does
        not, and so do SIGTERM (and a first SIGINT) after the current vector step: the model is
        returned with ``metrics["interrupted"] == 1.0`` and ``metrics["stopped_by"]`` the
        signal number.

    Example:
        >>> model, metrics = train_sb3(TrainConfig(agent="maskable_ppo", task="target"))
        >>> metrics["eval/greedy_success"]  # doctest: +SKIP
        1.0
    """
    threads = torch.get_num_threads()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    env_kwargs = config.make_kwargs()
    env = make_vec_env(
        env_kwargs, config.num_envs, config.vec_env, config.start_method, config.seed
    )
    interrupted = False
    stopped_by = signal.SIGINT
    try:
        model = build_model(config, env)
        callback = MetricsCallback(
            sink or _discard,
            config.log_every,
            lambda: evaluate_model(
                model,
                env_kwargs,
                split=config.eval_split,
                num_prompts=config.eval_prompts,
                seed=config.seed,
            ),
            eval_every=config.eval_every,
            target=config.target_success,
            progress=config.progress,
            total=config.total_timesteps,
            desc=config.agent,
        )
        with stop_on_signals() as stop:
            callback.stop = stop
            try:
                model.learn(config.total_timesteps, callback=callback, log_interval=None)  # type: ignore[arg-type]
            except KeyboardInterrupt as e:  # a second signal, or Ctrl-C without handlers
                interrupted, stopped_by = True, getattr(e, "signum", signal.SIGINT)
            if stop.signum is not None and not interrupted:
                interrupted, stopped_by = True, stop.signum
        final = callback.last
        if not interrupted and (
            "eval/greedy_success" not in final or final["charts/env_steps"] != model.num_timesteps
        ):
            final = callback.write(callback.evaluate())  # unless the last line just evaluated
    finally:
        env.close()
        torch.set_num_threads(threads)
    metrics = dict(final)
    metrics["eval/steps_to_target"] = callback.steps_to_target
    metrics["eval/episodes_to_target"] = callback.episodes_to_target
    if interrupted:
        metrics["interrupted"] = 1.0
        metrics["stopped_by"] = float(stopped_by)
    return model, metrics


def run_sb3(config: TrainConfig, out: Path) -> dict[str, float]:
    """``train(config)`` for SB3 agents: ``out/`` gets config.json, metrics and ``model.zip``
    (written atomically: a kill during the save leaves the previous file whole)."""
    claim_folder(out, config)
    last_eval: dict[str, float] = {}  # the last evaluation, for an interrupted run's final line
    with new_run_folder(out, config) as logger:

        def sink(step: int, line: dict[str, float]) -> None:
            last_eval.update({k: v for k, v in line.items() if k.startswith("eval/")})
            logger.write(step, line)

        model, metrics = train_sb3(config, sink)
    if config.checkpoint:
        buffer = io.BytesIO()
        model.save(buffer)
        write_atomic(out / "model.zip", buffer.getvalue())
    final = {**last_eval}
    final |= {k: v for k, v in metrics.items() if k.startswith(("eval/", "charts/episodes"))}
    final["charts/train_seconds"] = metrics.get("charts/train_seconds", 0.0)
    final["charts/env_steps"] = float(model.num_timesteps)
    stopped_by = metrics.get("stopped_by")
    _, words = stop_reason(config, final.get("eval/greedy_success"))
    end_run(final, out, None if stopped_by is None else int(stopped_by), stopped=words)
    return metrics
