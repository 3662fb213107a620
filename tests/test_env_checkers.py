"""Contract tests: Gymnasium's and SB3's checkers, determinism, pickling, for every config."""

from __future__ import annotations

import copy
import pickle
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import tokengym  # noqa: F401  (registers TokenGen-v0)
from tests.helpers import CONFIGS, config_id, policy_actions


@pytest.fixture(params=CONFIGS, ids=[config_id(c) for c in CONFIGS])
def config(request: pytest.FixtureRequest) -> dict:
    return request.param


def test_gymnasium_check_env_without_warnings(config: dict) -> None:
    env = gym.make("TokenGen-v0", **config)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped, skip_render_check=False)


def test_sb3_check_env_without_warnings(config: dict) -> None:
    env = gym.make("TokenGen-v0", **config).unwrapped
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sb3_check_env(env, warn=True)


def test_passive_checker_through_make_with_warnings_as_errors(config: dict) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env = gym.make("TokenGen-v0", **config)
        env.reset(seed=3)
        for _ in range(30):
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            if terminated or truncated:
                env.reset()


def shared_arrays(first: tuple, second: tuple) -> list[str]:
    """Which (obs, info) parts of two calls' returns share memory: Gymnasium 1.4's checker
    (`check_env` and the passive checker) rejects any, read-only or not."""
    (obs_1, info_1), (obs_2, info_2) = first, second
    shared = ["obs"] if np.shares_memory(obs_1, obs_2) else []
    for key in info_1.keys() & info_2.keys():
        if isinstance(info_1[key], np.ndarray) and np.shares_memory(info_1[key], info_2[key]):
            shared.append(key)
    return shared


def test_no_two_calls_return_the_same_arrays(config: dict) -> None:
    """Users keep what each call returns (replay buffers), so each call returns its own arrays."""
    env = gym.make("TokenGen-v0", **config)
    v = env.unwrapped.tokenizer
    previous = env.reset(seed=0)
    ends = 0
    for action in policy_actions(3, v.vocab_size, v.eos_id, 40):
        obs, _, terminated, truncated, info = env.step(action)
        assert shared_arrays(previous, (obs, info)) == []
        previous = (obs, info)
        if terminated or truncated:
            ends += 1
            after_reset = env.reset()
            assert shared_arrays(previous, after_reset) == []
            previous = after_reset
    assert ends > 0


def rollout(env: gym.Env, actions: np.ndarray, seed: int) -> list[tuple]:
    """(obs, reward, terminated, truncated, info) of every step, resetting at episode ends."""
    obs, info = env.reset(seed=seed)
    trace: list[tuple] = [(obs.tolist(), info["prompt"], info["prompt_index"])]
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        trace.append((obs.tolist(), reward, terminated, truncated, repr(info)))
        if terminated or truncated:
            obs, info = env.reset()
            trace.append((obs.tolist(), info["prompt"], info["prompt_index"]))
    return trace


def test_same_seed_same_200_steps_across_episodes(config: dict) -> None:
    env = gym.make("TokenGen-v0", **config)
    v = env.unwrapped.tokenizer
    actions = policy_actions(0, v.vocab_size, v.eos_id, 200)
    first, second = rollout(env, actions, seed=7), rollout(env, actions, seed=7)
    assert first == second
    episodes = sum(1 for step in first if len(step) == 3)
    assert episodes > 10  # the rollout crossed many episode boundaries
    assert rollout(env, actions, seed=8) != first


@pytest.mark.parametrize("clone", [pickle.loads, copy.deepcopy], ids=["pickle", "deepcopy"])
def test_clone_mid_episode_continues_identically(config: dict, clone) -> None:
    env = gym.make("TokenGen-v0", **config).unwrapped
    v = env.tokenizer
    env.reset(seed=1)
    if env.max_new_tokens > 1:
        env.step(5)  # mid-episode
    payload = pickle.dumps(env) if clone is pickle.loads else env
    twin = clone(payload)
    actions = policy_actions(2, v.vocab_size, v.eos_id, 60)
    for action in actions:
        a, b = env.step(action), twin.step(action)
        assert a[0].tolist() == b[0].tolist() and a[1:4] == b[1:4] and repr(a[4]) == repr(b[4])
        if a[2]:
            assert env.reset()[0].tolist() == twin.reset()[0].tolist()


INFO_TYPES = {
    "prompt": str,
    "reference": str,
    "prompt_index": int,
    "completion": str,
    "sequence_reward": float,
    "success": bool,
    "stop_reason": str,
    "gamma": float,
    "action_mask": np.ndarray,
    "action_mask_bool": np.ndarray,
}


def test_every_info_has_the_same_keys_and_types(config: dict) -> None:
    """Clients that batch infos (Tianshou) need the same keys and types on every step."""
    env = gym.make("TokenGen-v0", **config)
    v = env.unwrapped.tokenizer
    _, info = env.reset(seed=0)
    infos, ends = [info], []
    for action in policy_actions(3, v.vocab_size, v.eos_id, 40):
        _, _, terminated, truncated, info = env.step(action)
        infos.append(info)
        if terminated or truncated:
            ends.append(info)
            infos.append(env.reset()[1])
    assert ends and len(ends) < len(infos)
    for info in infos:
        assert {k: type(v) for k, v in info.items()} == INFO_TYPES
        assert info["action_mask"].dtype == np.int8
        assert info["action_mask_bool"].tolist() == info["action_mask"].astype(bool).tolist()
    before_end = [i for i in infos if i["stop_reason"] == ""]
    assert len(before_end) == len(infos) - len(ends)
    assert {(i["completion"], i["sequence_reward"], i["success"]) for i in before_end} == {
        ("", 0.0, False)
    }
