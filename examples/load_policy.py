"""Load a trained policy from its run folder and use it: greedy completions and its score.

    tokengym-train --agent reinforce --task target --out runs/target   # about 10 s
    python examples/load_policy.py runs/target                           # prints completions

Without a run folder it trains one first (``--train-iterations``, default 200, stops at 0.9).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import gymnasium as gym
from tokengym.agents import TrainConfig, evaluate, load_checkpoint, policy_act, train

import tokengym  # noqa: F401  (registers TokenGen-v0)


def generate(run: Path, prompts: int) -> list[tuple[str, str, bool]]:
    """(prompt, completion, success) of the first ``prompts`` test prompts, greedy."""
    checkpoint = load_checkpoint(run / "checkpoint.pt")
    env = gym.make("TokenGen-v0", **checkpoint.env_kwargs, split="test")
    tokenizer = env.unwrapped.tokenizer
    act = policy_act(checkpoint.policy.eval(), tokenizer.pad_id, greedy=True)
    out = []
    for index in range(prompts):
        obs, info = env.reset(seed=0, options={"prompt_index": index})
        done = False
        while not done:
            action = act(obs[None], info["action_mask"][None])[0]
            obs, _, terminated, truncated, info = env.step(int(action))
            done = terminated or truncated
        out.append((info["prompt"], info["completion"], bool(info["success"])))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "run", nargs="?", help="a run folder of tokengym-train (with checkpoint.pt)"
    )
    parser.add_argument("--prompts", type=int, default=5, help="test prompts to complete")
    parser.add_argument("--train-iterations", type=int, default=200, help="when no run is given")
    args = parser.parse_args()

    run = Path(args.run) if args.run else None
    if run is None:
        run = Path("runs/example-load-policy")
        budget = {"iterations": args.train_iterations, "target_success": 0.9}
        train(TrainConfig(task="target", **budget, out=str(run), progress=False))
    for prompt, completion, success in generate(run, args.prompts):
        print(f"{prompt!r} -> {completion!r} {'ok' if success else 'wrong'}")
    checkpoint = load_checkpoint(run / "checkpoint.pt")
    score = evaluate(checkpoint.policy, dict(checkpoint.env_kwargs), split="test", num_prompts=50)
    print(f"greedy success on 50 test prompts: {score.success_rate:.2f}")


if __name__ == "__main__":
    main()
