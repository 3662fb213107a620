"""Returns, baselines and advantage normalisation: exact values on small tables."""

from __future__ import annotations

import pytest
import torch
from tokengym.agents.returns import (
    batch_baseline,
    broadcast_returns,
    discounted_returns,
    normalize,
    returns,
)

R = torch.tensor([[1.0, 0.0, 2.0], [0.5, 0.5, 0.0]])


def test_discounted_returns() -> None:
    expected = torch.tensor([[1.0 + 0.5 * 0 + 0.25 * 2, 0.0 + 0.5 * 2, 2.0], [0.75, 0.5, 0.0]])
    torch.testing.assert_close(discounted_returns(R, 0.5), expected)


def test_broadcast_returns_are_the_discounted_total_on_every_step() -> None:
    expected = torch.tensor([[1.5, 1.5, 1.5], [0.75, 0.75, 0.75]])
    torch.testing.assert_close(broadcast_returns(R, 0.5), expected)
    torch.testing.assert_close(broadcast_returns(R, 1.0)[:, 0], R.sum(1))


def test_returns_rejects_unknown_credit() -> None:
    with pytest.raises(ValueError, match="credit='x' is invalid; expected one of"):
        returns(R, 1.0, "x")


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
