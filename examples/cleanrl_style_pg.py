"""A CleanRL-style single file: policy gradient on the native vector env, with the action mask.

    python examples/cleanrl_style_pg.py                    # 300 updates, about 30 s: success ~1.0
    python examples/cleanrl_style_pg.py --updates 5        # a smoke run

It reads top to bottom: config, env, agent, loop. It logs what CleanRL's ppo.py means to log and,
on gymnasium 1.x, does not: each ended episode's return and success. The native vector env
autoresets on the next step (NEXT_STEP): an episode's result is in the infos of the step that
ended it, and the following step of that sub-env is a reset whose action is ignored.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
from torch import nn

import tokengym  # noqa: F401  (registers TokenGen-v0)


@dataclass(frozen=True)
class Args:
    task: str = "target"
    """the built-in task"""
    num_envs: int = 64
    """parallel sub-envs of the native vector env"""
    num_steps: int = 8
    """env steps per update (per sub-env)"""
    updates: int = 300
    """policy updates"""
    lr: float = 3e-3
    """Adam learning rate"""
    seed: int = 0
    """seeds the weights and the envs"""


class Agent(nn.Module):
    """Embeds the token ids and reads them with an MLP: logits over the vocabulary."""

    def __init__(self, vocab: int, length: int, width: int = 64) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, 16)
        self.mlp = nn.Sequential(nn.Flatten(), nn.Linear(16 * length, width), nn.Tanh())
        self.logits = nn.Linear(width, vocab)
        self.value = nn.Linear(width, 1)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.mlp(self.embed(obs))  # (N, width)
        return self.logits(hidden), self.value(hidden).squeeze(-1)  # (N, V), (N,)


def parse_args() -> Args:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, default in Args().__dict__.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(default), default=default)
    return Args(**vars(parser.parse_args()))


def main() -> None:
    args = parse_args()
    torch.manual_seed(args.seed)
    envs = gym.make_vec("TokenGen-v0", num_envs=args.num_envs, task=args.task)
    vocab, length = int(envs.single_action_space.n), envs.single_observation_space.shape[0]
    agent = Agent(vocab, length)
    optimizer = torch.optim.Adam(agent.parameters(), lr=args.lr)

    obs, infos = envs.reset(seed=args.seed)
    returns = np.zeros(args.num_envs)  # the running return of each sub-env's episode
    resetting = np.zeros(args.num_envs, dtype=bool)  # this step of the sub-env is its reset
    start, episodes, recent = time.time(), 0, []
    for update in range(1, args.updates + 1):
        logps, values, rewards, dones, alive = [], [], [], [], []
        for _ in range(args.num_steps):
            logits, value = agent(torch.as_tensor(obs))
            logits = logits.masked_fill(~torch.as_tensor(infos["action_mask_bool"]), -torch.inf)
            dist = torch.distributions.Categorical(logits=logits)
            action = dist.sample()
            obs, reward, terminated, truncated, infos = envs.step(action.numpy())
            logps.append(dist.log_prob(action))
            values.append(value)
            rewards.append(torch.as_tensor(reward, dtype=torch.float32))
            alive.append(torch.as_tensor(~resetting))  # a reset step's action counts for nothing
            dones.append(torch.as_tensor(terminated | truncated))
            returns += reward
            for i in np.flatnonzero(terminated | truncated):
                recent.append((returns[i], bool(infos["success"][i])))
                returns[i], episodes = 0.0, episodes + 1
            resetting = terminated | truncated

        # Returns within the window, cut where an episode ended, bootstrapped from the value of
        # the last observation (gamma 1: the task's reward is the answer's score).
        with torch.no_grad():
            ret = agent(torch.as_tensor(obs))[1]  # (N,)
        targets = []
        for t in reversed(range(args.num_steps)):
            ret = rewards[t] + ret * ~dones[t]
            targets.append(ret)
        targets = torch.stack(targets[::-1])  # (T, N)
        logp, value, mask = torch.stack(logps), torch.stack(values), torch.stack(alive).float()
        advantage = (targets - value).detach()
        loss = -(logp * advantage * mask).sum() / mask.sum()
        loss = loss + 0.5 * (((targets - value) ** 2) * mask).sum() / mask.sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

        if recent and (update % 20 == 0 or update == args.updates):
            mean_return = float(np.mean([r for r, _ in recent]))
            success = float(np.mean([s for _, s in recent]))
            sps = int(update * args.num_steps * args.num_envs / (time.time() - start))
            print(
                f"update={update} episodes={episodes} charts/episodic_return={mean_return:.3f} "
                f"charts/success={success:.3f} losses/loss={loss.item():.4f} charts/SPS={sps}"
            )
            recent = []
    envs.close()


if __name__ == "__main__":
    main()
