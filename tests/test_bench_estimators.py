"""Any estimator of agents/advantages.py runs as a benchmark arm (RunSpec.estimator)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tokengym.bench.rows import run_spec
from tokengym.bench.run_spec import RunSpec, task

from tokengym.errors import ConfigError

COPY = task("copy", alphabet_size=4, min_length=1, max_length=2, train_size=12, test_size=8)
GRPO = (("scale_rewards", "group"),)
PPO = (("gae_lambda", 0.95), ("num_minibatches", 2), ("ppo_epochs", 2))


def test_a_grpo_arm_reaches_train_config_with_its_group(tmp_path: Path) -> None:
    spec = RunSpec("reinforce", COPY, baseline="group", group_size=4, estimator=GRPO)
    config = spec.train_config(tmp_path)
    assert (config.baseline, config.scale_rewards, config.group_size) == ("group", "group", 4)


def test_estimator_options_change_the_run_id_and_none_keep_it() -> None:
    plain = RunSpec("reinforce", COPY, baseline="value")
    assert RunSpec("reinforce", COPY, baseline="value", estimator=()).run_id == plain.run_id
    assert RunSpec("reinforce", COPY, baseline="value", estimator=PPO).run_id != plain.run_id


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            dict(agent="reinforce", estimator=(("lr_decay", 1),)),
            "estimator=(('lr_decay', 1),) is invalid; 'lr_decay' is not one of ('scale_rewards'",
        ),
        (
            dict(agent="supervised", estimator=GRPO),
            "estimator=(('scale_rewards', 'group'),) is invalid for agent 'supervised'; expected "
            "() (only reinforce reads it)",
        ),
    ],
)
def test_a_bad_estimator_option_is_refused(spec: dict, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        RunSpec(task=COPY, **spec)
    assert str(error.value).startswith(message)


def test_a_ppo_arm_trains_and_gives_an_ok_row(tmp_path: Path) -> None:
    spec = RunSpec(
        "reinforce", COPY, baseline="value", iterations=2, batch_size=16, eval_every=1,
        estimator=PPO,
    )  # fmt: skip
    row = run_spec(spec, tmp_path)
    assert row["status"] == "ok", row.get("error")
    assert [p["step"] for p in row["curve"]] == [1.0, 2.0]
