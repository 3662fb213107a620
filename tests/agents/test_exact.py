"""``agents/exact.py``: estimators' exact expected gradients against the exact grad J.

On the enumerable task of ``conftest.py`` (two prompts, seven completions each), with R on the
last token (credit "final", gamma 1) the plain estimator's mean is grad J = grad E[R]; every
unbiased estimator must give it to 1e-9, the known-biased ones must not.
"""

from __future__ import annotations

import pytest
import torch
from tokengym.agents.exact import Estimator, Exact, cosine, enumerate_task, relative_norm


@pytest.fixture(scope="module")
def exact() -> Exact:
    from tests.agents.conftest import _make_policy, _tiny_kwargs, _vocab_size

    kwargs = _tiny_kwargs("terminal", 1.0)
    policy = _make_policy("gru", _vocab_size(**kwargs)).double()
    with torch.no_grad():  # sharper than the default init: a larger, richer gradient
        for p in policy.parameters():
            p.mul_(3.0)
    return Exact(policy, enumerate_task(kwargs))


# The suite's main task (benchmarks/suites.py COPY)
COPY = {"task": "copy", "min_length": 1, "max_length": 2, "alphabet_size": 4, "train_size": 16}
COPY |= {"test_size": 4}

# (estimator, batch size, the factor its mean is of grad J)
UNBIASED = [
    (Estimator(baseline="none"), 1, 1.0),
    (Estimator(baseline="rloo", group_size=2), 4, 1.0),
    (Estimator(baseline="rloo", group_size=3), 3, 1.0),
    (Estimator(baseline="mean"), 2, 0.5),  # the sample is in its own baseline: 1 - 1/B
    (Estimator(baseline="group", group_size=2), 2, 0.5),  # Dr. GRPO's advantage: 1 - 1/k
    (Estimator(baseline="value"), 1, 1.0),  # exact V as the baseline
    (Estimator(baseline="vine", gae_lambda=0.0), 1, 1.0),  # VinePPO with exact values
    (Estimator(baseline="value", gae_lambda=0.95), 2, 1.0),  # PPO, one epoch, ratio 1
    (Estimator(baseline="rloo", group_size=2, loss_agg_mode="seq-mean-token-sum-norm"), 2, 0.5),
    (Estimator(baseline="rloo", group_size=2, loss_agg_mode="seq-mean-token-mean"), 2, None),
]


@pytest.mark.parametrize(("estimator", "batch", "factor"), UNBIASED[:-1])
def test_unbiased_estimators_mean_is_grad_j(exact, estimator, batch, factor) -> None:
    grad_j = exact.objective_gradient()
    stats = exact.estimator_stats(estimator, batch)
    assert stats.exact and grad_j.norm() > 0.5
    torch.testing.assert_close(stats.expected_gradient, factor * grad_j, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    ("estimator", "cos", "ratio"),
    [
        # GRPO: std-normalised group of 2 (a std of 0 in tied groups, eps 1e-6)
        (Estimator(baseline="group", group_size=2, scale_rewards="group"), 0.997100, 1.155974),
        # token-mean over episodes of 1 and 2 tokens: a long episode's tokens weigh less
        (Estimator(baseline="rloo", group_size=2, loss_agg_mode="token-mean"), 0.998250, 0.661362),
        # mean over sequences of token-means: the same length bias
        (UNBIASED[-1][0], None, None),
    ],
)
def test_biased_estimators_have_a_pinned_bias(exact, estimator, cos, ratio) -> None:
    grad_j = exact.objective_gradient()
    mean = exact.estimator_stats(estimator, 2).expected_gradient
    if cos is None:  # direction off: no multiple of grad J
        cos = cosine(mean, grad_j)
        assert cos < 1 - 1e-4
        return
    assert cosine(mean, grad_j) == pytest.approx(cos, abs=2e-6)
    assert relative_norm(mean, grad_j) == pytest.approx(ratio, abs=2e-6)
    assert 1 - cosine(mean, grad_j) > 1e-3


def test_every_token_and_discounted_final_biases_match_their_closed_form(exact) -> None:
    """Episodes of 1 or 2 steps: every_token gives step 0 of a 2-step episode (T - t) R = 2R
    instead of R, final with gamma gives it gamma R: the biases are E[grad log pi(a_0|s_0) R
    [len = 2]] and (gamma - 1) times it."""
    t = exact.task
    long = (t.valid.sum(1) == 2).to(torch.float64)  # (N,)
    closed = (exact.weight * exact.logp[:, 0] * t.sequence_reward * long).sum()
    from tokengym.agents.exact import flat_grad

    extra = flat_grad(closed, exact.policy)
    grad_j = exact.objective_gradient()
    assert extra.norm() > 0.1
    every = exact.estimator_stats(Estimator(credit="every_token"), 1).expected_gradient
    torch.testing.assert_close(every - grad_j, extra, rtol=1e-9, atol=1e-12)
    final = exact.estimator_stats(Estimator(credit="final", gamma=0.7), 1).expected_gradient
    torch.testing.assert_close(final - grad_j, (0.7 - 1) * extra, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    ("estimator", "batch"),
    [
        (Estimator(baseline="rloo", group_size=2), 4),
        (Estimator(baseline="group", group_size=2, scale_rewards="group"), 2),
        (Estimator(baseline="mean"), 2),
    ],
)
def test_monte_carlo_agrees_with_the_exact_statistics(exact, estimator, batch) -> None:
    ex = exact.estimator_stats(estimator, batch)
    mc = exact.monte_carlo_stats(estimator, batch, batches=4000, seed=3)
    low, high = mc.variance_ci
    assert low <= ex.variance <= high and high - low < 0.2 * ex.variance
    z = (mc.expected_gradient - ex.expected_gradient) / mc.gradient_stderr.clamp(min=1e-12)
    assert z.abs().max() < 5.0  # ~1700 components: max |z| of a normal sample stays below 4.5
    assert mc.zero_advantage_share == pytest.approx(ex.zero_advantage_share, abs=0.03)
    assert mc.advantage_correlation == pytest.approx(ex.advantage_correlation, abs=0.03)


def test_variance_falls_as_one_over_the_number_of_groups(exact) -> None:
    est = Estimator(baseline="rloo", group_size=2)
    assert exact.estimator_stats(est, 8).variance == pytest.approx(
        exact.estimator_stats(est, 2).variance / 4, rel=1e-12
    )


def test_exact_values_and_advantages(exact) -> None:
    t = exact.task
    values = exact.values("final", 1.0)
    for x in range(t.num_prompts):
        eps = t.episodes_of(x)
        p = exact.weight[eps] * t.num_prompts
        assert values.prefix[(x, ())] == pytest.approx(float((p * t.sequence_reward[eps]).sum()))
        torch.testing.assert_close(
            values.v[eps, 0], torch.full((len(eps),), values.prefix[(x, ())], dtype=torch.float64)
        )
    last = t.valid.sum(1) - 1
    rows = torch.arange(len(last))
    torch.testing.assert_close(values.q[rows, last], t.sequence_reward)  # Q at the end is R
    # E_a[A(s, a)] = 0 at the root of each prompt, and the exact-V baseline's advantage is A
    # on the last step
    assert (exact.weight * values.a[:, 0]).sum().abs() < 1e-12
    stats = exact.estimator_stats(Estimator(baseline="value", gae_lambda=0.0), 1)
    assert stats.advantage_correlation == pytest.approx(1.0, abs=1e-12)
    assert stats.zero_advantage_share == 0.0


def test_zero_advantage_shares(exact) -> None:
    """With R in {0, 0.5, 1}, an RLOO group of 2 has zero advantage exactly when both tie."""
    t = exact.task
    stats = exact.estimator_stats(Estimator(baseline="rloo", group_size=2), 2)
    tie = 0.0
    for x in range(t.num_prompts):
        eps = t.episodes_of(x)
        p = exact.weight[eps] * t.num_prompts
        for r in t.sequence_reward[eps].unique():
            tie += float(p[t.sequence_reward[eps] == r].sum()) ** 2 / t.num_prompts
    assert stats.zero_group_share == pytest.approx(tie, rel=1e-12)
    assert stats.zero_advantage_share == pytest.approx(tie, rel=1e-12)


def test_enumeration_refuses_large_tasks() -> None:
    with pytest.raises(ValueError, match="more than max_episodes=3 episodes"):
        enumerate_task(COPY, max_episodes=3)


def test_exact_enumeration_refuses_too_many_batches(exact) -> None:
    with pytest.raises(ValueError, match="use monte_carlo_stats"):
        exact.estimator_stats(Estimator(baseline="mean"), 8, max_batches=1000)
