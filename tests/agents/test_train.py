"""TrainConfig, the generated command line, train(config), run folders, Ctrl-C, missing extras."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tokengym.agents import AGENT_DEFAULTS, TrainConfig, load_checkpoint, read_metrics, train
from tokengym.agents.train import main

from tests.helpers import train_config
from tokengym._requires import install_hint
from tokengym.errors import ConfigError

SMALL_COPY = {"task": "copy", "max_length": 3, "train_size": 50, "test_size": 10}
SMALL_ARGV = ["--task", "copy", "--env-kwargs", "max_length=3", "--env-kwargs", "train_size=50"]
SMALL_ARGV += ["--env-kwargs", "test_size=10", "--device", "cpu", "--no-progress"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"lr": 0.0}, "lr=0.0 is invalid; expected a finite number > 0.0"),
        ({"batch_size": 0}, "batch_size=0 is invalid; expected an int >= 1"),
        ({"iterations": -5}, "iterations=-5 is invalid; expected an int >= 1"),
        (
            {"agent": "supervised", "group_size": 4},
            "group_size=4 does not apply to agent 'supervised'; it is read by dpo, reinforce. "
            "Leave it unset.",
        ),
        (
            {"agent": "ppo", "iterations": 5},
            "iterations=5 does not apply to agent 'ppo'; it is read by dpo, reinforce, supervised. "
            "Leave it unset.",
        ),
        (
            {"agent": "supervised", "credit": "env", "baseline": "none"},
            "baseline='none', credit='env' do not apply to agent 'supervised'; they are read by "
            "reinforce. Leave them unset.",
        ),
        (
            {"env_kwargs": {"gamma": 0.5}},
            "env_kwargs['gamma']=0.5 is invalid; set it with TrainConfig.gamma",
        ),
        ({"env_kwargs": {"split": "test"}}, "env_kwargs['split']='test' is invalid; the run sets"),
        (
            {"baseline": "rloo"},
            "group_size=1 is invalid with baseline='rloo'; expected >= 2 samples per prompt",
        ),
        (
            {"batch_size": 10, "group_size": 4},
            "batch_size=10 is invalid with group_size=4; expected a multiple of group_size",
        ),
        ({"gamma": 1.5}, "gamma=1.5 is invalid; expected a finite number in [0.0, 1.0]"),
        ({"credit": "token"}, "credit='token' is invalid; expected one of"),
        ({"max_grad_norm": 0.0}, "max_grad_norm=0.0 is invalid; expected a finite number > 0.0"),
        ({"entropy_coef": -1.0}, "entropy_coef=-1.0 is invalid; expected a finite number >= 0.0"),
        (
            {"target_success": 1.5},
            "target_success=1.5 is invalid; expected a finite number in (0.0, 1.0]",
        ),
        ({"agent": "sarsa"}, "agent='sarsa' is invalid; expected one of"),
        (
            {"agent": "ppo", "sb3_kwargs": {"learning_rate": 0.1}},
            "sb3_kwargs={'learning_rate': 0.1} is invalid; ['learning_rate'] are set by the run",
        ),
        (
            {"task": "copy", "env_kwargs": {"dataset": [{"prompt": "a", "answer": "a"}]}},
            "task='copy' and env_kwargs['dataset'] are both set; leave task unset",
        ),
        ({"init": "missing.pt"}, "init='missing.pt' is invalid; no such file"),
        (
            {"eval_heldout": True, "eval_split": "test"},
            "eval_heldout=True with eval_split='test' is invalid; the held-out score is the "
            "test split's, so eval_split must be 'train'",
        ),
        (
            {"agent": "ppo", "eval_heldout": True},
            "eval_heldout=True does not apply to agent 'ppo'; it is read by dpo, reinforce, "
            "supervised.",
        ),
    ],
)
def test_config_rejects_what_it_would_otherwise_change_or_ignore(fields, message) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        TrainConfig(**fields)


def test_none_means_the_agents_default_and_is_recorded() -> None:
    assert TrainConfig(agent="supervised").lr == AGENT_DEFAULTS["supervised"]["lr"] == 3e-3
    ppo = TrainConfig(agent="ppo", task="target")
    assert (ppo.total_timesteps, ppo.iterations, ppo.eval_every, ppo.threads) == (
        50_000,
        None,
        1_000,
        1,
    )
    reinforce = TrainConfig(agent="reinforce", lr=0.01)
    assert (reinforce.lr, reinforce.batch_size, reinforce.iterations) == (0.01, 512, 5000)
    assert (reinforce.credit, reinforce.baseline, reinforce.entropy_coef) == ("final", "mean", 0.04)
    assert TrainConfig(agent="supervised").entropy_coef is None  # only reinforce has the bonus


def test_env_errors_surface_at_construction() -> None:
    with pytest.raises(Exception, match="max_lenght"):
        TrainConfig(env_kwargs={"max_lenght": 3})


def test_help_lists_every_field_with_its_default(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for f in dataclasses.fields(TrainConfig):
        assert "--" + f.name.replace("_", "-") in text, f.name
    assert text.count("(default: ") == len(dataclasses.fields(TrainConfig))
    assert "--lr LR Adam learning rate (per agent) (default: per agent: " in text
    assert "--credit {final,every_token,trajectory,env,distill}" in text
    assert "(default: 'final')" in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--lr", "0", "--batch-size", "0"], "--batch-size=0 is invalid; expected an int >= 1"),
        (["--iterations", "-5"], "--iterations=-5 is invalid; expected an int >= 1"),
        (["--agent", "ppo", "--iterations", "5"], "--iterations=5 does not apply to agent 'ppo'"),
        (["--env-kwargs", "gamma=0.5"], "--env-kwargs gamma=0.5 is invalid; set it with --gamma"),
    ],
)
def test_command_rejects_bad_values_before_writing_anything(
    argv, message, tmp_path, capsys
) -> None:
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--out", str(out)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "usage:" not in err
    assert not out.exists()


def test_command_writes_config_metrics_tensorboard_checkpoint_and_final_line(
    tmp_path, capsys
) -> None:
    out = tmp_path / "sl"
    argv = ["--agent", "supervised", *SMALL_ARGV, "--iterations", "4", "--eval-every", "2"]
    assert main([*argv, "--out", str(out)]) == 0
    records = read_metrics(out / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    assert "eval/greedy_success" in records[1] and "losses/nll" in records[0]
    assert "eval/greedy_success" not in records[0] and "charts/SPS" in records[0]
    config = json.loads((out / "config.json").read_text())
    assert (config["agent"], config["lr"], config["batch_size"], config["iterations"]) == (
        "supervised",
        3e-3,
        128,
        4,
    )
    assert list(out.glob("events.out.tfevents.*"))  # tensorboard is in the "all" extra
    assert load_checkpoint(out / "checkpoint.pt").agent == "supervised"
    assert capsys.readouterr().out.startswith("final eval/greedy_success=")
    # REINFORCE from the supervised weights, with a KL penalty to them
    rl = tmp_path / "rl"
    rl_argv = ["--iterations", "2", "--batch-size", "16", "--kl-coef", "0.1", "--eval-every", "2"]
    assert (
        main([*rl_argv, "--init", str(out / "checkpoint.pt"), *SMALL_ARGV, "--out", str(rl)]) == 0
    )
    assert [r["step"] for r in read_metrics(rl / "metrics.jsonl")] == [1, 2]


def test_a_failed_start_leaves_no_run_folder(tmp_path) -> None:
    source = tmp_path / "sl"
    train(train_config("supervised", SMALL_COPY, iterations=1, out=str(source)))
    out = tmp_path / "rl"
    other_vocabulary = {**SMALL_COPY, "alphabet_size": 7}
    config = train_config("reinforce", other_vocabulary, init=str(source / "checkpoint.pt"))
    with pytest.raises(ValueError, match="vocabulary"):
        train(dataclasses.replace(config, out=str(out)))
    assert not out.exists()


def test_train_api_runs_to_the_target(tmp_path) -> None:
    config = TrainConfig(
        agent="reinforce",
        task="target",
        target_success=0.9,
        batch_size=64,
        lr=3e-3,
        eval_every=5,
        device="cpu",
        progress=False,
        out=str(tmp_path / "api"),
    )
    final = train(config)
    assert final["eval/greedy_success"] >= 0.9
    assert final["iterations"] < 2000 and final["iterations"] % 5 == 0  # stopped at an evaluation


def test_eval_heldout_scores_the_test_split_at_every_evaluation(tmp_path) -> None:
    from tokengym.agents import evaluate_policy, load_policy

    knobs = {"alphabet_size": 4, "max_length": 3, "train_size": 48, "test_size": 16}
    config = TrainConfig(
        agent="supervised", task="copy", env_kwargs=knobs, iterations=40, eval_every=20,
        eval_heldout=True, target_success=None, device="cpu", progress=False,
        out=str(tmp_path / "run"),
    )  # fmt: skip
    final = train(config)
    metrics = read_metrics(tmp_path / "run" / "metrics.jsonl")
    evaluations = [line for line in metrics if "eval/greedy_success" in line]
    assert [line["step"] for line in evaluations] == [20, 40]
    assert all("eval/heldout_greedy_success" in line for line in evaluations)
    trained = load_policy(tmp_path / "run", device="cpu")
    test = evaluate_policy(trained.model, trained.env_kwargs, split="test", num_prompts=256)
    assert final["eval/heldout_greedy_success"] == test["eval/greedy_success"]
    assert final["eval/heldout_greedy_success"] != final["eval/greedy_success"]  # 14/16 vs 1
    assert final["eval/heldout_sampled_reward"] == test["eval/sampled_reward"]


def _run_until_first_metric_line(argv: list[str], out: Path, env: dict) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "tokengym.agents.train", *argv, "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        # A shell that starts a job in the background (as CI may) makes it ignore SIGINT, and
        # Python then installs no KeyboardInterrupt handler: the child gets the default back.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while not (out / "metrics.jsonl").exists() or not (out / "metrics.jsonl").read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"no metric line within 120 s: {process.communicate()}")
        time.sleep(0.1)
    return process


def test_ctrl_c_saves_a_loadable_checkpoint_and_exits_130(tmp_path) -> None:
    out = tmp_path / "run"
    argv = ["--agent", "reinforce", *SMALL_ARGV, "--iterations", "100000", "--batch-size", "16"]
    process = _run_until_first_metric_line(argv, out, {**os.environ, "PYTHONWARNINGS": "error"})
    try:
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        process.kill()  # never leave a 100,000-update run behind when the test fails
    assert process.returncode == 130
    assert "Traceback" not in stderr
    assert stdout.startswith("final ") and stdout.rstrip().endswith("(interrupted)")
    lines = read_metrics(out / "metrics.jsonl")
    checkpoint = load_checkpoint(out / "checkpoint.pt")
    assert checkpoint.iteration >= lines[-1]["step"] >= 1


def _without_torch(tmp_path: Path) -> dict[str, str]:
    """An environment whose Python cannot import torch (as on a core install)."""
    blocker = tmp_path / "sitecustomize.py"
    blocker.write_text(
        "import importlib.util, sys\n"
        "_find = importlib.util.find_spec\n"
        "def find_spec(name, package=None):\n"
        "    return None if name.split('.')[0] == 'torch' else _find(name, package)\n"
        "importlib.util.find_spec = find_spec\n"
        "sys.modules['torch'] = None\n"
    )
    return {**os.environ, "PYTHONPATH": str(tmp_path)}


TRAIN_COMMAND = ["-c", "from tokengym.commands import train_command; train_command()"]


@pytest.mark.parametrize(
    ("command", "extra"),
    [
        (["-m", "tokengym.agents.train", "--help"], "torch"),
        ([*TRAIN_COMMAND, "--task", "copy"], "torch"),
        (["-c", "from tokengym.commands import bench_command; bench_command()", "--help"], "bench"),
    ],
)
def test_without_torch_the_commands_print_one_install_line(tmp_path, command, extra) -> None:
    result = subprocess.run(
        [sys.executable, *command], capture_output=True, text=True, env=_without_torch(tmp_path)
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert install_hint(extra) in result.stderr  # pinned in tests/test_packaging.py


def test_the_train_commands_help_imports_no_torch(tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, *TRAIN_COMMAND, "--help"],
        capture_output=True,
        text=True,
        env=_without_torch(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: tokengym-train")
    assert "\ncheckpoints, resume and the run folder:\n" in result.stdout
