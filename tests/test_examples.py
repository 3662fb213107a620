"""Every script of examples/ runs as documented, here with tiny budgets through its arguments."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def run_example(name: str, *args: str, cwd: Path) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, str(EXAMPLES / name), *args]
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout


def test_every_example_is_tested_here() -> None:
    tested = set(re.findall(r'"(\w+\.py)"', Path(__file__).read_text(encoding="utf-8")))
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested


@pytest.mark.slow
def test_train_api(tmp_path: Path) -> None:
    out = run_example(
        "train_api.py", "--iterations", "2", "--out", str(tmp_path / "run"), cwd=tmp_path
    )
    final, *lines = out.splitlines()  # train() prints its own final line first
    assert final.startswith("final eval/greedy_success=") and len(lines) == 2
    assert re.fullmatch(r"greedy success \d\.\d\d, stopped on budget", lines[0])
    assert re.fullmatch(r"2 metric rows; episodic return \d\.\d{3} -> \d\.\d{3}", lines[1])
    assert (tmp_path / "run" / "checkpoint.pt").is_file()


@pytest.mark.slow
def test_load_policy_trains_a_run_then_completes_prompts(tmp_path: Path) -> None:
    out = run_example("load_policy.py", "--train-iterations", "2", cwd=tmp_path)
    final, trained, *lines = out.splitlines()  # train()'s final line, then the script's
    assert final.startswith("final eval/greedy_success=")
    run = re.fullmatch(r"trained: stopped on budget, run folder (\S+)", trained).group(1)
    assert (tmp_path / run / "config.json").is_file() and len(lines) == 4
    prompts = [re.fullmatch(r"'([a-e]+)' -> '[a-e]*'", line).group(1) for line in lines[:3]]
    assert prompts == ["abc", "cab", "eeda"]
    assert re.fullmatch(r"greedy success on 50 test prompts: [01]\.\d\d", lines[3])
    # A run folder given on the command line is loaded, not trained again: the same answers.
    assert run_example("load_policy.py", run, cwd=tmp_path).splitlines() == lines


@pytest.mark.slow
def test_cleanrl_style_logs_episodic_return_and_success(tmp_path: Path) -> None:
    out = run_example("cleanrl_style_pg.py", "--updates", "20", "--num-envs", "16", cwd=tmp_path)
    pattern = (
        r"update=20 episodes=\d+ charts/episodic_return=[01]\.\d{3} charts/success=[01]\.\d{3} "
    )
    assert re.match(pattern, out.splitlines()[-1]), out


@pytest.mark.slow
def test_sb3_maskable_ppo(tmp_path: Path) -> None:
    # The subprocess (spawn) envs are tested in tests/test_clients.py; here the in-process ones.
    args = ("--timesteps", "512", "--n-envs", "2", "--vec-env", "dummy")
    out = run_example("sb3_maskable_ppo.py", *args, cwd=tmp_path)
    assert re.fullmatch(r"steps 512; greedy success [01]\.\d\d on 64 episodes\n", out)
