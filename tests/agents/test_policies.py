"""Policies: shapes, incremental decoding equal to full recomputation, config validation."""

from __future__ import annotations

import pytest
import torch
from tokengym.agents.policies import (
    GRUConfig,
    TransformerConfig,
    TransformerPolicy,
    build_policy,
    masked_logits,
)


def test_forward_shape(policy_kind, make_policy) -> None:
    policy = make_policy(policy_kind, 9)
    assert policy(torch.zeros(3, 7, dtype=torch.long)).shape == (3, 7, 9)


def test_incremental_decoding_matches_full_forward(policy_kind, make_policy) -> None:
    policy = make_policy(policy_kind, 9).double()
    tokens = torch.randint(0, 9, (4, 12), generator=torch.Generator().manual_seed(0))
    full = policy.features(tokens)  # (B, T, D)
    rows = torch.arange(4)
    last = torch.tensor([2, 3, 5, 4])  # rows have prompts of different lengths
    feats, state = policy.prefill(tokens, last)
    torch.testing.assert_close(feats, full[rows, last], rtol=0, atol=1e-12)
    for t in range(1, 7):
        pos = last + t
        feats, state = policy.step(tokens[rows, pos], pos, state)
        torch.testing.assert_close(feats, full[rows, pos], rtol=0, atol=1e-12)


def test_masked_logits_give_zero_probability_without_nan() -> None:
    logits = torch.tensor([[1.0, 2.0, 3.0]])
    masked = masked_logits(logits, torch.tensor([[True, False, True]]))
    logp = masked.log_softmax(-1)
    assert logp.exp()[0, 1] == 0
    assert torch.isfinite((logp.exp() * logp).sum())


def test_value_head_only_when_asked() -> None:
    feats = torch.zeros(2, 128)
    with pytest.raises(RuntimeError, match="no value head"):
        build_policy(GRUConfig(5)).values(feats)
    assert build_policy(GRUConfig(5, value_head=True)).values(feats).shape == (2,)


def test_transformer_rejects_sequences_longer_than_max_len() -> None:
    policy = TransformerPolicy(TransformerConfig(5, max_len=4, d_model=8, n_heads=2))
    with pytest.raises(ValueError, match=r"exceeds TransformerConfig\.max_len=4"):
        policy(torch.zeros(1, 5, dtype=torch.long))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: GRUConfig(0), "GRUConfig.vocab_size=0 is invalid; expected an int >= 1"),
        (lambda: GRUConfig(5, hidden_size=-1), "GRUConfig.hidden_size=-1 is invalid"),
        (lambda: TransformerConfig(5, n_layers=0), "TransformerConfig.n_layers=0 is invalid"),
        (lambda: TransformerConfig(5, d_ff=-2), "TransformerConfig.d_ff=-2 is invalid"),
        (
            lambda: TransformerConfig(5, d_model=10, n_heads=4),
            "TransformerConfig.d_model=10 is not divisible by n_heads=4",
        ),
    ],
)
def test_config_validation(make, message) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_build_policy_rejects_unknown_config() -> None:
    with pytest.raises(TypeError, match="unknown policy config dict"):
        build_policy({})  # type: ignore[arg-type]
