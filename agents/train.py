"""Training command: ``python -m agents.train --agent reinforce --task copy``.

Writes ``<out>/metrics.jsonl`` (namespaced metrics, one line per logged iteration) and
``<out>/checkpoint.pt``, shows a progress bar, and prints a final evaluation line.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch
from tqdm import tqdm

import tokengym  # noqa: F401  (registers TokenGen-v0)

from .checkpoint import load_checkpoint, save_checkpoint
from .evaluate import evaluate_policy
from .metrics import MetricsWriter
from .policies import GRUConfig, Policy, TransformerConfig, build_policy
from .reinforce import ReinforceAgent, ReinforceConfig
from .sb3.cli import SB3_AGENTS, add_sb3_arguments, run_sb3
from .supervised import SupervisedAgent, SupervisedConfig


def _value(text: str) -> Any:
    """Parse ``--env-kwarg`` values: JSON when it parses (ints, floats, bools), else a string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def build_parser() -> argparse.ArgumentParser:
    """The command's arguments (defaults learn copy without tuning)."""
    p = argparse.ArgumentParser(prog="python -m agents.train", description=__doc__)
    p.add_argument("--agent", choices=("reinforce", "supervised", *SB3_AGENTS), default="reinforce")
    p.add_argument("--task", default="copy", help="a TokenGen task name")
    p.add_argument("--reward-mode", choices=("terminal", "dense"), default="dense")
    p.add_argument(
        "--env-kwarg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra env kwarg (task knob), repeatable: --env-kwarg max_length=4",
    )
    p.add_argument("--policy", choices=("gru", "transformer"), default="gru")
    p.add_argument("--width", type=int, default=128, help="GRU hidden size / transformer d_model")
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--heads", type=int, default=4, help="transformer attention heads")
    p.add_argument("--iterations", type=int, default=2000, help="updates (upper bound)")
    p.add_argument("--batch-size", type=int, default=None, help="episodes/examples per update")
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--gamma", type=float, default=1.0, help="env gamma and REINFORCE gamma")
    # Defaults measured to learn copy (see the report): with the env's potential-based dense
    # reward, broadcast credit equals the sequence reward R and carries no -Phi(s_t) noise.
    p.add_argument("--credit", choices=("env", "broadcast"), default="broadcast")
    p.add_argument("--baseline", choices=("none", "mean", "rloo", "value"), default="mean")
    p.add_argument("--group-size", type=int, default=8, help="samples per prompt (rloo)")
    p.add_argument("--normalize-advantages", action="store_true")
    p.add_argument("--entropy-coef", type=float, default=0.0)
    p.add_argument("--kl-coef", type=float, default=0.0)
    p.add_argument("--max-grad-norm", type=float, default=1.0)
    p.add_argument("--init", type=Path, default=None, help="start from this checkpoint's weights")
    p.add_argument("--eval-every", type=int, default=50, help="iterations between evaluations")
    p.add_argument("--eval-prompts", type=int, default=None, help="test prompts (default: all)")
    p.add_argument(
        "--target-success",
        type=float,
        default=None,
        help="stop once greedy test success reaches this",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--out", type=Path, default=None, help="run folder (default runs/<agent>-<task>-<time>)"
    )
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    add_sb3_arguments(p)
    return p


def env_kwargs_from(args: argparse.Namespace) -> dict[str, Any]:
    """The env keyword arguments: task, reward mode, gamma and every ``--env-kwarg``."""
    env_kwargs: dict[str, Any] = {
        "task": args.task,
        "reward_mode": args.reward_mode,
        "gamma": args.gamma,
    }
    for item in args.env_kwarg:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--env-kwarg {item!r} is not KEY=VALUE")
        env_kwargs[key] = _value(value)
    return env_kwargs


def make_policy(args: argparse.Namespace, vocab_size: int, max_len: int) -> Policy:
    """Build the policy the arguments describe, or load ``--init``'s weights."""
    if args.init is not None:
        return load_checkpoint(args.init).policy
    value_head = args.agent == "reinforce" and args.baseline == "value"
    if args.policy == "gru":
        config = GRUConfig(
            vocab_size, hidden_size=args.width, num_layers=args.layers, value_head=value_head
        )
    else:
        config = TransformerConfig(
            vocab_size,
            max_len=max_len,
            d_model=args.width,
            n_layers=args.layers,
            n_heads=args.heads,
            value_head=value_head,
        )
    return build_policy(config)


def make_agent(args: argparse.Namespace, env_kwargs: dict) -> ReinforceAgent | SupervisedAgent:
    """Build the agent and its policy."""
    probe = gym.make("TokenGen-v0", **env_kwargs).unwrapped
    torch.manual_seed(args.seed)  # weight init
    policy = make_policy(args, probe.tokenizer.vocab_size, probe.observation_length)
    if args.init is not None:
        load_checkpoint(args.init, probe)  # vocabulary check
    if args.agent == "supervised":
        config = SupervisedConfig(
            batch_size=args.batch_size or 128,
            lr=args.lr or 3e-3,
            max_grad_norm=args.max_grad_norm,
            seed=args.seed,
            device=args.device,
        )
        return SupervisedAgent(policy, env_kwargs, config)
    rconfig = ReinforceConfig(
        batch_size=args.batch_size or 512,
        lr=args.lr or 1e-3,
        gamma=args.gamma,
        credit=args.credit,
        baseline=args.baseline,
        group_size=args.group_size if args.baseline == "rloo" else 1,
        normalize_advantages=args.normalize_advantages,
        entropy_coef=args.entropy_coef,
        kl_coef=args.kl_coef,
        max_grad_norm=args.max_grad_norm,
        seed=args.seed,
        device=args.device,
    )
    return ReinforceAgent(policy, env_kwargs, rconfig)


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Run the command; returns the final evaluation metrics."""
    args = build_parser().parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    env_kwargs = env_kwargs_from(args)
    out = args.out or Path("runs") / f"{args.agent}-{args.task}-{time.strftime('%Y%m%d-%H%M%S')}"
    if args.agent in SB3_AGENTS:
        return run_sb3(args, env_kwargs, out)
    agent = make_agent(args, env_kwargs)
    policy = agent.policy
    train_seconds = 0.0
    evaluation: dict[str, float] = {}
    with MetricsWriter(out / "metrics.jsonl") as writer:
        bar = tqdm(range(1, args.iterations + 1), disable=args.no_progress, desc=args.agent)
        for it in bar:
            metrics = agent.train_iteration()
            train_seconds += metrics["perf/seconds"]
            metrics["charts/train_seconds"] = train_seconds
            if it % args.eval_every == 0 or it == args.iterations:
                policy.eval()
                evaluation = evaluate_policy(policy, env_kwargs, num_prompts=args.eval_prompts)
                policy.train()
                metrics.update(evaluation)
                bar.set_postfix(success=f"{evaluation['eval/greedy_success']:.3f}")
            writer.write(it, metrics)
            if (
                evaluation
                and args.target_success is not None
                and (evaluation["eval/greedy_success"] >= args.target_success)
            ):
                break
    save_checkpoint(
        out / "checkpoint.pt",
        policy=policy,
        vocab=agent.base.tokenizer.vocab,
        agent=agent.name,
        agent_config=agent.config,
        optimizer=agent.optimizer,
        env_kwargs=env_kwargs,
        iteration=agent.iteration,
    )
    final = {
        **evaluation,
        "charts/episodes": float(agent.episodes),
        "charts/train_seconds": train_seconds,
        "iterations": float(agent.iteration),
    }
    print("final " + " ".join(f"{k}={v:.4g}" for k, v in final.items()) + f" run={out}")
    return final


if __name__ == "__main__":
    main()
