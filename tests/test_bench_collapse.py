"""Collapse diagnostics in benchmark rows: curve points record them, the flags quote them."""

from __future__ import annotations

from typing import Any

from tokengym.bench import findings
from tokengym.bench.rows import curve

EVAL = {"charts/episodes": 64.0, "charts/tokens": 128.0, "charts/train_seconds": 1.5}


def test_curve_points_record_the_diagnostics_where_a_line_has_them() -> None:
    lines = [
        {"step": 1, "losses/entropy": 0.7, "diagnostics/zero_advantage_share": 0.5},  # no eval
        {"step": 2, **EVAL, "eval/greedy_success": 0.25, "losses/entropy": 0.7,
         "diagnostics/entropy": 0.6, "diagnostics/zero_advantage_share": 0.875},
        {"step": 3, **EVAL, "eval/greedy_success": 0.5, "losses/entropy": 0.4},  # an older run
        {"step": 4, **EVAL, "eval/greedy_success": 0.5, "diagnostics/zero_advantage_share": None},
    ]  # fmt: skip
    points = curve(lines)
    assert [p["step"] for p in points] == [2.0, 3.0, 4.0]
    assert [p.get("entropy") for p in points] == [0.6, 0.4, None]
    assert [p.get("zero_advantage_share") for p in points] == [0.875, None, None]


def _row(seed: int, successes: list[float], shares: list[float]) -> dict[str, Any]:
    points = [{"success": s, "zero_advantage_share": z} for s, z in zip(successes, shares)]
    return {"spec": {"seed": seed}, "threshold": 0.9, "curve": points}


def test_the_collapse_flag_quotes_the_late_zero_advantage_share_of_the_collapsed_seeds() -> None:
    stalled = _row(4, [0.0, 0.25, 0.25, 0.25], [0.5, 0.5, 0.75, 0.8125])  # late mean 0.78125
    stuck = _row(1, [0.0, 0.19, 0.19, 0.19], [0.0, 0.0, 0.96, 0.96])
    learning = _row(2, [0.0, 0.25, 0.5, 0.75], [0.1, 0.1, 0.1, 0.1])  # not flagged, not quoted
    assert findings.late_zero_advantage_share(stalled) == 0.78125
    assert findings.collapse_lines({"rloo": [stalled, learning, stuck]}) == [
        "rloo: 2/3 seeds collapsed (seeds 1, 4; zero-advantage share 0.78-0.96 over the last half)"
    ]
    assert findings.collapse_lines({"rloo": [stalled]}) == [
        "rloo: 1/1 seeds collapsed (seeds 4; zero-advantage share 0.78 over the last half)"
    ]
