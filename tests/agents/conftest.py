"""Shared fixtures: tiny envs with enumerable completions, and small policies."""

from __future__ import annotations

import gymnasium as gym
import pytest
import torch
from tokengym.agents.policies import GRUConfig, GRUPolicy, TransformerConfig, TransformerPolicy

import tokengym  # noqa: F401  (registers TokenGen-v0)

# Tiny models: one thread is as fast and does not degrade when CI shares its cores.
torch.set_num_threads(1)

# Two prompts, alphabet {a, b}: with max_new_tokens=2 every prompt has 7 completions
# (EOS; x EOS; x y), so the exact objective is a sum over 14 trajectories.
TINY_DATA = {
    "train": [{"prompt": "a", "answer": "ab"}, {"prompt": "b", "answer": "b"}],
    "test": [{"prompt": "a", "answer": "ab"}, {"prompt": "b", "answer": "b"}],
}


def _tiny_kwargs(reward_mode: str = "dense", gamma: float = 1.0, reward: str = "edit") -> dict:
    """Env kwargs of the enumerable task (edit similarity gives graded rewards)."""
    return {
        "dataset": TINY_DATA,
        "reward": reward,
        "reward_mode": reward_mode,
        "gamma": gamma,
        "max_new_tokens": 2,
    }


def _make_policy(kind: str, vocab_size: int, max_len: int = 16, **kw: object) -> torch.nn.Module:
    """A small GRU or transformer policy (seeded init)."""
    torch.manual_seed(0)
    if kind == "gru":
        return GRUPolicy(GRUConfig(vocab_size, embed_size=8, hidden_size=16, **kw))
    return TransformerPolicy(
        TransformerConfig(vocab_size, max_len=max_len, d_model=16, n_layers=2, n_heads=2, **kw)
    )


@pytest.fixture(params=["gru", "transformer"])
def policy_kind(request: pytest.FixtureRequest) -> str:
    return request.param


def _vocab_size(**kwargs: object) -> int:
    return gym.make("TokenGen-v0", **kwargs).unwrapped.tokenizer.vocab_size


# Helpers are handed out as fixtures: tests/agents has no __init__.py (a package there would be
# named "agents" and shadow the real one), so test modules cannot import from conftest.
@pytest.fixture
def tiny_kwargs():
    return _tiny_kwargs


@pytest.fixture
def make_policy():
    return _make_policy


@pytest.fixture
def vocab_size():
    return _vocab_size
