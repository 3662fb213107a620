"""The estimators against exact gradients computed by enumerating every completion.

The objective each estimator is unbiased for (rho = uniform over the train prompts, p = pi):

- credit="broadcast": J(theta) = E_{x~rho, y~pi}[sum_k gamma^k r_k], a true objective, so the
  estimator's mean must equal grad J, obtained by autograd through the exact sum over y.
- credit="env": the estimator sum_t grad log pi(a_t|s_t) G_t with reward-to-go G_t is, for
  gamma < 1, not the gradient of any fixed objective (Nota & Thomas, 2020); its mean is the
  gradient at theta0 of the surrogate S(theta) = E_{x, y~pi_theta0}[sum_t log pi_theta(a_t|s_t)
  G_t(y)], which we compute exactly. For gamma = 1 it is also grad E[sum_t r_t] (checked).
- supervised: J(theta) = mean_i log p_theta(y_i + EOS | x_i), computed example by example
  without padding.
"""

from __future__ import annotations

import itertools

import gymnasium as gym
import numpy as np
import pytest
import torch
from tokengym.agents.losses import reinforce_loss, supervised_loss
from tokengym.agents.policies import masked_logits
from tokengym.agents.reinforce import rollout_decisions
from tokengym.agents.rollout import collect_rollout
from tokengym.agents.supervised import reference_decisions


def enumerate_episodes(env_kwargs: dict) -> list[tuple[int, list[int], list[float]]]:
    """Every (prompt index, actions, per-step env rewards) of the tiny task."""
    env = gym.make("TokenGen-v0", **env_kwargs).unwrapped
    tok = env.tokenizer
    letters = [i for i in range(tok.vocab_size) if env.action_masks()[i] and i != tok.eos_id]
    completions = [[tok.eos_id]] + [[a, tok.eos_id] for a in letters]
    completions += [list(p) for p in itertools.product(letters, repeat=2)]
    out = []
    for i in range(env.num_prompts):
        for actions in completions:
            env.reset(options={"prompt_index": i})
            rewards = [float(env.step(a)[1]) for a in actions]
            out.append((i, actions, rewards))
    return out


def sequence_logps(policy, env_kwargs: dict, episodes) -> torch.Tensor:
    """log pi(a_t | s_t) per episode and step, each sequence run on its own (no padding)."""
    env = gym.make("TokenGen-v0", **env_kwargs).unwrapped
    tok, mask = env.tokenizer, torch.as_tensor(env.action_masks())
    out = []
    for i, actions, _ in episodes:
        seq = [tok.bos_id, *env.prompt_ids[i], tok.sep_id, *actions]
        start = len(env.prompt_ids[i]) + 1
        logits = policy(torch.tensor([seq]))[0, start : start + len(actions)]  # (t, V)
        logp = masked_logits(logits, mask).log_softmax(-1)
        out.append(logp[torch.arange(len(actions)), torch.tensor(actions)])
    return out


def exact_gradient(policy, env_kwargs: dict, credit: str, gamma: float) -> torch.Tensor:
    episodes = enumerate_episodes(env_kwargs)
    n_prompts = len({i for i, _, _ in episodes})
    logps = sequence_logps(policy, env_kwargs, episodes)
    total = torch.zeros((), dtype=torch.float64)
    for (_, _, rewards), logp in zip(episodes, logps):
        r = torch.tensor(rewards, dtype=torch.float64)
        disc = gamma ** torch.arange(len(r), dtype=torch.float64)
        prob = logp.sum().exp()
        if credit == "broadcast":
            total = total + prob * (disc * r).sum() / n_prompts  # J itself
        else:
            g = torch.stack([(disc[: len(r) - t] * r[t:]).sum() for t in range(len(r))])
            total = total + prob.detach() * (logp * g).sum() / n_prompts  # surrogate S
    policy.zero_grad()
    total.backward()
    return torch.cat([p.grad.flatten() for p in policy.parameters()]).clone()


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
        ("broadcast", 0.8, "dense", "rloo"),
        ("broadcast", 1.0, "terminal", "rloo"),
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
    objective = exact_gradient(policy, kwargs, "broadcast", 1.0)
    torch.testing.assert_close(surrogate, objective, rtol=1e-10, atol=1e-12)


def test_supervised_gradient_is_the_exact_log_likelihood_gradient(policy_kind, make_policy) -> None:
    kwargs = {"task": "copy", "min_length": 1, "max_length": 4, "train_size": 40}
    env = gym.make("TokenGen-v0", **kwargs)
    base = env.unwrapped
    policy = make_policy(policy_kind, base.tokenizer.vocab_size).double()
    loss = supervised_loss(policy, reference_decisions(env))
    policy.zero_grad()
    (-loss).backward()
    padded = torch.cat([p.grad.flatten() for p in policy.parameters()]).clone()

    episodes = [(i, [*ref, base.tokenizer.eos_id], []) for i, ref in enumerate(base.reference_ids)]
    logps = sequence_logps(policy, kwargs, episodes)
    exact = torch.stack([lp.sum() for lp in logps]).mean()
    policy.zero_grad()
    exact.backward()
    reference = torch.cat([p.grad.flatten() for p in policy.parameters()])
    torch.testing.assert_close(-loss.detach(), exact.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(padded, reference, rtol=1e-9, atol=1e-12)
