"""Stable-Baselines3 baselines: env conformance, the token extractor, training, save/load, CLI."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3.common.env_checker import check_env
from tokengym.agents import SB3_AGENTS, read_metrics, train
from tokengym.agents.config import SB3_POLICIES
from tokengym.agents.evaluate import evaluate
from tokengym.agents.sb3 import (
    TokenExtractor,
    TokenGenFactory,
    build_model,
    evaluate_model,
    load_model,
    make_vec_env,
    sb3_act,
    train_sb3,
)

import tokengym  # noqa: F401  (registers TokenGen-v0)
from tests.helpers import CONFIGS, config_id, train_config
from tokengym._requires import install_hint

TARGET = {"task": "target", "train_size": 200, "test_size": 50}
TINY = {"task": "target", "train_size": 20, "test_size": 10}


# --- configuration -----------------------------------------------------------------------------


def sb3_config(agent: str, env_kwargs: dict, **fields) -> object:
    """A CPU TrainConfig of an SB3 agent, training on the terminal reward (the env's default)."""
    return train_config(agent, env_kwargs, **fields)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"sb3_policy": "cnn"}, "sb3_policy='cnn' is invalid; expected one of ('mlp', 'token')"),
        ({"sb3_pooling": "max"}, "sb3_pooling='max' is invalid; expected one of ('gru', 'mean')"),
        ({"vec_env": "ray"}, "vec_env='ray' is invalid; expected one of ('dummy', 'subproc')"),
        ({"num_envs": 0}, "num_envs=0 is invalid; expected an int >= 1"),
        ({"total_timesteps": 1.5}, "total_timesteps=1.5 is invalid; expected an int >= 1"),
        ({"sb3_net_arch": (64, 0)}, "sb3_net_arch=(64, 0) is invalid; expected a tuple of ints"),
        ({"sb3_kwargs": {"seed": 3}}, "['seed'] are set by the run"),
        ({"batch_size": 64}, "batch_size=64 does not apply to agent 'ppo'"),
        ({"width": 64}, "width=64 does not apply to agent 'ppo'"),
    ],
)
def test_sb3_fields_are_validated(fields: dict, message: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        sb3_config("ppo", TINY, **fields)
    assert message in str(excinfo.value)


# --- environments ------------------------------------------------------------------------------


@pytest.mark.parametrize("config", CONFIGS, ids=[config_id(c) for c in CONFIGS])
def test_sb3_check_env_on_every_configuration_as_trained(config: dict) -> None:
    """SB3's checker on the env exactly as the baselines build it (Monitor included)."""
    env = TokenGenFactory(config)()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env, warn=True)
    env.close()


def test_vec_env_is_seeded_and_exposes_action_masks() -> None:
    first, second = (make_vec_env(TINY, 2, seed=7) for _ in range(2))
    np.testing.assert_array_equal(first.reset(), second.reset())
    masks = np.stack(first.env_method("action_masks"))
    assert masks.dtype == bool and masks.shape == (2, 9) and not masks[:, :3].any()
    first.close()
    second.close()


# --- the token features extractor --------------------------------------------------------------


@pytest.mark.parametrize("pooling", ["gru", "mean"])
def test_token_extractor_ignores_the_pad_tail_and_scales_to_large_vocabularies(
    pooling: str,
) -> None:
    vocab, length = 50_000, 12
    space = spaces.Box(0, vocab - 1, (length,), np.int64)
    torch.manual_seed(0)
    net = TokenExtractor(space, pad_id=0, embed_dim=16, hidden_dim=24, pooling=pooling)
    # Parameters: the V x E embedding and O(E*H) more, never anything of size V x L.
    extra = sum(p.numel() for p in net.parameters()) - vocab * 16
    assert 0 < extra < 5_000
    short = torch.tensor([[1, 7, 49_999, 2, 0, 0, 0, 0, 0, 0, 0, 0]], dtype=torch.float32)
    longer = short.clone()
    longer[0, 4] = 123.0
    feats = net(torch.cat([short, longer]))  # (2, H): SB3 passes floats
    assert feats.shape == (2, 24) and torch.isfinite(feats).all()
    assert not torch.allclose(feats[0], feats[1])
    if pooling == "gru":  # the state at the last real token, whatever the padding length
        cut = TokenExtractor(
            spaces.Box(0, vocab - 1, (4,), np.int64), pad_id=0, embed_dim=16, hidden_dim=24
        )
        cut.load_state_dict(net.state_dict())
        torch.testing.assert_close(cut(short[:, :4]), feats[:1])


def test_token_extractor_rejects_a_pooling_it_does_not_know() -> None:
    space = spaces.Box(0, 8, (10,), np.int64)
    with pytest.raises(ValueError, match=r"pooling='max' is invalid; expected one of \('gru', "):
        TokenExtractor(space, pad_id=0, pooling="max")


# --- models and the evaluation adapter ---------------------------------------------------------


@pytest.mark.parametrize("policy", SB3_POLICIES)
@pytest.mark.parametrize("agent", SB3_AGENTS)
def test_every_algorithm_and_policy_builds_and_acts_through_the_shared_evaluation(
    agent: str, policy: str
) -> None:
    config = sb3_config(agent, TINY, sb3_policy=policy, num_envs=2)
    vec = make_vec_env(TINY, 2)
    model = build_model(config, vec)
    extractor = model.policy.features_extractor_class.__name__
    assert extractor == ("TokenExtractor" if policy == "token" else "FlattenExtractor")
    result = evaluate(sb3_act(model), TINY)
    assert result.episodes == 10 and 0.0 <= result.success_rate <= 1.0
    vec.close()


@pytest.mark.parametrize("agent", SB3_AGENTS)
def test_masked_acting_never_picks_a_forbidden_token(agent: str) -> None:
    config = sb3_config(agent, TINY, num_envs=2)
    model = build_model(config, make_vec_env(TINY, 2))
    env = gym.make("TokenGen-v0", **TINY).unwrapped
    obs = np.stack([env.reset(seed=s)[0] for s in range(64)])
    mask = np.zeros((64, 9), dtype=np.int8)
    mask[:, 8] = 1  # only token 8 allowed: a masked argmax must pick it
    actions = sb3_act(model, use_mask=True)(obs, mask)
    assert actions.dtype == np.int64 and actions.shape == (64,)
    np.testing.assert_array_equal(actions, 8)


# --- training: metrics, determinism, subprocesses, learning, save/load -------------------------


def test_training_writes_namespaced_metrics_lines_and_a_progress_bar(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = sb3_config(
        "ppo",
        TINY,
        total_timesteps=512,
        num_envs=4,
        log_every=128,
        eval_every=256,
        progress=True,
        sb3_kwargs={"n_steps": 32, "batch_size": 64},
    )
    lines: list[dict] = []
    _, metrics = train_sb3(config, lambda step, line: lines.append({"step": step, **line}))
    assert len(lines) >= 4
    assert [line["step"] for line in lines] == sorted(line["step"] for line in lines)
    for key in ("charts/success", "charts/episodic_return", "charts/episodes", "time/fps"):
        assert key in lines[-1]
    assert any(key.startswith("losses/") for key in lines[-1])
    assert "losses/value_loss" in lines[-1] and "losses/policy_gradient_loss" in lines[-1]
    assert sum("eval/greedy_success" in line for line in lines) == 2  # 256 and the end
    assert lines[-1]["eval/greedy_success"] == metrics["eval/greedy_success"]
    assert metrics["charts/env_steps"] == 512
    assert "ppo: 100%" in capsys.readouterr().err  # tqdm, labelled like the custom agents


def test_same_seed_same_training() -> None:
    def run() -> dict[str, float]:
        config = sb3_config("a2c", TINY, total_timesteps=256, num_envs=4, seed=3)
        return train_sb3(config)[1]

    first, second = run(), run()
    for key in (
        "eval/greedy_reward",
        "charts/episodes",
        "charts/episodic_return",
        "losses/policy_loss",
        "losses/value_loss",
    ):
        assert first[key] == second[key], key


def test_spawned_subprocess_envs_train_exactly_like_in_process_envs() -> None:
    def run(vec_env: str) -> dict[str, float]:
        config = sb3_config(
            "maskable_ppo",
            TINY,
            total_timesteps=128,
            num_envs=2,
            vec_env=vec_env,
            start_method="spawn",
            seed=1,
            sb3_kwargs={"n_steps": 32, "batch_size": 32},
        )
        model, metrics = train_sb3(config)
        assert model.num_timesteps == 128
        return metrics

    dummy, subproc = run("dummy"), run("subproc")
    for key in ("charts/episodes", "charts/episodic_return", "losses/value_loss"):
        assert dummy[key] == subproc[key], key


@pytest.fixture(scope="module")
def learned() -> tuple:
    """MaskablePPO with the GRU token extractor, trained on the fixed-target task."""
    config = sb3_config(
        "maskable_ppo",
        TARGET,
        sb3_policy="token",
        total_timesteps=12_000,
        num_envs=8,
        eval_every=1_000,
        target_success=1.0,
        seed=0,
    )
    return train_sb3(config)


def test_maskable_ppo_token_extractor_learns_the_fixed_target(learned: tuple) -> None:
    model, metrics = learned
    assert metrics["eval/greedy_success"] >= 0.9
    assert model.num_timesteps < 12_000  # stopped at the target, well inside the budget
    assert not math.isnan(metrics["eval/episodes_to_target"])


def test_saved_model_loads_and_evaluates_to_the_same_success(
    learned: tuple, tmp_path: Path
) -> None:
    model, metrics = learned
    model.save(tmp_path / "model.zip")
    loaded = load_model(tmp_path / "model.zip", "maskable_ppo", device="cpu")
    before = evaluate_model(model, TARGET)
    after = evaluate_model(loaded, TARGET)
    assert after == before
    assert after.success_rate == metrics["eval/greedy_success"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("agent", "pooling"), [("ppo", "gru"), ("a2c", "gru"), ("dqn", "gru"), ("ppo", "mean")]
)
def test_other_algorithms_learn_the_fixed_target(agent: str, pooling: str) -> None:
    config = sb3_config(
        agent,
        TARGET,
        sb3_pooling=pooling,
        total_timesteps=20_000,
        num_envs=8,
        eval_every=1_000,
        target_success=0.9,
        seed=0,
    )
    _, metrics = train_sb3(config)
    assert metrics["eval/greedy_success"] >= 0.9
    assert not math.isnan(metrics["eval/episodes_to_target"])


# --- the training command ------------------------------------------------------------------------


def test_train_and_the_command_run_sb3_agents_into_a_run_folder(tmp_path: Path) -> None:
    from tokengym.agents.train import main

    small = {"sb3_kwargs": {"n_steps": 32, "batch_size": 32}, "num_envs": 2, "eval_every": 128}
    config = sb3_config("maskable_ppo", TINY, total_timesteps=256, seed=2, **small)
    metrics = train(dataclasses.replace(config, out=str(tmp_path / "api")))
    assert (tmp_path / "api" / "model.zip").exists() and (tmp_path / "api" / "config.json").exists()
    assert read_metrics(tmp_path / "api" / "metrics.jsonl")[-1]["charts/env_steps"] == 256
    assert metrics["charts/env_steps"] == 256
    # The same run through the training command: the same lines but for the clock.
    argv = ["--agent", "maskable_ppo", "--task", "target", "--total-timesteps", "256"]
    argv += ["--num-envs", "2", "--no-progress", "--out", str(tmp_path / "cli"), "--seed", "2"]
    argv += ["--env-kwargs", "train_size=20", "--env-kwargs", "test_size=10", "--device", "cpu"]
    argv += ["--reward-mode", "terminal", "--eval-every", "128"]
    argv += ["--sb3-kwargs", "n_steps=32", "--sb3-kwargs", "batch_size=32"]
    assert main(argv) == 0
    clock = ("charts/train_seconds", "time/fps")
    api, cli = (read_metrics(tmp_path / d / "metrics.jsonl") for d in ("api", "cli"))
    assert [{k: v for k, v in line.items() if k not in clock} for line in api] == [
        {k: v for k, v in line.items() if k not in clock} for line in cli
    ]


def test_without_sb3_an_sb3_agent_is_rejected_with_the_install_line() -> None:
    code = (
        "import sys\n"
        "import importlib.util\n"
        "_find = importlib.util.find_spec\n"
        "importlib.util.find_spec = lambda n, p=None: None if n in ('stable_baselines3', "
        "'sb3_contrib') else _find(n, p)\n"
        "from tokengym.agents import TrainConfig\n"
        "try:\n"
        "    TrainConfig(agent='ppo', task='target')\n"
        "except ModuleNotFoundError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    hint = install_hint("sb3")  # the checkout's folder: this subprocess runs in the same cwd
    assert out.stdout == f"tokengym.agents.sb3 needs stable_baselines3, sb3_contrib: {hint}\n"
