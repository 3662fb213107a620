"""Load a trained policy from its run folder and use it: completions of new prompts, its score.

    tokengym-train --agent reinforce --task target --out runs/target   # about 10 s
    python examples/load_policy.py runs/target                           # prints completions

Without a run folder it trains one first (``--train-iterations``, default 200, stops at 0.9).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tokengym.agents import TrainConfig, load_policy, train

PROMPTS = ["abc", "cab", "eeda"]  # strings over the task's alphabet, seen in training or not


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", help="a run folder of tokengym-train (or train())")
    parser.add_argument("--train-iterations", type=int, default=200, help="when no run is given")
    args = parser.parse_args()

    if args.run:
        run = Path(args.run)
    else:
        budget = {"iterations": args.train_iterations, "target_success": 0.9}
        result = train(TrainConfig(task="target", **budget, progress=False, device="cpu"))
        print(f"trained: stopped on {result.stopped}, run folder {result.run_dir}")
        run = Path(result.run_dir)
    policy = load_policy(run, device="cpu")
    for prompt, completion in zip(PROMPTS, policy.generate(PROMPTS)):
        print(f"{prompt!r} -> {completion!r}")
    score = policy.evaluate("test", num_prompts=50)
    print(f"greedy success on 50 test prompts: {score.success_rate:.2f}")


if __name__ == "__main__":
    main()
