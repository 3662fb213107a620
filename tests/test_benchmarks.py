"""The benchmark suite end to end on the `smoke` suite: rows, resume, report, plots, determinism.

Speed is never asserted; every number except training seconds must repeat exactly (CPU).
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import matplotlib.image
import pytest
from tokengym.agents import SB3_AGENTS
from tokengym.bench import report, runner
from tokengym.bench.__main__ import main
from tokengym.bench.run_spec import RunSpec, canonical, task
from tokengym.bench.suites import SUITES, Question

from tokengym._requires import install_hint

SMOKE = SUITES["smoke"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _run(out: Path, *only: str) -> None:
    argv = ["run", "--suite", "smoke", "--out", str(out), "--no-progress"]
    argv += [a for key in only for a in ("--only", key)]
    assert main(argv) == 0


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("smoke")
    _run(out)
    return out


def _reproducible(row: dict[str, Any]) -> dict[str, Any]:
    """A row without the numbers that measure time."""
    kept = {k: v for k, v in row.items() if k not in runner.VARYING_KEYS}
    kept["curve"] = [{k: v for k, v in p.items() if k != "train_seconds"} for p in row["curve"]]
    return kept


def test_rows_record_every_run_with_spec_versions_and_curve(results: Path) -> None:
    rows = runner.read_rows(results)
    specs = runner.select(SMOKE)
    assert [r["run_id"] for r in rows] == [s.run_id for s in specs]
    # Q1: supervised, REINFORCE (final credit), dpo; Q2: 3 more credit modes; Q5: 4 SB3
    # agents (its REINFORCE run is Q1's: 2 updates either way); 2 seeds each
    assert len(specs) == 2 * (3 + 3 + 4)
    for row, spec in zip(rows, specs):
        assert row["status"] == "ok", row.get("error")
        assert report.spec_of(row) == spec  # the row's spec reads back whole
        assert {"tokengym", "torch", "python", "platform", "machine", "versions"} <= set(row)
        assert row["final_success"] == row["curve"][-1]["success"]
        assert (row["episodes_to_threshold"] is None) == (row["seconds_to_threshold"] is None)
        if spec.agent not in SB3_AGENTS:
            assert len(row["curve"]) == spec.iterations // spec.eval_every
            per_prompt = spec.group_size if spec.agent == "dpo" else 1  # DPO: k per prompt
            assert row["episodes"] == spec.iterations * spec.batch_size * per_prompt
        else:  # SB3 collects whole rollouts: at least the budget
            assert row["tokens"] >= spec.total_timesteps
            assert row["curve"][0]["tokens"] >= spec.eval_every
    assert not list(results.glob("runs/*/checkpoint.pt"))


def test_report_has_a_table_per_question_and_valid_pngs(results: Path) -> None:
    text = (results / "report.md").read_text()
    headings = ("## Q1. Supervised vs REINFORCE vs DPO", "## Q2. Credit", "## Q5. REINFORCE vs SB3")
    for heading in (*headings, "## Q7. Throughput", "## Conclusions (generated"):
        assert heading in text
    tables = report.tables(results)
    assert list(tables) == ["sl-vs-rl", "credit", "sb3"]
    assert [line.split(" | ")[0] for line in tables["credit"].splitlines()[2:]] == [
        "| final",
        "| every_token",
        "| dense",
        "| progress",
    ]
    assert "| supervised | 2 |" in tables["sl-vs-rl"] and "| dpo | 2 |" in text
    assert text.count("**Finding.** Q") == 3
    for name in ("curves_sl-vs-rl.png", "curves_credit.png", "curves_sb3.png", "throughput.png"):
        assert f"]({name})" in text
        assert (results / name).read_bytes()[:8] == PNG_SIGNATURE
        height, width, _ = matplotlib.image.imread(results / name).shape
        assert height > 100 and width > 100


def test_throughput_section_measures_env_and_agents(results: Path) -> None:
    record = json.loads((results / "throughput.json").read_text())
    assert [r["name"] for r in record["env"]] == [
        "TokenGen-v0 (gym.make)",
        "CartPole-v1 (gym.make)",
        "TokenGen native vector, N=8",
        "TokenGen SyncVectorEnv, N=8",
    ]
    assert all(r["steps_per_second"] > 0 and len(r["repeats"]) == 1 for r in record["env"])
    assert [a["agent"] for a in record["agents"]] == list(SMOKE.agent_throughput)
    assert all(a["tokens_per_second"] > 0 for a in record["agents"])
    custom = [a for a in SMOKE.agent_throughput if a in ("reinforce", "supervised", "dpo")]
    assert [p["agent"] for p in record["limits"]] == custom
    assert all(p["share"] > 0 for p in record["limits"])
    text = (results / "report.md").read_text()
    assert "| TokenGen-v0 (gym.make) |" in text and "native vector / SyncVectorEnv:" in text


def test_throughput_section_reports_scaling_against_n_and_vocabulary(results: Path) -> None:
    record = json.loads((results / "throughput.json").read_text())["env_scaling"]
    assert list(record["scaling"]["num_envs"]) == ["N=1", "N=8"]  # the smoke suite's sizes
    assert list(record["scaling"]["vocab"]) == ["V=char", "V=300"]
    goals = record["goals"]
    assert list(goals["results"]) == [
        "native vector, char, N=8",
        "native vector, BPE 300, N=8",
        "bare numpy batch, char, N=8",
        "TokenGen-v0 at its defaults (gym.make)",
        "CartPole-v1 (gym.make)",
        "native vector, char, terminal, N=8",
        "native vector, char, terminal, numeric infos, N=8",
        "native vector, char, terminal, numeric infos, N=2",
        "bare numpy batch, char, N=2",
        "TokenGen-v0, dense reward (gym.make)",
    ]
    measured = [*record["scaling"]["num_envs"].values(), *record["scaling"]["vocab"].values()]
    for r in [*measured, *goals["results"].values()]:
        assert r["steps_per_second"] > 0 and r["cpu_seconds"] >= 0 and len(r["repeats"]) == 1
    rate = {name: r["steps_per_second"] for name, r in goals["results"].items()}
    ratio = goals["ratios"]["TokenGen-v0 / CartPole-v1 (gym.make, goal >= 3)"]
    assert ratio == rate["TokenGen-v0 at its defaults (gym.make)"] / rate["CartPole-v1 (gym.make)"]
    dense = goals["ratios"]["TokenGen-v0 with the dense reward / CartPole-v1 (gym.make)"]
    assert dense == rate["TokenGen-v0, dense reward (gym.make)"] / rate["CartPole-v1 (gym.make)"]
    same_work = goals["ratios"]["the same at N=2 (goal >= 0.5)"]
    assert same_work == (
        rate["native vector, char, terminal, numeric infos, N=2"]
        / rate["bare numpy batch, char, N=2"]
    )
    text = (results / "report.md").read_text()
    assert "Native vector env steps/s against the number of sub-envs N" in text
    assert "| N=8 |" in text and "| V=300 |" in text and "| bare numpy batch, char, N=8 |" in text
    assert f"- TokenGen-v0 / CartPole-v1 (gym.make, goal >= 3): {ratio:.2f}x" in text


def test_rerun_skips_finished_runs_and_report_rebuilds(results: Path) -> None:
    before = (results / "runs.jsonl").read_text()
    assert runner.run_suite(SMOKE, results, progress=False) == []
    assert (results / "runs.jsonl").read_text() == before
    expected = (results / "report.md").read_text()
    (results / "report.md").unlink()
    (results / "curves_credit.png").unlink()
    assert main(["report", str(results)]) == 0
    assert (results / "report.md").read_text() == expected
    assert (results / "curves_credit.png").read_bytes()[:8] == PNG_SIGNATURE


@pytest.mark.slow
def test_same_seeds_give_the_same_numbers(results: Path, tmp_path: Path) -> None:
    _run(tmp_path, "sl-vs-rl", "credit", "sb3")
    first = [_reproducible(r) for r in runner.read_rows(results)]
    second = [_reproducible(r) for r in runner.read_rows(tmp_path)]
    assert second == first
    assert report.tables(tmp_path, with_time=False) == report.tables(results, with_time=False)


def test_two_worker_processes_give_the_same_rows(results: Path, tmp_path: Path) -> None:
    argv = ["run", "--suite", "smoke", "--out", str(tmp_path), "--no-progress", "--workers", "2"]
    assert main([*argv, "--only", "sl-vs-rl", "--only", "credit"]) == 0
    parallel = {r["run_id"]: _reproducible(r) for r in runner.read_rows(tmp_path)}
    serial = {r["run_id"]: _reproducible(r) for r in runner.read_rows(results)}
    assert parallel and parallel == {k: serial[k] for k in parallel}


def test_only_filters_questions(tmp_path: Path) -> None:
    _run(tmp_path, "throughput")
    assert runner.read_rows(tmp_path) == []
    assert (tmp_path / "throughput.json").exists() and (tmp_path / "report.md").exists()
    with pytest.raises(SystemExit):
        main(["run", "--suite", "smoke", "--only", "nope", "--out", str(tmp_path)])


def test_a_folder_of_another_suite_is_refused(results: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--suite", "quick", "--out", str(results), "--no-progress"])
    assert exit_info.value.code == 2
    assert f"out={str(results)!r} holds the results of suite 'smoke'" in capsys.readouterr().err
    assert json.loads((results / "suite.json").read_text())["name"] == "smoke"


def test_run_spec_validation_and_stable_ids() -> None:
    spec = RunSpec("reinforce", task("target", target="abc"))
    assert spec.run_id == RunSpec("reinforce", task("target", target="abc")).run_id
    assert spec.run_id != RunSpec("reinforce", task("target", target="abc"), seed=1).run_id
    assert spec.credit_mode == "final" and spec.task_name == "target(target=abc)"
    with pytest.raises(ValueError, match=r"^baseline='rloo2' is invalid; expected one of"):
        RunSpec("reinforce", task("target"), baseline="rloo2")
    with pytest.raises(ValueError, match=r"^gamma=1.5 is invalid; expected a finite number in"):
        RunSpec("reinforce", task("target"), gamma=1.5)
    with pytest.raises(ValueError, match=r"^total_timesteps=5 is invalid for agent 'reinforce'"):
        RunSpec("reinforce", task("target"), total_timesteps=5)
    assert spec.run_id == RunSpec("reinforce", task("target", target="abc"), heldout=False).run_id
    assert RunSpec("reinforce", task("target"), heldout=True).train_config(Path("x")).eval_heldout
    wrong_split = "^heldout=True is invalid for agent 'reinforce' with eval_split 'test'; "
    with pytest.raises(ValueError, match=wrong_split + "expected a custom agent evaluated on"):
        RunSpec("reinforce", task("target"), heldout=True, eval_split="test")
    with pytest.raises(ValueError, match=r"^question 'q' reads held-out curves; expected specs"):
        Question("q", "Q", ("seed",), (spec,), heldout=True)


def test_the_suite_reaches_the_agents_by_static_imports_only() -> None:
    folders = [Path(runner.__file__).parent, Path(runner.__file__).parent.parent / "agents"]
    sources = [p.read_text() for folder in folders for p in folder.glob("**/*.py")]
    assert sources
    for pattern in (r"import_module", r"tokengym_agents|tokengym_benchmarks", r"^\s*import agents"):
        assert not any(re.search(pattern, s, re.MULTILINE) for s in sources), pattern


def test_each_run_is_the_train_config_of_its_spec(tmp_path: Path) -> None:
    spec = RunSpec("reinforce", task("target", target="abc"), baseline="mean", seed=3)
    config = spec.train_config(tmp_path)
    assert (config.agent, config.task, dict(config.env_kwargs)) == (
        "reinforce",
        "target",
        {"target": "abc"},
    )
    assert (config.iterations, config.batch_size, config.group_size, config.seed) == (80, 64, 1, 3)
    assert (config.threads, config.device, config.checkpoint, config.out) == (
        1,
        "cpu",
        False,
        str(tmp_path),
    )
    sb3 = RunSpec("ppo", task("target"), iterations=None, total_timesteps=256).train_config(
        tmp_path
    )
    assert (sb3.total_timesteps, sb3.log_every, sb3.iterations) == (256, 256, None)


@pytest.mark.parametrize(
    ("change", "credit"),
    [
        ({"credit": "trajectory"}, "final"),  # G_0 = R = G_t at gamma 1
        ({"credit": "trajectory", "gamma": 0.9}, "trajectory"),
        ({"credit": "env"}, "final"),  # reward-to-go of the terminal reward
        ({"credit": "env", "gamma": 0.5}, "final"),
        ({"credit": "env", "reward_mode": "dense"}, "env"),
        ({"credit": "every_token"}, "every_token"),
    ],
)
def test_canonical_names_the_credit_a_spec_equals(change: dict, credit: str) -> None:
    assert canonical(RunSpec("reinforce", task("copy"), **change)).credit == credit


def test_no_question_of_any_suite_has_two_arms_that_are_the_same_runs() -> None:
    for suite in SUITES.values():
        for question in suite.questions:
            keys = [canonical(s) for s in question.specs]
            assert len(set(keys)) == len(keys), question.key
    gamma = next(q for q in SUITES["full"].resolve({}).questions if q.key == "baseline")
    assert {s.baseline for s in gamma.specs} == {"none", "mean", "rloo", "value"}
    assert all(len({s.seed for s in q.specs if s.agent == q.specs[0].agent}) >= 10
               for q in SUITES["full"].questions)  # fmt: skip


def _row(label_seed: tuple[str, int], successes: list[float]) -> dict[str, Any]:
    agent, seed = label_seed
    curve = [
        {"episodes": 64.0 * (i + 1), "tokens": 128.0 * (i + 1), "train_seconds": 0.1 * (i + 1),
         "success": s, "reward": s, "step": float(i + 1)}
        for i, s in enumerate(successes)
    ]  # fmt: skip
    hit = next((p for p in curve if p["success"] >= 0.9), None)
    spec = asdict(RunSpec(agent, task("copy"), seed=seed))
    return {
        "spec": spec, "curve": curve, "final_success": successes[-1], "threshold": 0.9,
        "episodes": curve[-1]["episodes"], "tokens": curve[-1]["tokens"],
        "train_seconds": curve[-1]["train_seconds"],
        "episodes_to_threshold": hit and hit["episodes"],
        "tokens_to_threshold": hit and hit["tokens"],
        "seconds_to_threshold": hit and hit["train_seconds"],
    }  # fmt: skip


def test_conclusions_are_generated_from_the_numbers() -> None:
    fast = [_row(("supervised", s), [0.5, 1.0, 1.0, 1.0]) for s in range(4)]
    slow = [_row(("reinforce", s), [0.0, 0.0, 0.5, 1.0]) for s in range(4)]
    mixed = [_row(("dpo", s), [0.0, 0.0, 0.5, 1.0] if s % 2 else [0.5, 1.0, 1.0, 1.0])
             for s in range(4)]  # fmt: skip
    two = report.conclusion("Q1. x", {"supervised": fast, "reinforce": slow})
    assert two == (
        "Q1: supervised has a higher mean greedy success over training than reinforce "
        "(IQM 0.88 [0.88, 0.88] vs 0.38 [0.38, 0.38]; CIs do not overlap; "
        "P(supervised better) = 1.00 [1.00, 1.00])."
    )
    three = report.conclusion("Q2. y", {"reinforce": slow, "dpo": mixed, "supervised": fast})
    assert three.startswith(
        "Q2: best mean greedy success over training: supervised, IQM 0.88 [0.88, 0.88]; "
    )
    assert "below it: reinforce 0.38 [0.38, 0.38]" in three
    assert "Against the next best: " in three and "P(supervised better) = 0.75" in three
    table = report.question_table({"supervised": fast, "reinforce": slow}, with_time=False)
    assert (
        "| supervised | 4 | 1.00 [1.00, 1.00] | 0.88 [0.88, 0.88] | 128 [128, 128] (4/4 reached)"
        in table
    )
    assert (
        "| reinforce | 4 | 1.00 [1.00, 1.00] | 0.38 [0.38, 0.38] | 256 [256, 256] (4/4 reached)"
        in table
    )
    assert report.identical_arms({"a": slow, "b": list(slow), "c": fast}) == [("a", "b")]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--address", "auto"), "address='auto' is invalid with executor='local'; expected 'ray'"),
        (("--gpus-per-run", "1"), "gpus_per_run=1.0 is invalid with executor='local'; expected "
         "'ray'"),
        (("--executor", "ray", "--workers", "2"), "workers=2 is invalid with executor='ray'; "
         "expected 1 (Ray runs as many at once as the CPUs allow; see --cpus-per-run)"),
        (("--executor", "ray", "--cpus-per-run", "0"),
         "cpus_per_run=0.0 is invalid; expected a finite number > 0.0"),
        (("--executor", "ray", "--gpus-per-run", "1.5"),
         "gpus_per_run=1.5 is invalid; expected a whole number above 1 (Ray)"),
    ],
)  # fmt: skip
def test_executor_flags_are_checked_before_any_run(
    flags: tuple[str, ...], message: str, tmp_path: Path, capsys
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--suite", "smoke", "--out", str(tmp_path), *flags])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"tokengym-bench: error: {message}"
    assert not (tmp_path / "runs.jsonl").exists()


def test_executor_ray_without_ray_prints_the_pip_line(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n: None if n == "ray" else find_spec(n))
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--suite", "smoke", "--out", str(tmp_path), "--executor", "ray"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.splitlines()[-1]
    pip_line = f"tokengym.bench.ray_executor needs ray: {install_hint('ray')}"
    assert error == f"tokengym-bench: error: {pip_line}"


def test_the_local_executor_runs_without_ray(tmp_path: Path) -> None:
    code = f"""
import sys
sys.modules["ray"] = None  # "import ray" fails, as without the ray extra
from tokengym.bench.__main__ import main
main(["run", "--suite", "smoke", "--only", "sl-vs-rl", "--out", {str(tmp_path)!r}, "--no-progress"])
"""
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    rows = runner.read_rows(tmp_path)
    assert [r["status"] for r in rows] == ["ok"] * len(runner.select(SMOKE, ["sl-vs-rl"]))
