"""train()'s TrainResult, load_policy and TrainedPolicy.generate on custom and SB3 run folders."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from tokengym.agents import TrainResult, load_policy, read_metrics, train

from tests.helpers import train_config

SMALL_COPY = {"task": "copy", "max_length": 3, "train_size": 50, "test_size": 10}


def _episode_completions(policy, env_kwargs: dict) -> list[str]:
    """The env's own greedy episode of each train prompt, run with the policy's act."""
    env = gym.make("TokenGen-v0", **env_kwargs)
    act, out = policy.act(), []
    for index in range(env.unwrapped.num_prompts):
        obs, info = env.reset(options={"prompt_index": index})
        done = False
        while not done:
            action = act(obs[None], info["action_mask"][None])[0]
            obs, _, term, trunc, info = env.step(int(action))
            done = term or trunc
        out.append(info["completion"])
    return out


@pytest.fixture(scope="module")
def supervised_run(tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    out = tmp_path_factory.mktemp("run") / "supervised"
    config = train_config("supervised", SMALL_COPY, iterations=30, eval_every=10, out=str(out))
    return train(dataclasses.replace(config, progress=False, target_success=None))


def test_train_returns_its_metrics_its_run_folder_and_why_it_stopped(supervised_run) -> None:
    last = read_metrics(supervised_run.run_dir / "metrics.jsonl")[-1]
    assert supervised_run.stopped == "budget"
    assert supervised_run["iterations"] == 30.0 == last["step"]
    assert supervised_run["eval/greedy_success"] == last["eval/greedy_success"]
    assert dict(supervised_run) == dict(supervised_run.metrics)  # reads as the dict it was


def test_generate_completes_prompts_as_the_env_episodes_do(supervised_run) -> None:
    policy = load_policy(supervised_run.run_dir, device="cpu")
    assert policy.agent == "supervised" and str(policy.device) == "cpu"
    prompts = policy.env.prompts
    expected = _episode_completions(policy, policy.env_kwargs)
    assert policy.generate(prompts) == expected
    assert policy.generate(prompts[0]) == expected[0]  # one prompt in, one completion out
    success = np.mean([c == r for c, r in zip(expected, policy.env.references, strict=True)])
    assert policy.evaluate("train").success_rate == pytest.approx(success)
    # Sampling is seeded: the same seed repeats, and differs from greedy somewhere.
    sampled = [policy.generate(prompts, greedy=False, seed=s) for s in (1, 1, 2)]
    assert sampled[0] == sampled[1] and sampled[0] != sampled[2]
    assert all(len(c) <= 2 for c in policy.generate(prompts, max_new_tokens=2))
    assert policy.generate([]) == []


def test_load_policy_names_what_is_missing(tmp_path: Path, supervised_run) -> None:
    with pytest.raises(FileNotFoundError, match=r"has no config\.json"):
        load_policy(tmp_path)
    (tmp_path / "config.json").write_bytes((supervised_run.run_dir / "config.json").read_bytes())
    with pytest.raises(FileNotFoundError, match=r"has no checkpoint\.pt or model\.zip"):
        load_policy(tmp_path)


@pytest.mark.slow
def test_an_sb3_run_folder_loads_and_generates(tmp_path: Path) -> None:
    tiny = {"task": "target", "train_size": 20, "test_size": 10}
    small = {"sb3_kwargs": {"n_steps": 32, "batch_size": 32}, "num_envs": 2, "eval_every": 128}
    config = train_config("maskable_ppo", tiny, total_timesteps=256, out=str(tmp_path), **small)
    result = train(dataclasses.replace(config, progress=False, target_success=None))
    assert result.run_dir == tmp_path and result.stopped == "budget"
    policy = result.load_policy(device="cpu")
    assert policy.agent == "maskable_ppo"
    assert policy.generate(policy.env.prompts) == _episode_completions(policy, policy.env_kwargs)
