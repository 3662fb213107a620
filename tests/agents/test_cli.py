"""tokengym-train's options, one-line start-up errors, help groups, final line and progress bar."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from tokengym.agents import TrainConfig, load_policy
from tokengym.agents.cli import build_parser, parse_config
from tokengym.agents.config import SECTIONS
from tokengym.agents.run import final_line
from tokengym.agents.train import _show_progress, main

from tests.test_tokenizer import train_bpe

SMALL = ["--device", "cpu", "--no-progress", "--eval-every", "2", "--iterations", "2"]
SMALL_COPY = ["--env-kwargs", "max_length=3", "train_size=20", "test_size=5"]


def _parse(argv: list[str]) -> TrainConfig:
    return parse_config(TrainConfig, build_parser(TrainConfig, "t"), argv)


def test_several_key_values_after_one_flag_add_up_with_repeated_flags() -> None:
    one = _parse(["--env-kwargs", "max_length=3", "train_size=20", "--env-kwargs", "test_size=5"])
    assert one.env_kwargs == {"max_length": 3, "train_size": 20, "test_size": 5}
    assert _parse(["--agent", "ppo", "--sb3-kwargs", "n_steps=32", "batch_size=16"]).sb3_kwargs == {
        "n_steps": 32,
        "batch_size": 16,
    }
    help_text = " ".join(build_parser(TrainConfig, "t").format_help().split())
    assert "several KEY=VALUE after one flag, and the flag repeated, add up" in help_text


def test_the_defaults_stop_at_a_target_and_score_the_train_prompts() -> None:
    config = TrainConfig()
    assert (config.task, config.target_success, config.eval_split) == ("copy", 0.9, "train")
    assert (config.iterations, config.eval_every, config.eval_prompts) == (5000, 10, 256)
    assert _parse(["--target-success", "none"]).target_success is None


def test_a_dataset_needs_no_task_flag(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = tmp_path / "qa.jsonl"
    data.write_text("".join(json.dumps({"prompt": p, "answer": p[::-1]}) + "\n" for p in "ab"))
    argv = ["--agent", "supervised", "--env-kwargs", f"dataset={data}", "test_fraction=0.5"]
    assert main([*argv, *SMALL, "--target-success", "none", "--out", str(tmp_path / "run")]) == 0
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["task"] is None and config["env_kwargs"]["dataset"] == str(data)
    assert capsys.readouterr().out.rstrip().endswith("(budget spent: 2 iterations)")
    with pytest.raises(SystemExit) as exit_:
        main(["--task", "copy", *argv])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == (
        "tokengym-train: error: --task='copy' and --env-kwargs dataset=... are both set; leave "
        "task unset to train on the dataset\n"
    )


def test_a_gpt2_style_tokenizer_through_the_command(tmp_path: Path) -> None:
    tokenizer = train_bpe(tmp_path, ["<|endoftext|>"])
    out = tmp_path / "run"
    argv = ["--agent", "supervised", "--tokenizer", str(tokenizer), *SMALL_COPY, *SMALL]
    assert main([*argv, "--out", str(out)]) == 0
    assert json.loads((out / "config.json").read_text())["tokenizer"] == str(tokenizer)
    policy = load_policy(out, device="cpu")
    tok = policy.env.tokenizer
    assert tok.special_tokens["eos"] == "<|endoftext|>" and len(tok.added_special_tokens) == 3
    assert isinstance(policy.generate("abc"), str)


def _init_for_another_vocabulary(tmp_path: Path) -> list[str]:
    source = tmp_path / "source"
    assert main(["--agent", "supervised", *SMALL_COPY, *SMALL, "--out", str(source)]) == 0
    return ["--init", str(source / "checkpoint.pt"), "--env-kwargs", "alphabet_size=7"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--gamma", "2"], "--gamma=2.0 is invalid; expected a finite number in [0.0, 1.0]"),
        (
            ["--env-kwargs", "gamma=0.5"],
            "--env-kwargs gamma=0.5 is invalid; set it with --gamma (it is read by both the env "
            "and the agent or the evaluation)",
        ),
        (["--tokenizer", "nope.json"], "--tokenizer='nope.json' is invalid; no such file"),
        (["--out", "{file}/run"], "--out {file}/run: Not a directory ({file}/run)"),
        pytest.param(
            ["--device", "cuda"],
            "--device='cuda' but CUDA is not available; use 'auto' or 'cpu'",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is there"),
        ),
        ("init", "--init {init}: the checkpoint's vocabulary (9 tokens) differs from the env's"),
    ],
)
def test_start_up_errors_are_one_line_naming_the_flag_and_leave_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture, argv: list[str] | str, message: str
) -> None:
    file = tmp_path / "file"
    file.write_text("")
    if argv == "init":
        argv = _init_for_another_vocabulary(tmp_path)
        capsys.readouterr()
    argv = [a.replace("{file}", str(file)) for a in argv]
    out = ["--out", str(tmp_path / "run")] if "--out" not in argv else []
    with pytest.raises(SystemExit) as exit_:
        main([*SMALL_COPY, *SMALL, *argv, *out])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and len(err.splitlines()) == 1
    init = argv[1] if argv[0] == "--init" else ""
    assert err.startswith("tokengym-train: error: " + message.format(file=file, init=init))
    assert not (tmp_path / "run").exists()


def test_help_groups_the_options_by_section() -> None:
    groups = build_parser(TrainConfig, "t", sections=SECTIONS)._action_groups
    titles = {g.title: [a.dest for a in g._group_actions] for g in groups}
    assert list(titles)[2:] == list(SECTIONS.values())
    assert titles["what to train"] == [
        "agent",
        "task",
        "env_kwargs",
        "reward_mode",
        "gamma",
        "tokenizer",
    ]
    assert titles["the run"][-1] == "track" and "credit" in titles["REINFORCE"]


def test_the_final_line_prints_counts_as_ints_leaves_out_nan_and_says_why() -> None:
    final = {"charts/episodes": 25600.0, "eval/steps_to_target": math.nan}
    final |= {"eval/greedy_success": 0.9125, "charts/train_seconds": 12.3456}
    assert final_line(final, Path("runs/x"), "target 0.9 reached") == (
        "final eval/greedy_success=0.9125 charts/episodes=25600 charts/train_seconds=12.35 "
        "run=runs/x (target 0.9 reached)"
    )


class _Bar:
    def set_postfix(self, shown: dict[str, str], refresh: bool) -> None:
        self.shown = dict(shown)


def test_the_progress_bar_shows_success_tokens_per_second_and_loss() -> None:
    bar, shown = _Bar(), {}
    line = {"charts/success": 0.25, "perf/tokens_per_s": 12345.0, "losses/nll": 0.5}
    _show_progress(bar, shown, line)
    assert bar.shown == {"batch_success": "0.250", "tok/s": "1.23e+04", "loss": "0.5"}
    _show_progress(bar, shown, {**line, "eval/greedy_success": 0.5})
    assert bar.shown == {"success": "0.500", "tok/s": "1.23e+04", "loss": "0.5"}
    _show_progress(bar, shown, line)
    assert bar.shown["success"] == "0.500" and "batch_success" not in bar.shown


def test_bench_with_no_ray_cluster_is_one_line_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    ray = pytest.importorskip("ray", reason="needs the ray extra: pip install -e '.[ray]'")
    from tokengym.bench.__main__ import main as bench

    assert not ray.is_initialized()
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with pytest.raises(SystemExit) as exit_:
        bench(["run", "--executor", "ray", "--address", "auto", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and len(err.splitlines()) == 1
    assert err.startswith("tokengym-bench: error: --address auto: Could not find any running Ray")
    assert not (tmp_path / "r").exists()
