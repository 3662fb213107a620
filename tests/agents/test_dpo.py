"""DPO: the loss by hand, preference pairs, the agent (config, determinism, surface), learning.

Its gradient against enumeration, padding and EOS are in ``test_dpo_gradients.py``.
"""

from __future__ import annotations

import math
import re

import gymnasium as gym
import numpy as np
import pytest
import torch
from tokengym.agents import train
from tokengym.agents.dpo import DPOAgent, offline_pairs, preference_pairs
from tokengym.agents.losses import dpo_loss
from tokengym.agents.policies import GRUConfig, GRUPolicy
from tokengym.agents.reinforce import rollout_decisions
from tokengym.agents.rollout import collect_rollout

from tests.helpers import train_config
from tokengym.errors import ConfigError

COPY = {"task": "copy", "min_length": 1, "max_length": 3, "train_size": 40, "test_size": 20}


# ---------------------------------------------------------------------------------------------
# The loss on numbers worked out by hand
# ---------------------------------------------------------------------------------------------

# Two pairs, beta = 0.5. Log-ratios h_c = logp_c - ref_c = (0.5, 0.0), h_r = (-1.0, 0.5),
# h = h_c - h_r = (1.5, -0.5), beta * h = (0.75, -0.25).
PAIRS = {
    "policy_chosen": torch.tensor([-1.0, -2.0], dtype=torch.float64),
    "policy_rejected": torch.tensor([-3.0, -1.5], dtype=torch.float64),
    "ref_chosen": torch.tensor([-1.5, -2.0], dtype=torch.float64),
    "ref_rejected": torch.tensor([-2.0, -2.0], dtype=torch.float64),
}


@pytest.mark.parametrize(
    ("loss", "expected"),
    [
        # (-log sigmoid(0.75) - log sigmoid(-0.25)) / 2 = (0.386871006 + 0.825939420) / 2
        ("sigmoid", 0.6064052129968718),
        # ((1.5 - 1/(2*0.5))^2 + (-0.5 - 1)^2) / 2 = (0.25 + 2.25) / 2
        ("ipo", 1.25),
    ],
)
def test_dpo_loss_equals_the_hand_computed_value(loss, expected) -> None:
    value, stats = dpo_loss(**PAIRS, beta=0.5, loss=loss)
    assert value.item() == pytest.approx(expected, rel=1e-15)
    assert stats["losses/dpo"].item() == pytest.approx(expected, rel=1e-15)
    assert stats["rewards/chosen"].item() == 0.125  # mean(0.5 * (0.5, 0.0))
    assert stats["rewards/rejected"].item() == -0.125  # mean(0.5 * (-1.0, 0.5))
    assert stats["rewards/margins"].item() == 0.25  # mean(0.75, -0.25)
    assert stats["rewards/accuracies"].item() == 0.5  # first pair ranked right, second wrong
    assert stats["logps/chosen"].item() == -1.5
    assert stats["logps/rejected"].item() == -2.25


def test_dpo_loss_gradient_wrt_log_probs_is_minus_beta_sigmoid() -> None:
    """d/d logp_c of -log sigmoid(beta h) is -beta sigmoid(-beta h) / P, and minus that for r."""
    leaves = {k: v.clone().requires_grad_(True) for k, v in PAIRS.items()}
    dpo_loss(**leaves, beta=0.5)[0].backward()
    weight = [-0.5 * (1 / (1 + math.exp(0.75))) / 2, -0.5 * (1 / (1 + math.exp(-0.25))) / 2]
    torch.testing.assert_close(leaves["policy_chosen"].grad.tolist(), weight)
    torch.testing.assert_close(leaves["policy_rejected"].grad.tolist(), [-w for w in weight])
    torch.testing.assert_close(leaves["ref_chosen"].grad.tolist(), [-w for w in weight])


def test_dpo_loss_rejects_an_unknown_variant() -> None:
    with pytest.raises(ValueError, match=r"loss='hinge' is invalid; expected one of \('sigmoid'"):
        dpo_loss(**PAIRS, loss="hinge")


# ---------------------------------------------------------------------------------------------
# Pairs
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rewards", "group_size", "chosen", "rejected"),
    [
        ([0.0, 1.0, 0.5, 0.5], 2, [1], [0]),  # the second group is a tie: skipped
        ([1.0, 1.0, 1.0, 0.0, 0.0, 0.0], 3, [], []),  # both groups ties
        ([0.2, 0.9, 0.1, 0.9, 0.3, 0.0, 0.4, 0.0], 4, [1, 6], [2, 5]),  # first best, first worst
        ([0.0, 0.5, 1.0], 3, [2], [0]),
    ],
)
def test_preference_pairs_take_best_and_worst_and_skip_ties(
    rewards, group_size, chosen, rejected
) -> None:
    c, r = preference_pairs(torch.tensor(rewards), group_size)
    assert c.tolist() == chosen
    assert r.tolist() == rejected


def test_offline_pairs_are_the_reference_answer_against_a_sampled_completion(make_policy) -> None:
    # One-letter answers over {a, b}: a uniform-ish policy often samples the answer itself.
    kwargs = {"task": "target", "target": "a", "alphabet_size": 2, "max_length": 7}
    kwargs.update(train_size=60, test_size=4)
    env = gym.make("TokenGen-v0", **kwargs)
    base = env.unwrapped
    policy = make_policy("gru", base.tokenizer.vocab_size)
    chosen, rejected = offline_pairs(kwargs, policy, torch.Generator().manual_seed(5), seed=5)

    # The same draw, made independently: the rejected rows are exactly these samples.
    vec = gym.make_vec("TokenGen-v0", num_envs=60, **kwargs)
    sampled = collect_rollout(vec, policy, np.arange(60), torch.Generator().manual_seed(5), seed=5)
    eos, a = base.tokenizer.eos_id, base.reference_ids[0][0]
    is_answer = (sampled.valid.sum(1) == 2) & (sampled.actions[:, 0] == a)
    is_answer &= sampled.actions[:, 1] == eos
    keep = torch.nonzero(~is_answer)[:, 0]
    assert 0 < int(is_answer.sum()) < 60  # some identical pairs were dropped, not all
    assert chosen.tokens.shape[0] == rejected.tokens.shape[0] == len(keep)
    assert (chosen.valid.sum(1) == 2).all()
    assert (chosen.actions[:, 0] == a).all() and (chosen.actions[:, 1] == eos).all()
    full = rollout_decisions(sampled)
    assert torch.equal(rejected.tokens, full.tokens[keep])
    assert torch.equal(rejected.actions, full.actions[keep, : rejected.actions.shape[1]])
    assert torch.equal(rejected.valid, full.valid[keep, : rejected.valid.shape[1]])
    assert torch.equal(chosen.start, rejected.start)
    prompt_part = torch.arange(base.observation_length)[None, :] <= chosen.start[:, None]
    assert torch.equal(chosen.tokens[prompt_part], rejected.tokens[prompt_part])


# ---------------------------------------------------------------------------------------------
# The agent
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"group_size": 1}, "group_size=1 is invalid; expected an int >= 2"),
        ({"group_size": 2.0}, "group_size=2.0 is invalid; expected an int >= 1"),
        ({"beta": 0.0}, "beta=0.0 is invalid; expected a finite number > 0.0"),
        ({"beta": True}, "beta=True is invalid; expected a finite number > 0.0"),
        ({"dpo_loss": "hinge"}, "dpo_loss='hinge' is invalid; expected one of ('sigmoid', 'ipo')"),
        (
            {"dpo_mode": "mixed"},
            "dpo_mode='mixed' is invalid; expected one of ('online', 'offline')",
        ),
        ({"baseline": "rloo"}, "baseline='rloo' does not apply to agent 'dpo'"),
    ],
)
def test_dpo_config_validation(kwargs, message) -> None:
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}"):
        train_config("dpo", COPY, **kwargs)


def test_dpo_defaults() -> None:
    config = train_config("dpo", COPY)
    assert (config.batch_size, config.group_size, config.lr, config.beta) == (64, 4, 2e-3, 0.2)
    assert (config.dpo_loss, config.dpo_mode) == ("sigmoid", "online")


def _agent(make_policy, vocab: int, mode: str) -> DPOAgent:
    env = {**COPY, "reward": "edit"}
    config = train_config("dpo", env, batch_size=16, group_size=4, dpo_mode=mode, seed=3)
    return DPOAgent(make_policy("gru", vocab), config)


@pytest.mark.parametrize("mode", ["online", "offline"])
def test_same_seed_gives_bit_identical_parameters(mode, make_policy, vocab_size) -> None:
    vocab = vocab_size(**COPY)

    def run() -> list[torch.Tensor]:
        agent = _agent(make_policy, vocab, mode)
        for _ in range(3):
            agent.train_iteration()
        return [p.detach().clone() for p in agent.policy.parameters()]

    first, second = run(), run()
    assert all(torch.equal(x, y) for x, y in zip(first, second))
    start = [p.detach() for p in make_policy("gru", vocab).parameters()]
    assert not all(torch.equal(x, y) for x, y in zip(first, start))  # it did train


@pytest.mark.parametrize("mode", ["online", "offline"])
def test_agent_surface_and_metrics(mode, make_policy, vocab_size) -> None:
    agent = _agent(make_policy, vocab_size(**COPY), mode)
    metrics = agent.train_iteration()
    metrics = agent.train_iteration()
    assert agent.name == "dpo" and agent.iteration == 2
    assert agent.episodes == (2 * 16 * 4 if mode == "online" else 2 * 16)
    assert isinstance(agent.optimizer, torch.optim.Adam)
    assert agent.base.tokenizer.vocab == gym.make("TokenGen-v0", **COPY).unwrapped.tokenizer.vocab
    for key in ("rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins"):
        assert math.isfinite(metrics[key])
    assert metrics["perf/seconds"] > 0 and metrics["charts/episodes"] == agent.episodes
    assert all("/" in key for key in metrics)
    # the reference is frozen and is the initial policy
    start = [p.detach() for p in make_policy("gru", vocab_size(**COPY)).parameters()]
    assert all(torch.equal(x, y) for x, y in zip(agent.reference.parameters(), start))
    assert not any(p.requires_grad for p in agent.reference.parameters())


def test_a_batch_of_ties_takes_no_step(tiny_kwargs, make_policy, vocab_size) -> None:
    kwargs = {**tiny_kwargs("terminal"), "reward": lambda prompt, completion, reference: 0.5}
    policy = make_policy("gru", vocab_size(**kwargs))
    before = [p.detach().clone() for p in policy.parameters()]
    agent = DPOAgent(policy, train_config("dpo", kwargs, batch_size=8, group_size=2))
    metrics = agent.train_iteration()
    assert metrics["charts/pairs"] == 0.0 and math.isnan(metrics["losses/dpo"])
    assert all(torch.equal(x, y) for x, y in zip(before, agent.policy.parameters()))
    assert agent.episodes == 16 and agent.iteration == 1


def test_reference_argument_is_copied_and_frozen(make_policy, vocab_size) -> None:
    vocab = vocab_size(**COPY)
    reference = GRUPolicy(GRUConfig(vocab, embed_size=8, hidden_size=16))
    agent = DPOAgent(make_policy("gru", vocab), train_config("dpo", COPY), reference)
    assert agent.reference is not reference
    assert all(
        torch.equal(x, y) for x, y in zip(agent.reference.parameters(), reference.parameters())
    )


# ---------------------------------------------------------------------------------------------
# Learning with the default config
# ---------------------------------------------------------------------------------------------

# Copy of one or two letters over eight: 72 prompts, 52 to train on, 20 unseen ones to test on;
# the answer is the prompt, so a policy must read it. R is the edit similarity (success is still
# the exact answer), so the groups rarely tie before the first exact copy.
SHORT_COPY = {
    "task": "copy",
    "min_length": 1,
    "max_length": 2,
    "alphabet_size": 8,
    "train_size": 52,
    "test_size": 20,
    "reward": "edit",
}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("env_kwargs", "iterations", "every"),
    [({"task": "target"}, 100, 5), (SHORT_COPY, 600, 25)],
    ids=["target", "short-copy"],
)
def test_online_dpo_with_defaults_learns(env_kwargs, iterations, every, tmp_path) -> None:
    config = train_config(
        "dpo",
        env_kwargs,
        iterations=iterations,
        eval_every=every,
        target_success=0.9,
        out=str(tmp_path),
    )
    assert train(config)["eval/greedy_success"] >= 0.9
