"""The throughput benchmark runs end to end and writes its report (speed is not asserted)."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.__main__ import SUITES, main


def test_throughput_suite_writes_results_and_report(tmp_path: Path, monkeypatch) -> None:
    tiny = {"repeats": 1, "single_steps": 300, "num_envs": 8, "vector_steps": 3, "sync_steps": 2}
    monkeypatch.setitem(SUITES, "quick", tiny)
    assert main(["run", "--suite", "quick", "--out", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "throughput.json").read_text())
    names = [r["name"] for r in record["results"]]
    assert names == [
        "TokenGen-v0 (gym.make)",
        "CartPole-v1 (gym.make)",
        "TokenGen native vector, N=8",
        "TokenGen SyncVectorEnv, N=8",
    ]
    assert all(r["steps_per_second"] > 0 and len(r["repeats"]) == 1 for r in record["results"])
    report = (tmp_path / "report.md").read_text()
    assert "| TokenGen-v0 (gym.make) |" in report and "native vector / SyncVectorEnv:" in report
