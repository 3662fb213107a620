"""Stable-Baselines3: MaskablePPO on TokenGen-v0 in subprocess envs, then its greedy success.

    python examples/sb3_maskable_ppo.py                       # 30,000 steps, about 1 min
    python examples/sb3_maskable_ppo.py --timesteps 2048      # a smoke run

The workers are started with "spawn" (as on macOS and Windows): a fresh interpreter that never
imported tokengym, so the id names its module, "tokengym:TokenGen-v0".
"""

from __future__ import annotations

import argparse

import numpy as np
from sb3_contrib import MaskablePPO
from sb3_contrib.common.maskable.utils import get_action_masks
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

ENV_ID = "tokengym:TokenGen-v0"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timesteps", type=int, default=30_000, help="env steps of training")
    parser.add_argument("--n-envs", type=int, default=2, help="parallel envs")
    parser.add_argument("--vec-env", choices=["subproc", "dummy"], default="subproc")
    args = parser.parse_args()

    env_kwargs = {"task": "target"}
    vec_env = make_vec_env(
        ENV_ID,
        n_envs=args.n_envs,
        seed=0,
        env_kwargs=env_kwargs,
        vec_env_cls=SubprocVecEnv if args.vec_env == "subproc" else DummyVecEnv,
        vec_env_kwargs={"start_method": "spawn"} if args.vec_env == "subproc" else None,
    )
    model = MaskablePPO("MlpPolicy", vec_env, n_steps=256, batch_size=128, seed=0, device="cpu")
    model.learn(total_timesteps=args.timesteps)
    vec_env.close()

    # Greedy episodes on fresh envs; an episode's result is in the info of its last step.
    eval_env = make_vec_env(ENV_ID, n_envs=8, seed=1, env_kwargs=env_kwargs)
    obs, successes = eval_env.reset(), []
    while len(successes) < 64:
        action, _ = model.predict(obs, action_masks=get_action_masks(eval_env), deterministic=True)
        obs, _, dones, infos = eval_env.step(action)
        successes += [info["success"] for info, done in zip(infos, dones) if done]
    print(f"steps {model.num_timesteps}; greedy success {np.mean(successes):.2f} on 64 episodes")


if __name__ == "__main__":
    main()
