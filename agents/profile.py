"""Measurements for the benchmark notes: training throughput, time shares, time to success.

``python -m agents.profile --agent reinforce --task copy [train options] [--threads 1]``
prints one JSON line with tokens/s, episodes/s and the share of each iteration spent in the
policy's rollout, in the env and in the update; ``--target-success 0.9`` also measures the
episodes and training seconds until greedy test success reaches it (evaluation time excluded).
"""

from __future__ import annotations

import json
import time

import gymnasium as gym
import torch

from .evaluate import evaluate
from .reinforce import ReinforceAgent
from .supervised import SupervisedAgent
from .train import build_parser, env_kwargs_from, make_agent

Agent = ReinforceAgent | SupervisedAgent


def throughput(agent: Agent, iterations: int = 20, warmup: int = 3) -> dict[str, float]:
    """Mean training speed over ``iterations`` updates after ``warmup`` ones.

    Returns:
        tokens_per_s and episodes_per_s (generated or teacher-forced tokens per second of
        training), and rollout_share, env_share, update_share (fractions of iteration time).
    """
    for _ in range(warmup):
        agent.train_iteration()
    tokens0, episodes0 = agent.tokens, agent.episodes
    seconds = rollout = env = update = 0.0
    for _ in range(iterations):
        m = agent.train_iteration()
        s = m["perf/seconds"]
        seconds += s
        rollout += m.get("perf/rollout_share", 0.0) * s
        env += m.get("perf/env_share", 0.0) * s
        update += m["perf/update_share"] * s
    return {
        "tokens_per_s": (agent.tokens - tokens0) / seconds,
        "episodes_per_s": (agent.episodes - episodes0) / seconds,
        "rollout_share": rollout / seconds,
        "env_share": env / seconds,
        "update_share": update / seconds,
        "seconds_per_iteration": seconds / iterations,
    }


def time_to_success(
    agent: Agent,
    env_kwargs: dict,
    target: float = 0.9,
    *,
    eval_every: int = 10,
    max_seconds: float = 600.0,
    num_prompts: int | None = None,
) -> dict[str, float]:
    """Train until greedy test success reaches ``target`` (checked every ``eval_every`` updates).

    Returns:
        reached (1.0 or 0.0), episodes, train_seconds (evaluation excluded), iterations and the
        last greedy success.
    """
    seconds, success = 0.0, 0.0
    while seconds < max_seconds:
        for _ in range(eval_every):
            seconds += agent.train_iteration()["perf/seconds"]
        success = evaluate(agent.policy, env_kwargs, num_prompts=num_prompts).success_rate
        if success >= target:
            break
    return {
        "reached": float(success >= target),
        "episodes": float(agent.episodes),
        "train_seconds": seconds,
        "iterations": float(agent.iteration),
        "greedy_success": success,
    }


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Parse the training options plus --threads/--iterations-measured and print JSON."""
    parser = build_parser()
    parser.prog = "python -m agents.profile"
    parser.add_argument("--measure", type=int, default=20, help="iterations to time")
    parser.add_argument("--max-seconds", type=float, default=600.0)
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    env_kwargs = env_kwargs_from(args)
    gym.make("TokenGen-v0", **env_kwargs)  # fail early on bad env arguments
    result: dict[str, float] = {"threads": float(torch.get_num_threads())}
    if args.target_success is not None:
        t0 = time.perf_counter()
        agent = make_agent(args, env_kwargs)
        result.update(
            time_to_success(
                agent,
                env_kwargs,
                args.target_success,
                eval_every=args.eval_every,
                max_seconds=args.max_seconds,
                num_prompts=args.eval_prompts,
            )
        )
        result["wall_seconds"] = time.perf_counter() - t0
    agent = make_agent(args, env_kwargs)
    result.update(throughput(agent, iterations=args.measure))
    print(json.dumps({"agent": args.agent, "task": args.task, **result}))
    return result


if __name__ == "__main__":
    main()
