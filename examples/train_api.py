"""Train with tokengym's own REINFORCE from Python, then read the run's metrics.

    python examples/train_api.py                      # a few s on 2 cores: greedy success 0.99
    python examples/train_api.py --iterations 5       # a smoke run

The run stops early once the greedy success on the evaluation prompts reaches --target.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tokengym.agents import TrainConfig, read_metrics, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=200, help="REINFORCE updates at most")
    parser.add_argument("--target", type=float, default=0.9, help="stop at this greedy success")
    parser.add_argument("--out", default="runs/example-train-api", help="the run folder")
    args = parser.parse_args()

    config = TrainConfig(
        agent="reinforce",
        task="target",  # every prompt's answer is "ab": solved in about 10 updates
        iterations=args.iterations,
        target_success=args.target,
        out=args.out,
        progress=False,
    )
    result = train(config)  # the final metrics (a mapping), with run_dir and stopped
    print(f"greedy success {result['eval/greedy_success']:.2f}, stopped on {result.stopped}")
    rows = read_metrics(Path(result.run_dir) / "metrics.jsonl")
    returns = [row["charts/episodic_return"] for row in rows if "charts/episodic_return" in row]
    print(f"{len(rows)} metric rows; episodic return {returns[0]:.3f} -> {returns[-1]:.3f}")


if __name__ == "__main__":
    main()
