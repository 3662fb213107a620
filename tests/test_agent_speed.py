"""Question 7's agent part: each custom agent against its policy's own limit."""

from __future__ import annotations

import pytest
from tokengym.bench import agent_speed


@pytest.mark.slow
def test_each_agent_is_measured_against_its_policys_limit() -> None:
    limits = agent_speed.measure_limits(("reinforce", "supervised"), {"task": "copy"}, 3, 1)
    assert [p.agent for p in limits] == ["reinforce", "supervised"]
    reinforce, supervised = limits
    r, t = reinforce.rollout_tokens_per_second, reinforce.update_tokens_per_second
    assert reinforce.limit_tokens_per_second == pytest.approx(1 / (1 / r + 1 / t))
    assert supervised.rollout_tokens_per_second is None  # no rollout: the update is the limit
    assert supervised.limit_tokens_per_second == pytest.approx(supervised.update_tokens_per_second)
    for p in limits:
        assert p.share == pytest.approx(p.tokens_per_second / p.limit_tokens_per_second)
        assert (
            p.share > 0
            and p.cpu_share > 0
            and p.wall_seconds > 0
            and p.cpu_seconds > 0
            and p.repeats == 1
        )
    table = agent_speed.limit_table(limits)
    assert table.splitlines()[2].startswith("| reinforce | ") and "| supervised | " in table


def test_sb3_agents_have_no_limit_here() -> None:
    with pytest.raises(ValueError, match=r"agents=\['ppo'\] are invalid"):
        agent_speed.measure_limits(("ppo",), {"task": "copy"}, 3, 1)


def test_overheads_time_both_sides() -> None:
    from tokengym.bench import agent_overheads

    pytest.importorskip("tensorboard")
    evaluation = agent_overheads.evaluation(repeats=1)
    assert sorted(evaluation) == ["gru", "transformer"]
    assert all(w > 0 and c >= 0 for v in evaluation.values() for w, c in v.values())
    assert sorted(agent_overheads.tensorboard(repeats=1, lines=3, keys=2)) == [1, 10]


def test_a_timed_run_spends_its_budget_past_the_target_success() -> None:
    # REINFORCE passes 0.9 on target at its 10th update: a run that stopped there would see
    # fewer episodes than the limit measurement (measure_limits raises when they differ).
    (limit,) = agent_speed.measure_limits(("reinforce",), {"task": "target"}, 20, 1)
    assert limit.share > 0
