"""The SB3 part of ``python -m agents.train``: its arguments and its run.

Nothing here imports stable-baselines3 until a run starts, so the training command keeps
working without the ``sb3`` extra for the custom agents.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from .config import ALGOS, POLICIES, POOLINGS, VEC_ENVS, SB3Config

SB3_AGENTS = ALGOS  # the --agent values this module runs
INSTALL_HINT = (
    'the SB3 baselines need stable-baselines3 and sb3-contrib: pip install "tokengym[sb3]"'
)


def _json_dict(text: str) -> dict[str, Any]:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def add_sb3_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the SB3-only options (an argument group) to the training command's parser.

    The shared options are read from the parser's own: ``--agent``, ``--seed``, ``--device``,
    ``--lr``, ``--gamma``, ``--eval-prompts``, ``--target-success``, ``--no-progress``.

    Example:
        >>> p = add_sb3_arguments(argparse.ArgumentParser())
        >>> p.parse_args(["--sb3-policy", "mlp"]).sb3_policy
        'mlp'
    """
    g = parser.add_argument_group("SB3 baselines (--agent ppo|a2c|dqn|maskable_ppo)")
    g.add_argument("--total-timesteps", type=int, default=20_000, help="env steps (tokens)")
    g.add_argument(
        "--sb3-policy",
        choices=POLICIES,
        default="token",
        help="mlp: plain SB3 MlpPolicy; token: embedding features extractor",
    )
    g.add_argument("--sb3-pooling", choices=POOLINGS, default="gru")
    g.add_argument("--sb3-embed-dim", type=int, default=32)
    g.add_argument("--sb3-hidden-dim", type=int, default=64)
    g.add_argument("--num-envs", type=int, default=8)
    g.add_argument("--vec-env", choices=VEC_ENVS, default="dummy")
    g.add_argument("--start-method", choices=("spawn", "fork", "forkserver"), default=None)
    g.add_argument(
        "--sb3-kwargs",
        type=_json_dict,
        default={},
        metavar="JSON",
        help="extra SB3 constructor arguments, e.g. '{\"n_steps\": 128}'",
    )
    g.add_argument(
        "--eval-every-steps",
        type=int,
        default=2_000,
        help="env steps between greedy test evaluations",
    )
    g.add_argument("--log-every-steps", type=int, default=1_000)
    return parser


def config_from_args(
    args: argparse.Namespace, env_kwargs: dict[str, Any], metrics_path: str | Path | None
) -> SB3Config:
    """The :class:`SB3Config` of parsed arguments (shared options read when present)."""
    target = getattr(args, "target_success", None)
    return SB3Config(
        agent=args.agent,
        policy=args.sb3_policy,
        pooling=args.sb3_pooling,
        embed_dim=args.sb3_embed_dim,
        hidden_dim=args.sb3_hidden_dim,
        env_kwargs=dict(env_kwargs),
        total_timesteps=args.total_timesteps,
        num_envs=args.num_envs,
        vec_env=args.vec_env,
        start_method=args.start_method,
        seed=getattr(args, "seed", 0),
        learning_rate=getattr(args, "lr", None),
        gamma=getattr(args, "gamma", 1.0),
        algo_kwargs=dict(args.sb3_kwargs),
        eval_every=args.eval_every_steps,
        eval_episodes=getattr(args, "eval_prompts", None),
        target_success=0.9 if target is None else target,
        stop_at_target=target is not None,
        log_every=args.log_every_steps,
        metrics_path=None if metrics_path is None else str(metrics_path),
        progress=not getattr(args, "no_progress", False),
        device=getattr(args, "device", "auto"),
    )


def run_sb3(args: argparse.Namespace, env_kwargs: dict[str, Any], out: Path | None) -> dict:
    """Train ``args.agent`` with SB3, write ``out/metrics.jsonl`` and ``out/model.zip``.

    Prints the same ``final key=value ... run=<out>`` line as the custom agents.

    Returns:
        The final metrics (``eval/greedy_success`` and the rest).
    """
    try:
        from .train import train_sb3
    except ImportError as e:  # the optional dependency is missing
        raise SystemExit(f"{INSTALL_HINT} ({e})") from e
    out = out or Path("runs") / f"{args.agent}-{time.strftime('%Y%m%d-%H%M%S')}"
    config = config_from_args(args, env_kwargs, out / "metrics.jsonl")
    model, metrics = train_sb3(config)
    model.save(out / "model.zip")
    final = {k: v for k, v in metrics.items() if k.startswith(("eval/", "charts/episodes"))}
    final["charts/train_seconds"] = metrics["charts/train_seconds"]
    print("final " + " ".join(f"{k}={v:.4g}" for k, v in final.items()) + f" run={out}")
    return metrics
