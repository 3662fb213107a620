"""The defaults check: one JSON line per run, resume without training, the Markdown table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tokengym.bench import defaults_check

from tokengym.errors import ConfigError


def test_rows_resume_and_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tiny = {"iterations": 2, "eval_every": 1}
    rows = defaults_check.run_check(
        tmp_path, seeds=(3,), tasks=("parity",), agents=("reinforce", "dpo"), overrides=tiny
    )
    lines = (tmp_path / "runs.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == rows
    assert [(r["task"], r["agent"], r["seed"], r["overrides"]) for r in rows] == [
        ("parity", "reinforce", 3, tiny),
        ("parity", "dpo", 3, tiny),
    ]
    for row in rows:
        assert set(row) == {
            "task", "agent", "seed", "overrides", "reached", "updates", "wall_s", "cpu_s",
            "greedy_success", "settings",
        }  # fmt: skip
        assert row["reached"] == (row["greedy_success"] >= 0.9)
        assert row["updates"] == 2 or row["reached"]
        assert 1 <= row["updates"] <= 2 and row["wall_s"] > 0 and row["cpu_s"] > 0
        assert row["settings"]["iterations"] == 2
    assert rows[0]["settings"]["credit"] == "final"
    assert "credit" not in rows[1]["settings"]

    def no_training(*args: object) -> None:
        raise AssertionError("a run already in runs.jsonl trained again")

    monkeypatch.setattr(defaults_check, "train_one", no_training)
    again = defaults_check.run_check(
        tmp_path, seeds=(3,), tasks=("parity",), agents=("reinforce", "dpo"), overrides=tiny
    )
    assert again == rows
    assert len((tmp_path / "runs.jsonl").read_text().splitlines()) == 2

    fake = [
        {"task": "copy", "agent": "dpo", "reached": r, "wall_s": w, "cpu_s": c}
        for r, w, c in ((True, 60, 30), (False, 600, 300), (True, 120, 90))
    ]
    assert defaults_check.table(fake).splitlines() == [
        "| task | agent | seeds reaching 0.9 | median wall min | median CPU min |",
        "|---|---|---|---|---|",
        "| copy | dpo | 2/3 | 2.00 | 1.50 |",
    ]


def test_main_prints_the_table_and_names_bad_arguments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = defaults_check._config("addition", "reinforce", 0, {}, str(tmp_path / "run"))
    settings = defaults_check.settings_of(config)
    assert settings == {
        "lr": 1e-3, "batch_size": 512, "group_size": 1, "iterations": 5000, "eval_every": 10,
        "credit": "final", "baseline": "mean", "entropy_coef": 0.04,
    }  # fmt: skip
    row = {"task": "addition", "agent": "reinforce", "seed": 0, "overrides": {}}
    row |= {"reached": True, "updates": 40, "wall_s": 30.0, "cpu_s": 24.0, "settings": settings}
    older = row | {"settings": settings | {"credit": "every_token"}, "wall_s": 600.0}
    lines = [json.dumps(older), json.dumps(row), '{"task": "cut']  # older: other defaults
    (tmp_path / "runs.jsonl").write_text("\n".join(lines))
    argv = ["--out", str(tmp_path), "--seeds", "0", "--tasks", "addition"]
    assert defaults_check.main([*argv, "--agents", "reinforce"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[-1] == "| addition | reinforce | 1/1 | 0.50 | 0.40 |"
    assert "skipping a cut line" in err
    assert len((tmp_path / "runs.jsonl").read_text().splitlines()) == 3  # nothing trained
    assert defaults_check.parse_seeds("0-2,5") == (0, 1, 2, 5)
    assert defaults_check.parse_sets(["lr=0.003", "credit=final"]) == {
        "lr": 0.003,
        "credit": "final",
    }
    with pytest.raises(ConfigError, match=r"--seeds 'a-b' is invalid"):
        defaults_check.parse_seeds("a-b")
    assert defaults_check.main(["--out", str(tmp_path), "--tasks", "copyy"]) == 2
    assert "task 'copyy' is invalid" in capsys.readouterr().err
