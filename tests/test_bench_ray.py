"""The suite on Ray (``--executor ray``): the local executor's rows; a dead worker costs one run.

The first lets the command start (and stop) its own local Ray instance, on every CPU; the second
starts one on 2 CPUs. Both take 25 to 40 s on 2 busy cores, 12 of them starting and stopping Ray.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ray", reason="needs the ray extra: pip install -e '.[ray]'")

import ray
from tokengym.bench import runner
from tokengym.bench.__main__ import main
from tokengym.bench.run_spec import RunSpec
from tokengym.bench.suites import SUITES

pytestmark = pytest.mark.ray

SMOKE = SUITES["smoke"]
ONLY = ("sl-vs-rl", "credit")


def _run(out: Path, *flags: str, status: int = 0) -> None:
    argv = ["run", "--suite", "smoke", "--out", str(out), "--no-progress", *flags]
    assert main([*argv, *(a for key in ONLY for a in ("--only", key))]) == status


def _reproducible(row: dict[str, Any]) -> dict[str, Any]:
    """A row without the numbers that measure time or describe the machine."""
    kept = {k: v for k, v in row.items() if k not in runner.VARYING_KEYS}
    kept["curve"] = [{k: v for k, v in p.items() if k != "train_seconds"} for p in row["curve"]]
    return kept


@pytest.fixture(scope="module")
def local_rows(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    out = tmp_path_factory.mktemp("local")
    _run(out)
    return {r["run_id"]: _reproducible(r) for r in runner.read_rows(out)}


def test_ray_executor_gives_the_local_rows(
    local_rows: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    assert not ray.is_initialized()
    _run(tmp_path, "--executor", "ray")  # starts a local instance, and shuts it down
    assert not ray.is_initialized()
    rows = runner.read_rows(tmp_path)
    assert sorted(r["run_id"] for r in rows) == sorted(s.run_id for s in runner.select(SMOKE, ONLY))
    assert {r["run_id"]: _reproducible(r) for r in rows} == local_rows
    assert all(r["status"] == "ok" for r in rows)


@pytest.fixture
def crash_once(tmp_path: Path) -> Iterator[Path]:
    """A Ray instance (2 CPUs) whose workers kill themselves, once, when the run whose id is
    written in the yielded file starts: a test-only patch of ``rows._train``, installed in
    every worker by Ray's ``worker_process_setup_hook``."""
    order = tmp_path / "crash_run_id"

    def install() -> None:  # a closure: Ray pickles it by value into each worker
        from tokengym.bench import rows as worker_runner

        train = worker_runner._train

        def train_or_die(
            spec: RunSpec, out: Path, progress: bool, device: str = "cpu"
        ) -> list[dict[str, float | None]]:
            if order.exists() and order.read_text() == spec.run_id:
                order.unlink()  # once: the resumed run trains
                os._exit(1)
            return train(spec, out, progress, device)

        worker_runner._train = train_or_die

    runtime_env = {"worker_process_setup_hook": install}
    ray.init(num_cpus=2, include_dashboard=False, runtime_env=runtime_env, log_to_driver=False)
    yield order
    ray.shutdown()


def test_a_dead_worker_is_a_failed_row_and_resume_reruns_only_it(
    local_rows: dict[str, dict[str, Any]], crash_once: Path, tmp_path: Path
) -> None:
    specs = runner.select(SMOKE, ONLY)
    victim = specs[3].run_id
    crash_once.write_text(victim)
    out = tmp_path / "out"
    _run(out, "--executor", "ray", status=1)  # uses the test's instance, leaves it running
    assert ray.is_initialized() and not crash_once.exists()
    first = runner.read_rows(out)
    assert sorted(r["run_id"] for r in first) == sorted(s.run_id for s in specs)
    failed = [r for r in first if r["status"] != "ok"]
    assert [(r["run_id"], r["status"]) for r in failed] == [(victim, "failed")]
    assert failed[0]["error"].startswith("WorkerCrashedError: ")
    ok = {r["run_id"]: _reproducible(r) for r in first if r["status"] == "ok"}
    assert ok == {k: v for k, v in local_rows.items() if k != victim}

    _run(out, "--executor", "ray")  # resume: only the failed run trains again
    rows = runner.read_rows(out)
    assert rows[: len(first)] == first and len(rows) == len(first) + 1
    assert (rows[-1]["run_id"], rows[-1]["status"]) == (victim, "ok")
    assert _reproducible(rows[-1]) == local_rows[victim]
