"""Fault injection: kills, signals, crashes, divergence, conflicts; each asserts what survives."""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from tokengym.agents import (
    TrainConfig,
    guards,
    load_checkpoint,
    read_metrics,
    save_checkpoint,
    train,
)
from tokengym.agents import reinforce as reinforce_module
from tokengym.agents.checkpoint import CheckpointError
from tokengym.agents.divergence import LossGrowthWarning
from tokengym.agents.policies import GRUConfig, build_policy
from tokengym.agents.reinforce import ReinforceAgent
from tokengym.agents.signals import Interrupted
from tokengym.agents.train import main

from tests.fault_workers import run_or_die
from tokengym.errors import ConfigError

TINY = {"task": "target", "width": 16, "batch_size": 8, "device": "cpu", "progress": False}
TINY |= {"eval_every": 2, "eval_prompts": 4}
TINY_ARGV = ["--task", "target", "--width", "16", "--batch-size", "8", "--device", "cpu"]
TINY_ARGV += ["--no-progress", "--eval-prompts", "4"]
ROOT = Path(__file__).resolve().parents[1]


def tiny(out: Path, **fields: object) -> TrainConfig:
    return TrainConfig(**{**TINY, "iterations": 6, "out": str(out), **fields})


def _params(out: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(out / "checkpoint.pt").policy.state_dict()


def _losses(out: Path) -> list[tuple[int, float | None]]:
    return [(r["step"], r["losses/total"]) for r in read_metrics(out / "metrics.jsonl")]


def _small_checkpoint(path: Path, iteration: int) -> None:
    policy = build_policy(GRUConfig(9, embed_size=4, hidden_size=8))
    save_checkpoint(path, policy=policy, vocab={"a": 0}, iteration=iteration)


# ---------------------------------------------------------------- checkpoints


def test_sigkill_mid_save_keeps_the_previous_checkpoint_loadable(tmp_path) -> None:
    path = tmp_path / "checkpoint.pt"
    script = f"""
        import os, signal
        from tokengym.agents import save_checkpoint
        from tokengym.agents.policies import GRUConfig, build_policy
        policy = build_policy(GRUConfig(9, embed_size=4, hidden_size=8))
        save_checkpoint({str(path)!r}, policy=policy, vocab={{"a": 0}}, iteration=1)
        os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)  # dies with the data written
        save_checkpoint({str(path)!r}, policy=policy, vocab={{"a": 0}}, iteration=2)
    """
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], cwd=ROOT)
    assert result.returncode == -signal.SIGKILL
    assert load_checkpoint(path).iteration == 1
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left[0].startswith(".checkpoint.pt.") and left[0].endswith(".tmp")  # the torn one
    assert left[1:] == ["checkpoint.pt"]


def test_a_second_signal_during_a_save_waits_for_the_save(tmp_path, monkeypatch) -> None:
    path = tmp_path / "checkpoint.pt"
    _small_checkpoint(path, 1)
    real_fsync = os.fsync

    def fsync_after_ctrl_c(fd: int) -> None:
        os.kill(os.getpid(), signal.SIGINT)  # arrives mid-save
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync_after_ctrl_c)
    # Python's own SIGINT handler, whatever this process inherited (a shell's background job
    # starts with SIGINT ignored, and an ignored signal is rightly not delivered).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            _small_checkpoint(path, 2)
    finally:
        signal.signal(signal.SIGINT, previous)
    monkeypatch.undo()
    assert load_checkpoint(path).iteration == 2  # finished, then the signal was delivered


def test_a_full_disk_during_a_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch) -> None:
    path = tmp_path / "checkpoint.pt"
    _small_checkpoint(path, 1)

    def no_space(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(OSError, match="No space left on device"):
        _small_checkpoint(path, 2)
    monkeypatch.undo()
    assert load_checkpoint(path).iteration == 1
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no temporary file left


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda b: b[: len(b) // 2], "is truncated or extended: "),
        (lambda b: b[:-100] + bytes(100), "is corrupt: its sha256 differs from the one in its"),
        (lambda b: b"", "is not a tokengym checkpoint (no header line; 0 bytes)"),
        (lambda b: b"n" * 600, "is not a tokengym checkpoint (no header line; 600 bytes)"),
    ],
    ids=["truncated", "overwritten", "empty", "garbage"],
)
def test_a_damaged_checkpoint_is_an_error_naming_its_path(tmp_path, damage, message) -> None:
    path = tmp_path / "checkpoint.pt"
    _small_checkpoint(path, 1)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(path)
    assert str(error.value).startswith(f"checkpoint {str(path)!r} {message}")


def test_a_corrupt_init_names_the_path_before_anything_is_written(tmp_path) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"n" * 600)  # torch.load said "Unsupported operand 110"
    with pytest.raises(CheckpointError, match=f"checkpoint {str(bad)!r} is not a tokengym"):
        train(tiny(tmp_path / "run", init=str(bad)))
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- signals and resume


def test_sigterm_saves_prints_the_final_line_and_exits_143(tmp_path) -> None:
    out = tmp_path / "run"
    argv = [*TINY_ARGV, "--iterations", "100000", "--eval-every", "100000", "--out", str(out)]
    command = [sys.executable, "-m", "tokengym.agents.train", *argv]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        metrics = out / "metrics.jsonl"
        while not (metrics.exists() and metrics.read_text()):
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 143, stderr
    assert stdout.startswith("final ") and stdout.rstrip().endswith("(interrupted)")
    steps = [r["step"] for r in read_metrics(out / "metrics.jsonl")]
    assert load_checkpoint(out / "checkpoint.pt").iteration == steps[-1]  # the update finished
    assert steps == list(range(1, steps[-1] + 1))


def _stop_at(monkeypatch, iteration: int, action) -> None:
    original = ReinforceAgent.train_iteration

    def train_iteration(self):
        metrics = original(self)
        if self.iteration == iteration:
            action()
        return metrics

    monkeypatch.setattr(ReinforceAgent, "train_iteration", train_iteration)


def _crash() -> None:
    raise RuntimeError("killed")  # what SIGKILL or OOM leaves: no final save


@pytest.mark.slow
@pytest.mark.parametrize("stop", ["sigterm", "crash"])
def test_a_resumed_run_equals_an_uninterrupted_one(tmp_path, monkeypatch, stop) -> None:
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    train(tiny(whole))
    if stop == "sigterm":  # after update 3: saved there
        _stop_at(monkeypatch, 3, lambda: os.kill(os.getpid(), signal.SIGTERM))
        with pytest.raises(Interrupted) as error:
            train(tiny(parts, checkpoint_every=2))
        assert error.value.exit_code == 143
        assert load_checkpoint(parts / "checkpoint.pt").iteration == 3
    else:  # a crash during update 4: the periodic checkpoint of update 2 is what is left
        _stop_at(monkeypatch, 4, _crash)
        with pytest.raises(RuntimeError, match="killed"):
            train(tiny(parts, checkpoint_every=2))
        assert load_checkpoint(parts / "checkpoint.pt").iteration == 2
        assert [s for s, _ in _losses(parts)] == [1, 2, 3]
    monkeypatch.undo()
    train(TrainConfig(resume=str(parts), progress=False))
    resumed, uninterrupted = _params(parts), _params(whole)
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in uninterrupted)
    assert _losses(parts) == _losses(whole)  # steps 1..6 once, the same losses bit for bit
    config = json.loads((parts / "config.json").read_text())
    assert (config["resume"], config["width"], config["iterations"]) == (str(parts), 16, 6)


def test_resume_refuses_a_field_that_differs_from_the_run(tmp_path) -> None:
    train(tiny(tmp_path / "run", iterations=1))
    with pytest.raises(ConfigError) as error:
        TrainConfig(resume=str(tmp_path / "run"), width=32)
    assert str(error.value) == (
        f"resume={str(tmp_path / 'run')!r} is invalid with width=32 (the run has 16): a resumed "
        f"run keeps its config.json; leave these unset, or start a new run"
    )


# ---------------------------------------------------------------- divergence


def _poison_loss(monkeypatch, at_call: int, poison) -> None:
    calls = []
    original = reinforce_module.reinforce_loss

    def loss(*args, **kwargs):
        value, stats = original(*args, **kwargs)
        calls.append(1)
        return (poison(value) if len(calls) == at_call else value), stats

    monkeypatch.setattr(reinforce_module, "reinforce_loss", loss)


def test_a_nan_loss_stops_with_the_message_and_keeps_the_last_finite_checkpoint(
    tmp_path, monkeypatch, capsys
) -> None:
    _poison_loss(monkeypatch, 3, lambda loss: loss * math.nan)
    out = tmp_path / "run"
    argv = [*TINY_ARGV, "--iterations", "6", "--checkpoint-every", "1", "--out", str(out)]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "error: training diverged at iteration 3: loss=nan, grad_norm=nan; the update was not "
        "applied (lower lr, or set max_grad_norm)"
    ]
    checkpoint = load_checkpoint(out / "checkpoint.pt")
    assert checkpoint.iteration == 2
    assert all(torch.isfinite(p).all() for p in checkpoint.policy.parameters())
    assert [r["step"] for r in read_metrics(out / "metrics.jsonl")] == [1, 2]


def test_a_loss_growing_past_the_bound_warns(tmp_path, monkeypatch) -> None:
    _poison_loss(monkeypatch, 3, lambda loss: loss + 1e6)  # the first loss is below 1
    with pytest.warns(
        LossGrowthWarning,
        match=r"at iteration 3, past 1e\+04 \(10000 x the larger of its first value",
    ):
        train(tiny(tmp_path / "run", iterations=3, checkpoint=False))


def test_an_lr_adam_cannot_take_is_rejected() -> None:
    with pytest.raises(ConfigError) as error:
        TrainConfig(**TINY, lr=1e38)
    assert str(error.value) == (
        "lr=1e+38 is invalid; expected at most 1.0 (Adam moves each weight by about lr per "
        "update: a larger lr only diverges)"
    )


# ---------------------------------------------------------------- conflicts


def test_init_with_another_policy_is_an_error_before_anything_is_written(tmp_path) -> None:
    source = tmp_path / "source"
    train(tiny(source, iterations=1))
    out = tmp_path / "run"
    with pytest.raises(ConfigError) as error:
        train(tiny(out, init=str(source / "checkpoint.pt"), width=32, policy="transformer"))
    assert str(error.value) == (
        f"policy='transformer', width=32 is invalid with init="
        f"{str(source / 'checkpoint.pt')!r}, whose policy has policy='gru', width=16: set them "
        f"to the checkpoint's (config.json records the policy trained)"
    )
    assert not out.exists()


def test_an_out_holding_a_run_is_refused_unless_overwrite(tmp_path) -> None:
    out = tmp_path / "run"
    train(tiny(out, iterations=2, checkpoint=False))
    before = (out / "metrics.jsonl").read_text()
    with pytest.raises(ConfigError) as error:
        train(tiny(out, iterations=1))
    assert str(error.value).startswith(
        f"out={str(out)!r} is invalid; it already holds a run (config.json, metrics.jsonl"
    )
    assert (out / "metrics.jsonl").read_text() == before
    train(tiny(out, iterations=1, overwrite=True))
    assert [r["step"] for r in read_metrics(out / "metrics.jsonl")] == [1]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"batch_size": 1},
            "batch_size=1 is invalid with baseline='mean'; the advantage of a single episode "
            "minus the batch mean (or standardised) is 0, so the gradient is identically 0",
        ),
        (
            {"batch_size": 1, "baseline": "none", "normalize_advantages": True},
            "batch_size=1 is invalid with normalize_advantages=True; the advantage",
        ),
        ({"checkpoint_every": 0}, "checkpoint_every=0 is invalid; expected an int >= 1"),
        ({"checkpoint_minutes": 0.0}, "checkpoint_minutes=0.0 is invalid; expected a finite"),
        (
            {"batch_size": 10**7},
            "batch_size=10000000 is invalid; one update needs about 59.6 GiB (estimate) and "
            "this machine has 24.0 GiB: use a smaller batch_size",
        ),
    ],
)
def test_batches_that_cannot_train_are_rejected(fields, message, monkeypatch) -> None:
    monkeypatch.setattr(guards, "machine_bytes", lambda: 24 * 2**30)  # the CI machine's
    with pytest.raises(ConfigError) as error:
        TrainConfig(**{**TINY, **fields})
    assert str(error.value).startswith(message)


def test_sb3_sigterm_saves_the_model_and_exits_143(tmp_path, monkeypatch) -> None:
    pytest.importorskip("sb3_contrib")
    out = tmp_path / "run"
    config = TrainConfig(
        agent="ppo", task="target", total_timesteps=100_000, log_every=64, num_envs=2,
        device="cpu", progress=False, out=str(out),
    )  # fmt: skip
    from tokengym.agents.metrics import RunLogger

    original = RunLogger.write

    def write(self, step, metrics):
        original(self, step, metrics)
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(RunLogger, "write", write)
    with pytest.raises(Interrupted) as error:
        train(config)
    assert error.value.exit_code == 143
    assert (out / "model.zip").stat().st_size > 0
    assert read_metrics(out / "metrics.jsonl")[0]["charts/env_steps"] < 100_000


def test_train_restores_the_signal_handlers(tmp_path) -> None:
    def mine(signum, frame) -> None: ...

    previous = signal.signal(signal.SIGTERM, mine)
    try:
        train(tiny(tmp_path / "run", iterations=1, checkpoint=False))
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, previous)


# ---------------------------------------------------------------- the benchmark runner

CREDIT = ["credit"]  # the smoke suite's 8 quickest runs (about 0.3 s each)


def _bench(out: Path, *flags: str) -> int:
    from tokengym.bench.__main__ import main as bench_main

    argv = ["run", "--suite", "smoke", "--only", "credit", "--out", str(out), "--no-progress"]
    return bench_main([*argv, *flags])


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in state  # a zombie has ended


@pytest.mark.slow
def test_two_runners_on_one_folder_give_one_run_and_one_refusal(tmp_path, capsys) -> None:
    from tokengym.bench import runner

    out = tmp_path / "out"
    command = [sys.executable, "-m", "tokengym.bench", "run", "--suite", "smoke"]
    command += ["--only", "credit", "--out", str(out), "--no-progress"]
    first = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lock = out / ".lock"
    deadline = time.monotonic() + 60
    while not (lock.exists() and lock.read_text().strip()):
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.01)
    with pytest.raises(SystemExit) as refused:
        _bench(out)
    assert refused.value.code == 1
    assert capsys.readouterr().err.splitlines() == [
        f"tokengym-bench: error: out={str(out)!r} is in use by another tokengym-bench run "
        f"(PID {first.pid}); wait for it to finish, or pass another --out"
    ]
    assert first.wait(timeout=120) == 0, first.stderr.read()
    ids = [r["run_id"] for r in runner.read_rows(out)]
    assert sorted(ids) == sorted(s.run_id for s in runner.select(runner_suite(), CREDIT))


def runner_suite():
    from tokengym.bench.suites import SUITES

    return SUITES["smoke"]


@pytest.mark.slow
def test_a_torn_last_line_is_named_skipped_and_its_run_rerun(tmp_path, capsys) -> None:
    from tokengym.bench import runner
    from tokengym.bench.__main__ import main as bench_main
    from tokengym.bench.rows import TornLineWarning

    out = tmp_path / "out"
    assert _bench(out) == 0
    rows = runner.read_rows(out)
    text = (out / "runs.jsonl").read_text()
    cut = len(text) - len(json.dumps(rows[-1])) // 2  # the killed writer's half line
    (out / "runs.jsonl").write_text(text[:cut])
    path_line = f"{out / 'runs.jsonl'}: line {len(rows)} is cut"
    with pytest.warns(TornLineWarning, match=f"^{path_line}"):
        assert bench_main(["report", str(out)]) == 0
    with pytest.warns(TornLineWarning, match=f"^{path_line}"):
        assert _bench(out) == 0
    again = runner.read_rows(out)  # every line parses; the cut run ran once more
    assert [r["run_id"] for r in again] == [r["run_id"] for r in rows]
    assert again[:-1] == rows[:-1]
    # a crafted suite.json: a key that walks out of the folder, a title with markup
    suite = json.loads((out / "suite.json").read_text())
    question = next(q for q in suite["questions"] if q["key"] == "credit")
    question.update(key="../../evil", title="Q2 <img src=x>|[link](http://e.vil)")
    (out / "suite.json").write_text(json.dumps(suite))
    assert bench_main(["report", str(out)]) == 0
    assert (out / "curves__._.._evil.png").exists()
    assert not list(tmp_path.glob("*.png")) and not list(tmp_path.parent.glob("*evil*"))
    report_text = (out / "report.md").read_text()
    assert "## Q2 \\<img src=x\\>\\|\\[link\\](http://e.vil)" in report_text
    assert "<img" not in report_text.replace("\\<img", "")
    # a bad line that is not the last one is an error naming the file and the line
    lines = (out / "runs.jsonl").read_text().splitlines()
    (out / "runs.jsonl").write_text("\n".join([lines[0], "{oops", *lines[1:]]) + "\n")
    capsys.readouterr()
    with pytest.raises(SystemExit) as error:
        bench_main(["report", str(out)])
    assert error.value.code == 1
    assert capsys.readouterr().err == (
        f"tokengym-bench: error: {out / 'runs.jsonl'}: line 2 is not a JSON row (Expecting "
        f"property name enclosed in double quotes at column 2); fix or delete that line\n"
    )


@pytest.mark.slow
def test_a_killed_worker_fails_only_its_run_and_exits_nonzero(
    tmp_path, monkeypatch, capsys
) -> None:
    from tokengym.bench import runner
    from tokengym.bench.executors import WorkerPool

    out = tmp_path / "out"
    out.mkdir()
    specs = runner.select(runner_suite(), CREDIT)
    victim = specs[2].run_id
    (out / "die_on").write_text(victim)
    monkeypatch.setattr(runner, "make_executor", lambda *a: WorkerPool(2, run=run_or_die))
    assert _bench(out, "--workers", "2") == 1
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith(f"1 run(s) failed ({victim}; see runs/<id>/error.txt")
    rows = runner.read_rows(out)
    assert sorted(r["run_id"] for r in rows) == sorted(s.run_id for s in specs)
    failed = [r for r in rows if r["status"] != "ok"]
    assert [(r["run_id"], r["status"]) for r in failed] == [(victim, "failed")]
    assert re.fullmatch(
        r"WorkerCrashedError: the worker process \(PID \d+\) died with signal SIGKILL",
        failed[0]["error"],
    )
    assert [s.run_id for s in runner.pending(runner_suite(), out, CREDIT)] == [victim]
    monkeypatch.undo()
    assert _bench(out) == 0  # the failed row is re-run, only it
    assert [r["run_id"] for r in runner.read_rows(out)[len(rows) :]] == [victim]


@pytest.mark.slow
def test_workers_die_with_their_driver(tmp_path) -> None:
    script = f"""
        from pathlib import Path
        from tokengym.bench import runner
        from tokengym.bench.executors import WorkerPool
        from tokengym.bench.suites import SUITES
        from tests.fault_workers import sleep_run
        specs = runner.select(SUITES["smoke"], ["credit"])[:2]
        list(WorkerPool(2, run=sleep_run).rows(specs, Path({str(tmp_path)!r}), "smoke"))
    """
    driver = subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)], cwd=ROOT)
    try:
        deadline = time.monotonic() + 90
        while len(list(tmp_path.glob("worker-*"))) < 2:
            assert driver.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        pids = [int(p.name.split("-")[1]) for p in tmp_path.glob("worker-*")]
        assert all(_alive(pid) for pid in pids)
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(pid) for pid in pids)
    finally:
        driver.kill()
        for p in tmp_path.glob("worker-*"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(p.name.split("-")[1]), signal.SIGKILL)


@pytest.mark.parametrize(
    ("key", "name"),
    [("../../outside", "_._.._outside"), ("a/b c", "a_b_c"), (".hidden", "_hidden"), ("", "_")],
)
def test_report_file_names_stay_in_the_results_folder(key, name) -> None:
    from tokengym.bench.report import file_key

    assert file_key(key) == name


def test_report_text_is_escaped_for_markdown() -> None:
    from tokengym.bench.report import md

    assert md("x](http://e.vil) <script>|`c`\n# h") == (
        "x\\](http://e.vil) \\<script\\>\\|\\`c\\` # h"
    )
