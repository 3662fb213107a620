"""Benchmark: SB3 PPO frames/s next to REINFORCE env steps/s, and episodes to 90% success.

Run ``python -m agents.sb3.profile`` (a few minutes on 2 CPU cores). "Episodes to 90%" counts
training episodes until the shared greedy evaluation first reaches 0.9 on the named split
(checked every ``eval_every`` env steps or iterations, so it is exact to within one check);
NaN: not reached within the budget. The short copy task has only 12 distinct prompts, so its
test split (4 prompts never trained on) measures generalisation from 8 examples, which no agent
here achieves in a short budget; its train split measures learning to copy the seen prompts.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Iterator
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import tokengym  # noqa: F401  (registers TokenGen-v0)

from ..evaluate import evaluate
from ..policies import GRUConfig, GRUPolicy
from ..reinforce import ReinforceAgent, ReinforceConfig
from .config import ALGOS, SB3Config
from .train import train_sb3

BENCH_TASKS: dict[str, dict[str, Any]] = {
    "target": {"task": "target", "train_size": 200, "test_size": 50},
    "copy": {  # all 12 prompts of length 1-2 over {a, b, c}
        "task": "copy",
        "min_length": 1,
        "max_length": 2,
        "alphabet_size": 3,
        "train_size": 8,
        "test_size": 4,
    },
}


def sb3_frames_per_second(
    env_kwargs: dict[str, Any],
    *,
    agent: str = "ppo",
    policy: str = "token",
    steps: int = 8_192,
    num_envs: int = 8,
    vec_env: str = "dummy",
    repeats: int = 3,
) -> float:
    """Env steps per second of SB3 training (rollouts and updates, no evaluation).

    The median over ``repeats`` runs (the machine may be shared; one run is noisy).
    """
    config = SB3Config(
        agent=agent,
        policy=policy,
        env_kwargs=env_kwargs,
        total_timesteps=steps,
        num_envs=num_envs,
        vec_env=vec_env,
        log_every=steps,
        device="cpu",
    )
    return float(np.median([train_sb3(config)[1]["time/fps"] for _ in range(repeats)]))


def reinforce_steps_per_second(
    env_kwargs: dict[str, Any], *, batch_size: int = 256, iterations: int = 30
) -> float:
    """Env steps (generated tokens) per second of the custom REINFORCE agent's updates.

    Same network size as the SB3 token extractor (GRU, embedding 32, hidden 64).
    """
    vocab = gym.make("TokenGen-v0", **env_kwargs).unwrapped.tokenizer.vocab_size
    torch.manual_seed(0)
    policy = GRUPolicy(GRUConfig(vocab, embed_size=32, hidden_size=64))
    agent = ReinforceAgent(policy, env_kwargs, ReinforceConfig(batch_size=batch_size, device="cpu"))
    agent.train_iteration()  # warm-up
    tokens, seconds = agent.tokens, 0.0
    for _ in range(iterations):
        seconds += agent.train_iteration()["perf/seconds"]
    return (agent.tokens - tokens) / seconds


def sb3_episodes_to_target(
    agent: str,
    env_kwargs: dict[str, Any],
    *,
    budget: int = 30_000,
    eval_every: int = 500,
    seed: int = 0,
    target: float = 0.9,
    split: str = "test",
    **config: Any,
) -> dict[str, float]:
    """Train until greedy success on ``split`` reaches ``target``; episodes, steps, seconds."""
    run = SB3Config(
        agent=agent,
        env_kwargs=env_kwargs,
        total_timesteps=budget,
        eval_every=eval_every,
        target_success=target,
        stop_at_target=True,
        eval_split=split,
        log_every=budget,
        seed=seed,
        device="cpu",
        **config,
    )
    _, metrics = train_sb3(run)
    return {
        "episodes": metrics["eval/episodes_to_target"],
        "steps": metrics["eval/steps_to_target"],
        "seconds": metrics["charts/train_seconds"],
        "final_success": metrics["eval/greedy_success"],
    }


def reinforce_episodes_to_target(
    env_kwargs: dict[str, Any],
    *,
    batch_size: int = 64,
    max_iterations: int = 500,
    eval_every: int = 5,
    seed: int = 0,
    target: float = 0.9,
    split: str = "test",
) -> dict[str, float]:
    """The same measure for the custom REINFORCE agent.

    GRU policy of the token extractor's size; the RLOO baseline with 8 samples per prompt and
    lr 1e-3 of ``python -m agents.train``, but batches of 64 episodes (not 512) so that the
    episode count has a resolution close to SB3's. Not tuned for these tasks.
    """
    vocab = gym.make("TokenGen-v0", **env_kwargs).unwrapped.tokenizer.vocab_size
    torch.manual_seed(seed)
    policy = GRUPolicy(GRUConfig(vocab, embed_size=32, hidden_size=64))
    config = ReinforceConfig(
        batch_size=batch_size, lr=1e-3, baseline="rloo", group_size=8, seed=seed, device="cpu"
    )
    agent = ReinforceAgent(policy, env_kwargs, config)
    seconds, success = 0.0, 0.0
    for it in range(1, max_iterations + 1):
        seconds += agent.train_iteration()["perf/seconds"]
        if it % eval_every == 0:
            policy.eval()
            success = evaluate(policy, env_kwargs, split=split).success_rate
            policy.train()
            if success >= target:
                return {
                    "episodes": float(agent.episodes),
                    "steps": float(agent.tokens),
                    "seconds": seconds,
                    "final_success": success,
                }
    return {"episodes": math.nan, "steps": math.nan, "seconds": seconds, "final_success": success}


BENCH_RUNS = (("target", "test"), ("copy", "test"), ("copy", "train"))


def benchmark(
    seeds: tuple[int, ...] = (0,),
    budget: int = 30_000,
    runs: tuple[tuple[str, str], ...] = BENCH_RUNS,
    agents: tuple[str, ...] = (*ALGOS, "reinforce"),
) -> Iterator[dict[str, Any]]:
    """One row per (task, split, agent), as each is done: episodes to 90% for every seed.

    The median counts a seed that never reached 90% as infinitely many episodes (printed
    "not reached" when it is the median), so failures are not dropped.
    """
    for task, split in runs:
        kwargs = BENCH_TASKS[task]
        for algo in agents:
            t0 = time.perf_counter()
            results = [
                reinforce_episodes_to_target(kwargs, seed=s, split=split)
                if algo == "reinforce"
                else sb3_episodes_to_target(algo, kwargs, budget=budget, seed=s, split=split)
                for s in seeds
            ]
            episodes = [r["episodes"] for r in results]
            yield (
                {
                    "task": task,
                    "split": split,
                    "agent": algo,
                    "episodes_to_90": float(np.median(np.nan_to_num(episodes, nan=np.inf))),
                    "per_seed": episodes,
                    "reached": f"{sum(not math.isnan(e) for e in episodes)}/{len(seeds)}",
                    "final_success": float(np.mean([r["final_success"] for r in results])),
                    "wall_s": time.perf_counter() - t0,
                }
            )


def main(argv: list[str] | None = None) -> None:
    """Print the throughput comparison and the episodes-to-90% table (markdown)."""
    p = argparse.ArgumentParser(prog="python -m agents.sb3.profile", description=__doc__)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--budget", type=int, default=30_000, help="SB3 env steps per run")
    p.add_argument("--fps-steps", type=int, default=8_192)
    p.add_argument(
        "--runs",
        nargs="+",
        default=[f"{task}:{split}" for task, split in BENCH_RUNS],
        help="task:split pairs, e.g. target:test copy:train",
    )
    p.add_argument("--agents", nargs="+", default=[*ALGOS, "reinforce"])
    p.add_argument("--skip-fps", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    if not args.skip_fps:
        kwargs = BENCH_TASKS["target"]
        print("| measure (target task, 1 torch thread) | steps/s |\n|---|---|", flush=True)
        for policy in ("token", "mlp"):
            fps = sb3_frames_per_second(kwargs, policy=policy, steps=args.fps_steps)
            print(f"| SB3 PPO {policy}, DummyVecEnv x8 | {fps:.0f} |", flush=True)
        fps = sb3_frames_per_second(kwargs, steps=args.fps_steps, vec_env="subproc")
        print(f"| SB3 PPO token, SubprocVecEnv x8 | {fps:.0f} |", flush=True)
        fps = sb3_frames_per_second(kwargs, steps=4 * args.fps_steps, num_envs=64)
        print(f"| SB3 PPO token, DummyVecEnv x64 | {fps:.0f} |", flush=True)
        for batch in (64, 256):
            fps = reinforce_steps_per_second(kwargs, batch_size=batch)
            print(f"| REINFORCE GRU, batch {batch} | {fps:.0f} |", flush=True)
    runs = tuple(tuple(run.split(":")) for run in args.runs)
    rows = benchmark(tuple(args.seeds), args.budget, runs, tuple(args.agents))  # type: ignore[arg-type]
    print(
        "\n| task | split | agent | episodes to 90%: median | per seed | reached | "
        "mean final success | wall s |\n|---|---|---|---|---|---|---|---|"
    )
    for r in rows:
        median = r["episodes_to_90"]
        median_text = "not reached" if math.isinf(median) else f"{median:.0f}"
        seeds = ", ".join("-" if math.isnan(e) else f"{e:.0f}" for e in r["per_seed"])
        print(
            f"| {r['task']} | {r['split']} | {r['agent']} | {median_text} | {seeds} | "
            f"{r['reached']} | {r['final_success']:.2f} | {r['wall_s']:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
