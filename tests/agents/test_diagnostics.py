"""Collapse diagnostics: each function on hand-built tensors, then in REINFORCE and DPO runs."""

from __future__ import annotations

import math

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tokengym.agents import read_metrics, train
from tokengym.agents.diagnostics import (
    collapse_diagnostics,
    distinct_per_prompt,
    group_centred,
    policy_entropy,
    token_entropy,
    zero_advantage_share,
    zero_group_share,
)
from tokengym.agents.dpo import DPOAgent
from tokengym.agents.reinforce import ReinforceAgent

from tests.helpers import train_config

KEYS = (
    "diagnostics/entropy",
    "diagnostics/zero_advantage_share",
    "diagnostics/zero_group_share",
    "diagnostics/distinct_per_prompt",
)
SMALL_COPY = {"task": "copy", "max_length": 3, "train_size": 50, "test_size": 10}


def test_policy_entropy_of_masked_logits() -> None:
    lowest = torch.finfo(torch.float32).min  # what masked_logits writes for illegal actions
    logits = torch.tensor([[[0.0, 0.0, lowest, lowest], [5.0, lowest, lowest, lowest]]])
    assert policy_entropy(logits).tolist() == [[pytest.approx(math.log(2)), 0.0]]


def test_token_entropy_averages_the_valid_tokens_only() -> None:
    entropy = torch.tensor([[1.0, 3.0, 100.0], [2.0, 100.0, 100.0]])
    valid = torch.tensor([[True, True, False], [True, False, False]])
    assert token_entropy(entropy, valid) == 2.0
    assert token_entropy(entropy, torch.zeros_like(valid)) == 0.0


def test_zero_advantage_share_counts_rows_zero_on_every_valid_token() -> None:
    advantages = torch.tensor([[0.0, 0.0], [0.0, 0.5], [1e-7, 9.0], [-2e-6, 0.0]])
    valid = torch.tensor([[True, True], [True, True], [True, False], [True, True]])
    # row 0 zero; row 1 not; row 2 zero (within 1e-6, the 9 is padding); row 3 beyond atol
    assert zero_advantage_share(advantages, valid) == 0.5
    assert zero_advantage_share(advantages, valid, atol=0.0) == 0.25


def test_zero_group_share_and_its_validation() -> None:
    rewards = torch.tensor([0.25, 0.25, 1.0, 0.0, 0.0, 0.0, 0.5, 0.25])
    assert zero_group_share(rewards, 2) == 0.5
    assert zero_group_share(rewards, 4) == 0.0
    assert zero_group_share(rewards[:4], 1) == 1.0
    with pytest.raises(ValueError, match="group_size=3 is invalid for a batch of 8 rows"):
        zero_group_share(rewards, 3)


def test_group_centred_is_the_reward_minus_its_group_mean() -> None:
    centred = group_centred(torch.tensor([1.0, 0.0, 0.5, 0.5, 0.0, 0.0, 0.0, 1.0]), 4)
    assert centred[:, 0].tolist() == [0.5, -0.5, 0.0, 0.0, -0.25, -0.25, -0.25, 0.75]


def test_distinct_per_prompt_ignores_padding_and_groups_by_prompt() -> None:
    actions = torch.tensor([[3, 1, 0], [3, 1, 7], [3, 2, 0], [5, 0, 0], [3, 1, 0], [3, 1, 0]])
    valid = torch.tensor([[1, 1, 0], [1, 1, 0], [1, 1, 0], [1, 0, 0], [1, 1, 0], [1, 1, 1]]).bool()
    prompts = torch.tensor([4, 4, 4, 9, 9, 4])  # prompt 4 not contiguous
    # prompt 4: "3 1" (twice, padding differs), "3 2", "3 1 0" -> 3; prompt 9: "5", "3 1" -> 2
    assert distinct_per_prompt(actions, valid, prompts) == 2.5
    assert distinct_per_prompt(actions[:2], valid[:2], prompts[:2]) == 1.0


def test_collapse_diagnostics_names_and_the_group_share_only_for_groups() -> None:
    kwargs = dict(
        entropy=torch.tensor([[0.5, 1.5], [1.0, 9.0]]),
        advantages=torch.tensor([[0.0], [1.0]]),  # (B, 1): broadcast over the tokens
        valid=torch.tensor([[True, True], [True, False]]),
        actions=torch.tensor([[1, 2], [1, 0]]),
        sequence_reward=torch.tensor([0.0, 1.0]),
        prompt_index=torch.tensor([0, 0]),
    )
    assert collapse_diagnostics(**kwargs, group_size=2) == {
        "diagnostics/entropy": 1.0,
        "diagnostics/zero_advantage_share": 0.5,
        "diagnostics/distinct_per_prompt": 2.0,
        "diagnostics/zero_group_share": 0.0,
    }
    assert "diagnostics/zero_group_share" not in collapse_diagnostics(**kwargs, group_size=1)


def _constant(prompt: str, completion: str, reference: str) -> float:
    return 0.5


@pytest.mark.parametrize("ppo_epochs", [1, 2])
@pytest.mark.parametrize(
    ("reward", "baseline", "zero_share"), [(0.0, "rloo", 1.0), (0.5, "none", 0.0)]
)
def test_reinforce_reports_the_zero_advantage_share_of_a_batch_of_ties(
    ppo_epochs, reward, baseline, zero_share, tiny_kwargs, make_policy, vocab_size
) -> None:
    # every completion scores `reward`: all groups tie; A = G - b is 0 everywhere when R = 0,
    # and never 0 with no baseline and R = 0.5
    env = {**tiny_kwargs("terminal"), "reward": lambda prompt, completion, ref: reward}
    config = train_config(
        "reinforce", env, batch_size=8, group_size=4, baseline=baseline, ppo_epochs=ppo_epochs
    )
    agent = ReinforceAgent(make_policy("gru", vocab_size(**env)), config)
    metrics = agent.train_iteration()
    assert metrics["diagnostics/zero_advantage_share"] == zero_share
    assert metrics["diagnostics/zero_group_share"] == 1.0
    assert 1.0 <= metrics["diagnostics/distinct_per_prompt"] <= 7.0  # 7 completions a prompt
    if ppo_epochs == 1:  # the same rollout and policy as the loss's entropy term
        assert metrics["diagnostics/entropy"] == pytest.approx(metrics["losses/entropy"], rel=1e-6)


def test_dpo_reports_ties_and_the_sampling_policy_entropy(
    tiny_kwargs, make_policy, vocab_size
) -> None:
    env = {**tiny_kwargs("terminal"), "reward": _constant}
    policy = make_policy("gru", vocab_size(**env))
    agent = DPOAgent(policy, train_config("dpo", env, batch_size=4, group_size=2))
    metrics = agent.train_iteration()
    assert metrics["diagnostics/zero_advantage_share"] == 1.0
    assert metrics["diagnostics/zero_group_share"] == 1.0 and metrics["charts/pairs"] == 0.0
    # the policy's first decision is the same for every row of one prompt: its entropy is
    # between 0 and log(legal actions), and positive for a fresh policy
    assert 0.0 < metrics["diagnostics/entropy"] < math.log(vocab_size(**env))


@pytest.mark.parametrize(("agent", "fields"), [("reinforce", {"group_size": 2}), ("dpo", {})])
def test_a_run_writes_the_diagnostics_into_metrics_jsonl(tmp_path, agent, fields) -> None:
    out = tmp_path / agent
    config = train_config(agent, SMALL_COPY, iterations=2, batch_size=8, out=str(out), **fields)
    train(config)
    lines = read_metrics(out / "metrics.jsonl")
    assert [line["step"] for line in lines] == [1, 2]
    for line in lines:
        assert all(isinstance(line[key], float) for key in KEYS)
        assert 0.0 <= line["diagnostics/zero_advantage_share"] <= 1.0
        assert 1.0 <= line["diagnostics/distinct_per_prompt"] <= 8.0
    events = EventAccumulator(str(out))  # tensorboard is in the "all" extra
    events.Reload()
    assert all(2 in [e.step for e in events.Scalars(key)] for key in KEYS)
