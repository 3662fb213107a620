"""The estimators against exact gradients computed by enumerating every completion.

The objective each estimator is unbiased for (rho = uniform over the train prompts, p = pi):

- credit="trajectory": J(theta) = E_{x~rho, y~pi}[sum_k gamma^k r_k], a true objective, so the
  estimator's mean must equal grad J, obtained by autograd through the exact sum over y.
- credit="env", "final", "every_token": the estimator sum_t grad log pi(a_t|s_t) G_t(y) with
  their returns G_t (reward-to-go of the env rewards, of R on the last token, of R on every
  token) is in general not the gradient of any fixed objective (for gamma < 1, Nota & Thomas,
  2020; "every_token" rewards depend on future tokens); its mean is the gradient at theta0 of
  the surrogate S(theta) = E_{x, y~pi_theta0}[sum_t log pi_theta(a_t|s_t) G_t(y)], which we
  compute exactly, with G_t written out per episode below. For gamma = 1, "env" and "final"
  are also grad E[sum_t r_t] and grad E[R] (checked).
- supervised: J(theta) = mean_i log p_theta(y_i + EOS | x_i), computed example by example
  without padding.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from tokengym.agents.exact import Exact, completion_logprobs, enumerate_task
from tokengym.agents.losses import reinforce_loss, supervised_loss
from tokengym.agents.reinforce import rollout_decisions
from tokengym.agents.rollout import collect_rollout
from tokengym.agents.supervised import reference_decisions


def hand_returns(credit: str, gamma: float, rewards: list[float], r: float) -> torch.Tensor:
    """G_t of one episode, written from the definitions (T = its last step)."""
    last = len(rewards) - 1
    if credit == "env":
        g = [
            sum(gamma ** (k - t) * rewards[k] for k in range(t, last + 1)) for t in range(last + 1)
        ]
    elif credit == "final":
        g = [gamma ** (last - t) * r for t in range(last + 1)]
    else:
        assert credit == "every_token"
        g = [sum(gamma ** (k - t) * r for k in range(t, last + 1)) for t in range(last + 1)]
    return torch.tensor(g, dtype=torch.float64)


def exact_gradient(policy, env_kwargs: dict, credit: str, gamma: float) -> torch.Tensor:
    """The estimator's mean from ``agents/exact.py``: grad J for trajectory credit, else the
    surrogate's gradient; its returns are checked against the hand-written ones first."""
    exact = Exact(policy, enumerate_task(env_kwargs))
    assert len(exact.task.prompt) == 14  # 2 prompts x (EOS; x EOS; x y)
    if credit == "trajectory":
        return exact.objective_gradient("env", gamma)
    t, g = exact.task, exact.returns(credit, gamma)
    for e in range(len(t.prompt)):
        n = int(t.valid[e].sum())
        hand = hand_returns(credit, gamma, t.rewards[e, :n].tolist(), float(t.sequence_reward[e]))
        torch.testing.assert_close(g[e, :n], hand, rtol=1e-12, atol=1e-12)
    return exact.surrogate_gradient(credit, gamma)


def estimated_gradient(
    policy, env_kwargs: dict, credit: str, gamma: float, baseline: str, batches: int
) -> torch.Tensor:
    vec = gym.make_vec("TokenGen-v0", num_envs=1024, **env_kwargs)
    n_prompts = vec.unwrapped.num_prompts if hasattr(vec, "unwrapped") else vec.num_prompts
    gen = torch.Generator().manual_seed(1)
    prompts = np.repeat(np.arange(n_prompts), 1024 // n_prompts)  # rho uniform, groups of 512
    total = None
    for b in range(batches):
        batch = collect_rollout(vec, policy, prompts, gen, seed=b, dtype=torch.float64)
        d = rollout_decisions(batch)
        loss, _ = reinforce_loss(
            policy,
            d,
            batch.rewards[:, : d.actions.shape[1]],
            sequence_reward=batch.sequence_reward,
            gamma=gamma,
            credit=credit,
            baseline=baseline,
            group_size=1024 // n_prompts,
        )
        policy.zero_grad()
        (-loss).backward()
        g = torch.cat([p.grad.flatten() for p in policy.parameters()])
        total = g if total is None else total + g
    return total / batches


@pytest.mark.parametrize(
    ("credit", "gamma", "reward_mode", "baseline"),
    [
        ("env", 0.8, "dense", "rloo"),
        ("env", 1.0, "terminal", "none"),
        ("trajectory", 0.8, "dense", "rloo"),
        ("trajectory", 1.0, "terminal", "rloo"),
        ("final", 0.8, "dense", "rloo"),
        ("final", 1.0, "terminal", "none"),
        ("every_token", 0.8, "dense", "rloo"),
        ("every_token", 1.0, "terminal", "rloo"),
        ("env", 0.8, "progress", "rloo"),
        ("trajectory", 1.0, "progress", "none"),
    ],
)
def test_reinforce_gradient_matches_enumeration(
    credit, gamma, reward_mode, baseline, tiny_kwargs, make_policy, vocab_size
) -> None:
    kwargs = tiny_kwargs(reward_mode, gamma)
    policy = make_policy("gru", vocab_size(**kwargs)).double()
    with torch.no_grad():  # sharper logits than the default init: a larger, richer gradient
        for p in policy.parameters():
            p.mul_(3.0)
    exact = exact_gradient(policy, kwargs, credit, gamma)
    est = estimated_gradient(policy, kwargs, credit, gamma, baseline, batches=30)
    rel = (est - exact).norm() / exact.norm()
    assert exact.norm() > 1e-2
    assert rel < 0.05, f"relative error {rel:.4f}"


def test_env_credit_with_gamma_one_is_the_gradient_of_expected_return(
    tiny_kwargs, make_policy, vocab_size
) -> None:
    kwargs = tiny_kwargs("dense", 1.0)
    policy = make_policy("gru", vocab_size(**kwargs)).double()
    surrogate = exact_gradient(policy, kwargs, "env", 1.0)
    objective = exact_gradient(policy, kwargs, "trajectory", 1.0)
    torch.testing.assert_close(surrogate, objective, rtol=1e-10, atol=1e-12)


def test_final_credit_with_gamma_one_is_the_gradient_of_expected_sequence_reward(
    tiny_kwargs, make_policy, vocab_size
) -> None:
    # "final" reads R, not the dense env rewards: its gradient is grad E[R], which is the
    # trajectory objective of the terminal env.
    policy = make_policy("gru", vocab_size(**tiny_kwargs("dense", 1.0))).double()
    surrogate = exact_gradient(policy, tiny_kwargs("dense", 1.0), "final", 1.0)
    objective = exact_gradient(policy, tiny_kwargs("terminal", 1.0), "trajectory", 1.0)
    torch.testing.assert_close(surrogate, objective, rtol=1e-10, atol=1e-12)
    assert surrogate.norm() > 1e-2


def test_supervised_gradient_is_the_exact_log_likelihood_gradient(policy_kind, make_policy) -> None:
    kwargs = {"task": "copy", "min_length": 1, "max_length": 4, "train_size": 40}
    env = gym.make("TokenGen-v0", **kwargs)
    base = env.unwrapped
    policy = make_policy(policy_kind, base.tokenizer.vocab_size).double()
    loss = supervised_loss(policy, reference_decisions(env))
    policy.zero_grad()
    (-loss).backward()
    padded = torch.cat([p.grad.flatten() for p in policy.parameters()]).clone()

    exact = torch.stack(
        [
            completion_logprobs(policy, base, i, [*ref, base.tokenizer.eos_id]).sum()
            for i, ref in enumerate(base.reference_ids)
        ]
    ).mean()
    policy.zero_grad()
    exact.backward()
    reference = torch.cat([p.grad.flatten() for p in policy.parameters()])
    torch.testing.assert_close(-loss.detach(), exact.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(padded, reference, rtol=1e-9, atol=1e-12)
