"""The two-stage suites: tuning grid and picks, the warm start, collapse flags (no training)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from tokengym.bench import findings, tuning
from tokengym.bench.suites import (
    LADDER,
    SUITES,
    TUNING_SEEDS,
    WARM_TASK,
    RunSpec,
    _prompts,
    disjoint_task,
)


def _row(spec: RunSpec, successes: list[float], **point: float) -> dict[str, Any]:
    curve = [{"success": s, **point} for s in successes]
    return {"run_id": spec.run_id, "spec": {"seed": spec.seed}, "threshold": 0.9, "curve": curve}


def test_a_collapsed_run_is_flagged_and_a_healthy_one_is_not() -> None:
    spec = RunSpec("reinforce", LADDER["1-2"])
    stalled = _row(spec, [0.0, 0.19, 0.25, 0.25, 0.25, 0.25])
    learning = _row(spec, [0.0, 0.19, 0.25, 0.44, 0.56, 0.69])  # below 0.9, still moving
    solved = _row(spec, [0.0, 0.5, 1.0, 1.0, 1.0, 1.0])  # flat at the top: done, not collapsed
    entropic = _row(spec, [0.0, 0.25, 0.25, 0.25], entropy=0.8)  # flat but still exploring
    assert [findings.collapsed(r) for r in (stalled, learning, solved, entropic)] == [
        True, False, False, False,
    ]  # fmt: skip
    arms = {"final": [stalled, learning]}
    assert findings.collapse_lines(arms) == ["final: 1/2 seeds collapsed (seeds 0)"]


def test_tuning_points_spend_the_same_budget_and_the_pick_is_the_best_iqm() -> None:
    t = tuning.Tuning("final", RunSpec("reinforce", LADDER["1-2"]), (1e-3, 3e-3), (64, 512),
                      25_600, (900, 901))  # fmt: skip
    points = t.points()
    assert [(p.lr, p.batch_size, p.iterations, p.eval_every) for p in points] == [
        (1e-3, 64, 400, 20), (1e-3, 512, 50, 2), (3e-3, 64, 400, 20), (3e-3, 512, 50, 2),
    ]  # fmt: skip
    assert {s.seed for s in t.specs()} == {900, 901} and len(t.specs()) == 8
    score = {points[2]: 0.8}  # lr 3e-3 at 64 per update is the best
    rows = {s.run_id: _row(s, [score.get(replace(s, seed=0), 0.1)]) for s in t.specs()}
    assert tuning.pick(t, rows) == points[2]
    del rows[t.specs()[0].run_id]
    assert tuning.pick(t, rows) is None  # stage 2 waits for every tuning run
    dpo = tuning.Tuning("dpo", RunSpec("dpo", LADDER["1-2"], group_size=4), (1e-3,), (256,),
                        25_600, (900,))  # fmt: skip
    assert [(p.batch_size, p.iterations) for p in dpo.points()] == [(64, 100)]


def test_the_warm_start_trains_on_prompts_disjoint_from_the_rl_prompts() -> None:
    sl = disjoint_task(WARM_TASK)
    assert not _prompts(sl) & _prompts(WARM_TASK)
    assert dict(sl)["train_size"] == 64


@pytest.mark.parametrize("name", ["quick", "full"])
def test_stage_two_comes_from_the_picks_on_unreported_seeds(name: str) -> None:
    suite = SUITES[name]
    first = suite.resolve({})
    assert [q.key for q in first.questions][:5] == list(suite.first_keys())
    rows = {}
    for t in suite.staged.tunings:
        best = t.points()[-1]
        for s in t.specs():
            rows[s.run_id] = _row(s, [0.9 if replace(s, seed=best.seed) == best else 0.1])
    resolved = suite.resolve(rows)
    keys = [q.key for q in resolved.questions]
    assert {"sl-vs-rl", "ladder", "gamma", "explore"} <= set(keys)
    q1 = next(q for q in resolved.questions if q.key == "sl-vs-rl")
    lrs = {s.agent: s.lr for s in q1.specs}
    assert lrs == {t.base.agent: t.points()[-1].lr for t in suite.staged.tunings}
    warm_ids = {s.run_id for s in suite.staged.warm}
    explore = next(q for q in resolved.questions if q.key == "explore")
    assert {s.init for s in explore.specs} == {None, *warm_ids}
    tuning_seeds = {s.seed for t in suite.staged.tunings for s in t.specs()}
    for q in resolved.questions:
        if not q.key.startswith("tune-"):
            assert not {s.seed for s in q.specs} & tuning_seeds, q.key
    if name == "full":
        assert tuning_seeds == set(TUNING_SEEDS)
        for q in resolved.questions:
            if q.key in ("sl-vs-rl", "ladder", "gamma", "explore"):
                per_arm = {}
                for s in q.specs:
                    per_arm.setdefault((s.agent, s.task, s.credit, s.gamma, s.init is None,
                                        s.entropy_coef, s.kl_coef), set()).add(s.seed)  # fmt: skip
                assert min(len(v) for v in per_arm.values()) >= 20, q.key


def test_new_fields_at_their_defaults_keep_the_committed_run_ids() -> None:
    spec = RunSpec("reinforce", LADDER["1-2"])
    assert spec.run_id != replace(spec, entropy_coef=0.01).run_id
    assert replace(spec, init=None, kl_coef=0.0).run_id == spec.run_id


def test_a_staged_suite_runs_both_stages_and_resumes(tmp_path) -> None:
    from tokengym.bench import report, runner
    from tokengym.bench.__main__ import run
    from tokengym.bench.suites import Suite, make_staged

    suite = Suite("tiny", (), staged=make_staged(128, (0,), (1e-3, 3e-3), (64,), 2, (900,)))
    keys = [k for k in suite.keys if k != "throughput"]
    text = run(suite, tmp_path, keys, progress=False)
    rows = runner.read_rows(tmp_path)
    assert all(r["status"] == "ok" for r in rows), [r.get("error") for r in rows]
    # stage 1: 4 arms x 2 lrs + 1 warm start; stage 2: Q1 3, ladder 5 more (its 1-2 final is
    # Q1's REINFORCE), gamma 2 more (gamma 1 is the ladder's 3-4 final), explore: 1 more from
    # scratch + 4 warm; Q2b (held out) reads the ladder's runs
    assert len(rows) == 9 + 3 + 5 + 2 + 1 + 4  # Q2b: the ladder's runs, scored held out
    # REINFORCE's stage-2 runs score the test prompts too: ladder 6, gamma 2, explore 1 + 3 warm
    scored = [r for r in rows if r["spec"]["heldout"]]
    assert len(scored) == 12 and all(r["spec"]["agent"] == "reinforce" for r in scored)
    assert all(len(r["curve_heldout"]) == len(r["curve"]) for r in scored)
    suite_record, ok_rows, _ = report.load(tmp_path)
    held = next(q for q in suite_record["questions"] if q["key"] == "ladder-test")
    for runs in report.group(held, ok_rows).values():  # Q2b's numbers are the held-out curve's
        for r in runs:
            assert r["final_success"] == ok_rows[r["run_id"]]["curve_heldout"][-1]["success"]
    warm = [r for r in rows if r["spec"]["init"] is not None]
    assert (
        len(warm) == 4 and (tmp_path / "runs" / warm[0]["spec"]["init"] / "checkpoint.pt").exists()
    )
    for heading in ("## Findings", "## Tuned settings", "## Tuning: final", "## Q4. Exploration"):
        assert heading in text
    assert text.count("(pick)** |") == 4 and (tmp_path / "ladder-test_gap.png").exists()
    assert [q["key"] for q in report.load(tmp_path)[0]["questions"]][-5:] == [
        "sl-vs-rl", "ladder", "ladder-test", "gamma", "explore",
    ]  # fmt: skip
    run(suite, tmp_path, keys, progress=False)  # resume: nothing left to run
    assert len(runner.read_rows(tmp_path)) == len(rows)
