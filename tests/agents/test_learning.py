"""Learning on tiny tasks with a known optimum (greedy test success, fixed seeds)."""

from __future__ import annotations

import pytest
import torch

from agents import (
    GRUConfig,
    GRUPolicy,
    ReinforceAgent,
    ReinforceConfig,
    SupervisedAgent,
    SupervisedConfig,
    evaluate,
)


def train_until(
    agent, env_kwargs: dict, target: float, max_iterations: int, every: int, split: str = "test"
) -> float:
    success = 0.0
    for it in range(1, max_iterations + 1):
        agent.train_iteration()
        if it % every == 0:
            success = evaluate(agent.policy, env_kwargs, split=split).success_rate
            if success >= target:
                break
    return success


def gru(env_kwargs: dict, vocab_size, **kw) -> GRUPolicy:
    torch.manual_seed(0)
    return GRUPolicy(GRUConfig(vocab_size(**env_kwargs), hidden_size=64, embed_size=32, **kw))


@pytest.mark.slow
def test_supervised_learns_copy_of_4_to_6_symbols(vocab_size) -> None:
    # 5000 training prompts (of 19,500): with the default 1000 a GRU memorises them and
    # plateaus near 90% on unseen test prompts.
    kwargs = {"task": "copy", "min_length": 4, "max_length": 6, "train_size": 5000}
    torch.manual_seed(0)
    policy = GRUPolicy(GRUConfig(vocab_size(**kwargs), hidden_size=128))
    config = SupervisedConfig(batch_size=128, lr=3e-3, device="cpu")
    agent = SupervisedAgent(policy, kwargs, config)
    assert train_until(agent, kwargs, 0.95, 1500, 50) >= 0.95


@pytest.mark.slow
def test_reinforce_learns_the_fixed_target(vocab_size) -> None:
    kwargs = {"task": "target", "target": "abc", "reward_mode": "terminal"}
    config = ReinforceConfig(batch_size=64, lr=3e-3, baseline="rloo", group_size=8, device="cpu")
    agent = ReinforceAgent(gru(kwargs, vocab_size), kwargs, config)
    assert train_until(agent, kwargs, 0.9, 300, 20) >= 0.9


@pytest.mark.slow
def test_reinforce_learns_short_copy_with_dense_reward_on_unseen_prompts(tmp_path) -> None:
    """The training command's defaults (dense reward) on copy of 1-3 symbols over 5 letters:
    120 training prompts of 155, scored on the 35 others."""
    from agents.train import main

    argv = ["--agent", "reinforce", "--task", "copy", "--reward-mode", "dense"]
    for knob in ("min_length=1", "max_length=3", "train_size=120", "test_size=35"):
        argv += ["--env-kwarg", knob]
    argv += ["--iterations", "400", "--eval-every", "20", "--target-success", "0.9"]
    final = main([*argv, "--no-progress", "--out", str(tmp_path)])
    assert final["eval/greedy_success"] >= 0.9
