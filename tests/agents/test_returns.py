"""Returns, baselines and advantage normalisation: exact values on small tables."""

from __future__ import annotations

import pytest
import torch
from tokengym.agents.returns import (
    CREDITS,
    batch_baseline,
    discounted_returns,
    normalize,
    returns,
    sequence_rewards,
    trajectory_returns,
)

R = torch.tensor([[1.0, 0.0, 2.0], [0.5, 0.5, 0.0]])

# Three episodes of lengths 4, 2 and 1 in one batch; the env rewards differ from R on purpose,
# so that "final" and "every_token" are seen to ignore them. Every value is a dyadic rational:
# the returns below are exact.
ENV_REWARDS = torch.tensor(
    [[0.25, -0.5, 0.75, 1.0], [0.5, 1.5, 0.0, 0.0], [-1.0, 0.0, 0.0, 0.0]], dtype=torch.float64
)
VALID = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], dtype=torch.bool)
SEQUENCE_REWARD = torch.tensor([1.0, 0.5, 2.0], dtype=torch.float64)

RETURN_TABLE = [
    ("final", 1.0, [[1, 1, 1, 1], [0.5, 0.5, 0, 0], [2, 0, 0, 0]]),
    ("final", 0.5, [[0.125, 0.25, 0.5, 1], [0.25, 0.5, 0, 0], [2, 0, 0, 0]]),
    ("every_token", 1.0, [[4, 3, 2, 1], [1, 0.5, 0, 0], [2, 0, 0, 0]]),
    ("every_token", 0.5, [[1.875, 1.75, 1.5, 1], [0.75, 0.5, 0, 0], [2, 0, 0, 0]]),
    ("trajectory", 1.0, [[1.5] * 4, [2.0] * 4, [-1.0] * 4]),
    ("trajectory", 0.5, [[0.3125] * 4, [1.25] * 4, [-1.0] * 4]),
    ("env", 1.0, [[1.5, 1.25, 1.75, 1], [2, 1.5, 0, 0], [-1, 0, 0, 0]]),
    ("env", 0.5, [[0.3125, 0.125, 1.25, 1], [1.25, 1.5, 0, 0], [-1, 0, 0, 0]]),
]


def test_the_table_covers_every_credit_mode() -> None:
    assert CREDITS == ("final", "every_token", "trajectory", "env")
    assert sorted({credit for credit, _, _ in RETURN_TABLE}) == sorted(CREDITS)


@pytest.mark.parametrize(("credit", "gamma", "expected"), RETURN_TABLE)
def test_returns_by_hand(credit, gamma, expected) -> None:
    g = returns(ENV_REWARDS, gamma, credit, SEQUENCE_REWARD, VALID)
    torch.testing.assert_close(g, torch.tensor(expected, dtype=torch.float64), rtol=0, atol=0)


def test_final_credit_equals_env_credit_under_terminal_rewards() -> None:
    terminal = sequence_rewards(SEQUENCE_REWARD, VALID, "final")  # R on the last step only
    expected = torch.tensor([[0, 0, 0, 1.0], [0, 0.5, 0, 0], [2.0, 0, 0, 0]], dtype=torch.float64)
    torch.testing.assert_close(terminal, expected, rtol=0, atol=0)
    for gamma in (1.0, 0.5):
        torch.testing.assert_close(
            returns(terminal, gamma, "final", SEQUENCE_REWARD, VALID),
            returns(terminal, gamma, "env"),
            rtol=0,
            atol=0,
        )


@pytest.mark.parametrize("credit", ["final", "every_token"])
def test_sequence_credits_need_the_sequence_reward(credit) -> None:
    with pytest.raises(ValueError, match=f"credit='{credit}' needs the sequence rewards R"):
        returns(ENV_REWARDS, 1.0, credit)


def test_discounted_returns() -> None:
    expected = torch.tensor([[1.0 + 0.5 * 0 + 0.25 * 2, 0.0 + 0.5 * 2, 2.0], [0.75, 0.5, 0.0]])
    torch.testing.assert_close(discounted_returns(R, 0.5), expected)


def test_trajectory_returns_are_the_discounted_total_on_every_step() -> None:
    expected = torch.tensor([[1.5, 1.5, 1.5], [0.75, 0.75, 0.75]])
    torch.testing.assert_close(trajectory_returns(R, 0.5), expected)
    torch.testing.assert_close(trajectory_returns(R, 1.0)[:, 0], torch.tensor([3.0, 1.0]))


@pytest.mark.parametrize("credit", ["x", "broadcast"])
def test_returns_rejects_unknown_credit(credit) -> None:
    with pytest.raises(ValueError, match=f"credit='{credit}' is invalid; expected one of"):
        returns(R, 1.0, credit)


def test_baselines() -> None:
    g = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]])
    torch.testing.assert_close(batch_baseline(g, "none"), torch.zeros_like(g))
    torch.testing.assert_close(batch_baseline(g, "mean"), torch.tensor([[4.0, 5.0]] * 4))
    rloo = torch.tensor([[3.0, 4.0], [1.0, 2.0], [7.0, 8.0], [5.0, 6.0]])
    torch.testing.assert_close(batch_baseline(g, "rloo", 2), rloo)
    torch.testing.assert_close(batch_baseline(g, "rloo", 4)[0], torch.tensor([5.0, 6.0]))


@pytest.mark.parametrize(("kind", "k"), [("rloo", 1), ("rloo", 3), ("value", 1)])
def test_baseline_errors(kind, k) -> None:
    with pytest.raises(ValueError):
        batch_baseline(torch.zeros(4, 2), kind, k)


def test_normalize_ignores_invalid_entries() -> None:
    adv = torch.tensor([[1.0, 3.0, 100.0]])
    valid = torch.tensor([[True, True, False]])
    torch.testing.assert_close(normalize(adv, valid), torch.tensor([[-1.0, 1.0, 0.0]]))
