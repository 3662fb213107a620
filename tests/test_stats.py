"""The statistics of the benchmark report on inputs whose answers are known by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from tokengym.bench.stats import (
    Estimate,
    Metric,
    bootstrap_ci,
    conclude,
    conclude_many,
    iqm,
    number,
    percentile,
    probability_of_improvement,
    to_threshold,
)

# scipy.stats.trim_mean(x, 0.25) semantics: int(0.25 * n) dropped from each end.
IQM_TABLE = [
    ([1.0, 2.0, 30.0], 11.0),  # n = 3: nothing dropped
    ([4.0, 1.0, 3.0, 2.0], 2.5),  # n = 4: one from each end
    ([1.0, 2.0, 3.0, 4.0, 100.0], 3.0),  # n = 5: one from each end
    ([1.0, 2.0, 3.0, 4.0, 5.0, 60.0], 3.5),  # n = 6: one
    ([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 100.0], 3.0),  # n = 7: one
    ([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], 4.5),  # n = 8: two
    ([[1.0, 2.0], [3.0, 4.0]], 2.5),  # (runs, tasks): over all scores
    ([1.0, 2.0, 3.0, math.inf], 2.5),  # one never of four: still finite
    ([1.0, None, None, None], math.inf),
    ([7.0], 7.0),
]


@pytest.mark.parametrize(("scores", "expected"), IQM_TABLE)
def test_iqm(scores, expected: float) -> None:
    assert iqm(scores) == expected


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([1.0, 2.0, 3.0, 4.0], 50, 2.5),
        ([1.0, 2.0, 3.0, 4.0], 0, 1.0),
        ([1.0, 2.0, 3.0, 4.0], 100, 4.0),
        ([1.0, 2.0, math.inf], 50, 2.0),
        ([1.0, 2.0, math.inf], 75, math.inf),
        ([math.inf, math.inf], 50, math.inf),
    ],
)
def test_percentile_is_linear_and_keeps_inf(values, q: float, expected: float) -> None:
    assert percentile(np.array(values), q) == expected


def test_two_runs_give_their_mean_and_their_range() -> None:
    # Resamples of [a, b] are (a, a), (a, b), (b, a), (b, b), a quarter each: the 2.5 and 97.5
    # percentiles of their means are a and b.
    assert bootstrap_ci([100.0, 300.0]) == Estimate(200.0, 100.0, 300.0)


def test_bootstrap_is_stratified_by_task() -> None:
    # Task 0 scores 0 and task 1 scores 10 on every run: resampling runs within each task keeps
    # two of each in every resample, so the CI has no width; pooling the runs would not.
    assert bootstrap_ci([[0.0, 10.0], [0.0, 10.0]]) == Estimate(5.0, 5.0, 5.0)


def test_ci_contains_the_iqm_and_shrinks_with_more_runs() -> None:
    rng = np.random.default_rng(0)
    widths = []
    for n in (8, 32, 128):
        scores = rng.normal(10.0, 2.0, size=n)
        est = bootstrap_ci(scores, reps=1000, seed=1)
        assert est.value == iqm(scores)
        assert est.low < est.value < est.high
        widths.append(est.high - est.low)
    assert widths[0] > widths[1] > widths[2]
    assert widths[0] > 2 * widths[2]  # ~ 1 / sqrt(n): 4 expected


def test_bootstrap_is_deterministic_for_a_seed() -> None:
    scores = np.random.default_rng(3).normal(size=10)
    first, again = bootstrap_ci(scores, seed=5), bootstrap_ci(scores, seed=5)
    other = bootstrap_ci(scores, seed=6)
    assert first == again
    assert (first.low, first.high) != (other.low, other.high)
    assert bootstrap_ci(scores, reps=50, seed=5) != first


@pytest.mark.parametrize(
    ("x", "y", "higher_is_better", "expected"),
    [
        ([3.0, 4.0], [1.0, 2.0], True, 1.0),
        ([1.0, 2.0], [3.0, 4.0], True, 0.0),
        ([1.0, 2.0], [1.0, 2.0], True, 0.5),
        ([1.0, 2.0], [2.0, 3.0], True, 0.125),  # one tie (2, 2) in four pairs
        ([1.0, 2.0], [2.0, 3.0], False, 0.875),  # lower is better: 3 wins and a tie
        ([1.0, None], [2.0, None], False, 0.625),  # never = inf; never vs never is a tie
        ([[1.0, 5.0], [2.0, 6.0]], [[3.0, 0.0], [4.0, 1.0]], True, 0.5),  # mean of 0 and 1
    ],
)
def test_probability_of_improvement(x, y, higher_is_better: bool, expected: float) -> None:
    p = probability_of_improvement(x, y, higher_is_better=higher_is_better)
    assert p.value == expected
    assert p.low <= p.value <= p.high


def test_probability_of_improvement_ci_by_hand() -> None:
    assert probability_of_improvement([3.0, 4.0], [1.0, 2.0]) == Estimate(1.0, 1.0, 1.0)
    # Costs X = [100, 300], Y = [200, 400]: a resample X = (300, 300), Y = (200, 200) has
    # P = 0 (chance 1/16) and X = (100, 100) has P = 1 (chance 1/4): the CI is [0, 1].
    p = probability_of_improvement([100.0, 300.0], [200.0, 400.0], higher_is_better=False)
    assert p == Estimate(0.75, 0.0, 1.0)


def test_to_threshold_counts_never_as_infinite() -> None:
    summary = to_threshold([256, 192, 320, None])
    assert (summary.reached, summary.runs, summary.estimate.value) == (3, 4, 288.0)
    assert summary.estimate.high == math.inf
    assert summary.format(budget=4096) == "288 [192, >4,096] (3/4 reached)"
    # n = 3 drops nothing, so one never makes the IQM never; the resample (10, 10, 10) has a
    # chance of 1/27 > 2.5%, so the CI's lower end is 10.
    assert to_threshold([None, None, 10]).format() == "never [10.0, never] (1/3 reached)"


@pytest.mark.parametrize(
    ("x", "budget", "expected"),
    [
        (1050.4, None, "1,050"),
        (256.0, None, "256"),
        (12.34, None, "12.3"),
        (0.98, None, "0.98"),
        (math.inf, 4096, ">4,096"),
        (math.inf, None, "never"),
    ],
)
def test_number(x: float, budget, expected: str) -> None:
    assert number(x, budget) == expected


EPISODES = Metric("episodes to 0.9 greedy success", False, "0.9 greedy success", "episodes", 4096)
SUCCESS = Metric("final greedy success")


def test_conclude_names_the_better_arm_first_with_ratio_and_cis() -> None:
    expected = (
        "Q1: supervised reaches 0.9 greedy success in 4.1x fewer episodes than REINFORCE "
        "(IQM 256 [192, 320] vs 1,050 [700, 1,400]; CIs do not overlap; "
        "P(supervised better) = 1.00 [1.00, 1.00])."
    )
    sl, rl = ("supervised", [192, 320]), ("REINFORCE", [700, 1400])
    assert conclude("Q1", sl, rl, EPISODES) == expected
    assert conclude("Q1", rl, sl, EPISODES) == expected


def test_conclude_when_one_arm_never_reaches() -> None:
    assert conclude("", ("SL", [192, 320]), ("RL", [None, None]), EPISODES) == (
        "SL reaches 0.9 greedy success and RL does not, within the budget "
        "(IQM 256 [192, 320] vs >4,096 [>4,096, >4,096]; CIs do not overlap; "
        "P(SL better) = 1.00 [1.00, 1.00])."
    )


def test_conclude_with_overlapping_cis_claims_nothing() -> None:
    assert conclude("Q3", ("Y", [200, 400]), ("X", [100, 300]), EPISODES) == (
        "Q3: no clear difference in episodes to 0.9 greedy success between X and Y "
        "(IQM 200 [100, 300] vs 300 [200, 400]; CIs overlap; P(X better) = 0.75 [0.00, 1.00])."
    )


def test_conclude_on_a_score() -> None:
    assert conclude("", ("A", [0.9, 1.0]), ("B", [0.2, 0.4]), SUCCESS) == (
        "A has a higher final greedy success than B (IQM 0.95 [0.90, 1.00] vs "
        "0.30 [0.20, 0.40]; CIs do not overlap; P(A better) = 1.00 [1.00, 1.00])."
    )


def test_conclude_many() -> None:
    arms = [("a", [0.2, 0.4]), ("b", [0.9, 1.0]), ("c", [0.8, 1.0])]
    assert conclude_many("Q2", arms, SUCCESS) == (
        "Q2: best final greedy success: b, IQM 0.95 [0.90, 1.00]; CIs overlapping it: "
        "c 0.90 [0.80, 1.00]; below it: a 0.30 [0.20, 0.40]."
    )
    costs = [("slow", [700, 1400]), ("fast", [192, 320])]
    assert conclude_many("", costs, EPISODES) == (
        "best episodes to 0.9 greedy success: fast, IQM 256 [192, 320]; "
        "no other arm's CI overlaps it; above it: slow 1,050 [700, 1,400]."
    )


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: iqm([]), "scores must be a non-empty"),
        (lambda: iqm([1.0, math.nan]), "without NaN"),
        (lambda: bootstrap_ci([1.0], "max"), "statistic='max' is invalid"),
        (lambda: probability_of_improvement([[1.0, 2.0]], [1.0]), "X has 2 tasks and Y 1"),
        (lambda: conclude_many("", [("a", [1.0])], SUCCESS), "needs two arms or more, got 1"),
    ],
)
def test_errors(call, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        call()
