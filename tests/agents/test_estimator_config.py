"""The estimator options of TrainConfig: nonsensical combinations are errors naming the field."""

from __future__ import annotations

import pytest
from tokengym.agents.config import TrainConfig

from tokengym.errors import ConfigError

BAD = [
    (dict(gae_lambda=0.95), "gae_lambda=0.95 is invalid with baseline='mean'; GAE needs a critic"),
    (dict(scale_rewards="group"), "scale_rewards='group' is invalid with group_size=1"),
    (dict(clip_range=0.1), "clip_range=0.1 is not read with ppo_epochs=1"),
    (dict(num_minibatches=3, batch_size=8), "num_minibatches=3 is invalid with batch_size=8"),
    (dict(kl_estimator="k3"), "kl_estimator='k3', kl_in_reward=False are read with kl_coef > 0"),
    (dict(credit="distill"), "credit='distill' needs teacher=<checkpoint.pt>"),
    (dict(teacher="x.pt"), "teacher='x.pt' is read by credit='distill' only"),
    (
        dict(baseline="vine", credit="trajectory"),
        "baseline='vine' is invalid with credit='trajectory', kl_in_reward=False",
    ),
    (
        dict(baseline="vine", kl_coef=0.05, kl_in_reward=True),
        "baseline='vine' is invalid with credit='final', kl_in_reward=True",
    ),
    (dict(loss_agg_mode="sum"), "loss_agg_mode"),
    (
        dict(baseline="value", gae_lambda=0.9, credit="trajectory"),
        "gae_lambda=0.9 is invalid with credit='trajectory'",
    ),
]


@pytest.mark.parametrize(("fields", "message"), BAD)
def test_bad_estimator_options_are_errors(fields, message) -> None:
    with pytest.raises(ConfigError) as err:
        TrainConfig(agent="reinforce", task="copy", **fields)
    assert message in str(err.value)


def test_good_estimator_options_are_kept() -> None:
    c = TrainConfig(
        agent="reinforce",
        task="copy",
        baseline="value",
        gae_lambda=0.95,
        ppo_epochs=4,
        num_minibatches=4,
        clip_range=0.1,
        kl_coef=0.05,
        kl_estimator="k3",
        kl_in_reward=True,
        loss_agg_mode="token-mean",
    )
    assert (c.gae_lambda, c.ppo_epochs, c.clip_range, c.kl_estimator) == (0.95, 4, 0.1, "k3")
