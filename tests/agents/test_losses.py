"""Losses: padding is invisible, EOS is a target, rollouts exclude the autoreset step."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch
from tokengym.agents.losses import reinforce_loss, supervised_loss
from tokengym.agents.reinforce import rollout_decisions
from tokengym.agents.rollout import collect_rollout
from tokengym.agents.supervised import minibatch, reference_decisions

COPY = {"task": "copy", "min_length": 1, "max_length": 4, "train_size": 30, "reward_mode": "dense"}


def loss_and_grad(policy, fn):
    policy.zero_grad()
    loss = fn()
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in policy.parameters()]


def scramble_padding(d, vocab: int):
    """Random ids at every position after each sequence's last real token."""
    last = d.start + d.valid.sum(1)  # (B,) last real position
    cols = torch.arange(d.tokens.shape[1])
    pad = cols[None, :] > last[:, None]
    noise = torch.randint(0, vocab, d.tokens.shape, generator=torch.Generator().manual_seed(3))
    assert pad.any()
    return dataclasses.replace(d, tokens=torch.where(pad, noise, d.tokens))


def test_supervised_padding_changes_neither_loss_nor_gradient(policy_kind, make_policy) -> None:
    env = gym.make("TokenGen-v0", **COPY)
    vocab = env.unwrapped.tokenizer.vocab_size
    policy = make_policy(policy_kind, vocab).double()
    d = reference_decisions(env)
    a = loss_and_grad(policy, lambda: supervised_loss(policy, d))
    b = loss_and_grad(policy, lambda: supervised_loss(policy, scramble_padding(d, vocab)))
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


def test_reinforce_padding_changes_neither_loss_nor_gradient(policy_kind, make_policy) -> None:
    vec = gym.make_vec("TokenGen-v0", num_envs=64, **COPY)
    vocab = vec.unwrapped.tokenizer.vocab_size
    policy = make_policy(policy_kind, vocab).double()
    batch = collect_rollout(vec, policy, np.arange(64) % 30, torch.Generator().manual_seed(0))
    d = rollout_decisions(batch)
    rewards = batch.rewards[:, : d.actions.shape[1]]

    def loss(dd):
        return reinforce_loss(policy, dd, rewards, baseline="mean", entropy_coef=0.1)[0]

    a = loss_and_grad(policy, lambda: loss(d))
    b = loss_and_grad(policy, lambda: loss(scramble_padding(d, vocab)))
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


def test_eos_is_always_a_target() -> None:
    env = gym.make("TokenGen-v0", **COPY)
    base = env.unwrapped
    d = reference_decisions(env)
    lengths = d.valid.sum(1)
    for i, ref in enumerate(base.reference_ids):
        assert lengths[i] == len(ref) + 1
        assert d.actions[i, len(ref)] == base.tokenizer.eos_id
        assert d.actions[i, : len(ref)].tolist() == list(ref)
        assert d.tokens[i, d.start[i]] == base.tokenizer.sep_id


def test_minibatch_trims_to_longest_target() -> None:
    d = reference_decisions(gym.make("TokenGen-v0", **COPY))
    short = torch.nonzero(d.valid.sum(1) == 2)[:3, 0]
    mb = minibatch(d, short)
    assert mb.actions.shape == (len(short), 2)


def test_rollout_excludes_the_autoreset_step(make_policy) -> None:
    vec = gym.make_vec("TokenGen-v0", num_envs=32, **COPY)
    policy = make_policy("gru", vec.unwrapped.tokenizer.vocab_size)
    batch = collect_rollout(vec, policy, np.arange(32) % 30, torch.Generator().manual_seed(0))
    lengths = batch.valid.sum(1)
    assert (lengths >= 1).all() and lengths.min() < lengths.max()
    # valid is a prefix of each row; the step that ends an episode is EOS or max length.
    for row, n in zip(batch.valid, lengths):
        assert row[:n].all() and not row[n:].any()
    eos = vec.unwrapped.tokenizer.eos_id
    ended_on_eos = batch.actions[torch.arange(32), lengths - 1] == eos
    assert (ended_on_eos | (lengths == vec.unwrapped.max_new_tokens)).all()
    assert (batch.rewards[~batch.valid] == 0).all()
    # with dense rewards and gamma = 1 the per-step rewards sum to the sequence reward
    torch.testing.assert_close(batch.rewards.sum(1), batch.sequence_reward)


def test_kl_needs_reference_policy(make_policy) -> None:
    vec = gym.make_vec("TokenGen-v0", num_envs=4, **COPY)
    policy = make_policy("gru", vec.unwrapped.tokenizer.vocab_size)
    batch = collect_rollout(vec, policy, np.arange(4), torch.Generator().manual_seed(0))
    d = rollout_decisions(batch)
    with pytest.raises(ValueError, match="kl_coef > 0 needs a ref_policy"):
        reinforce_loss(policy, d, batch.rewards[:, : d.actions.shape[1]], kl_coef=0.1)
    _, stats = reinforce_loss(
        policy, d, batch.rewards[:, : d.actions.shape[1]], kl_coef=0.1, ref_policy=policy
    )
    assert stats["losses/kl"].abs() < 1e-6  # KL to itself
