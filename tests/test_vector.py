"""The native vector env against SyncVectorEnv and AsyncVectorEnv (spawn) of the single env."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import tokengym
from tests.helpers import policy_actions


def first_char_reward(prompt: str, completion: str, reference: str | None) -> float:
    """A module-level callable reward (picklable for spawn workers); not exact-match."""
    return 0.5 if completion[:1] == prompt[:1] else -0.25


def assert_same_infos(native: dict[str, Any], other: dict[str, Any]) -> None:
    assert sorted(native) == sorted(other)
    for key, value in other.items():
        mine = native[key]
        if isinstance(value, dict):  # SAME_STEP's final_info
            assert_same_infos(mine, value)
            continue
        assert mine.dtype == value.dtype, key
        assert mine.shape == value.shape, key
        if key == "final_obs":  # an object array of observations (None where none ended)
            assert [None if o is None else o.tolist() for o in mine] == [
                None if o is None else o.tolist() for o in value
            ]
        else:
            assert mine.tolist() == value.tolist(), key


def run_batch(env: gym.vector.VectorEnv, actions: np.ndarray, seed: int) -> list[tuple]:
    obs, infos = env.reset(seed=seed)
    steps = [(obs, None, None, None, infos)]
    for batch in actions:
        steps.append(env.step(batch))
    return steps


VECTOR_CONFIGS = [
    {"task": "copy", "reward_mode": "dense", "gamma": 0.9, "train_size": 30, "test_size": 5},
    {"task": "addition", "reward_mode": "terminal", "train_size": 30, "test_size": 5},
    {"task": "target", "reward_mode": "dense", "max_new_tokens": 4, "max_episode_steps": 3},
    {"task": "sort", "reward": first_char_reward, "train_size": 30, "test_size": 5},
    {"task": "reverse", "reward_mode": "progress", "gamma": 0.9, "train_size": 30, "test_size": 5},
    {"task": "copy", "reward": "edit", "reward_mode": "progress", "max_new_tokens": 4},
    {"task": "target", "reward_mode": "progress", "max_new_tokens": 4, "max_episode_steps": 3},
    {
        "task": "parity",
        "reward": "prefix",
        "reward_mode": "dense",
        "train_size": 30,
        "test_size": 5,
    },
]


def run_disabled(env: gym.vector.VectorEnv, actions: np.ndarray, seed: int) -> list[tuple]:
    """Autoreset DISABLED: after each step, the ended sub-envs are reset by `reset_mask`."""
    obs, infos = env.reset(seed=seed)
    steps = [(obs, None, None, None, infos)]
    for batch in actions:
        step = env.step(batch)
        done = step[2] | step[3]
        steps.append(step)
        if done.any():
            obs, infos = env.reset(options={"reset_mask": done})
            steps.append((obs, None, None, None, infos))
    return steps


MODES = [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP, AutoresetMode.DISABLED]


def native_and_sync(num_envs: int, mode: AutoresetMode, config: dict[str, Any]) -> tuple:
    """The native vector env and gymnasium's SyncVectorEnv of ``config``, in ``mode``."""
    native = gym.make_vec("TokenGen-v0", num_envs=num_envs, autoreset_mode=mode, **config)
    sync = gym.make_vec(
        "TokenGen-v0",
        num_envs=num_envs,
        vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": mode},
        **config,
    )
    return native, sync


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
@pytest.mark.parametrize("config", VECTOR_CONFIGS, ids=lambda c: "-".join(map(str, c.values())))
def test_native_vector_env_matches_sync_vector_env(
    config: dict[str, Any], mode: AutoresetMode
) -> None:
    num_envs = 6
    native, sync = native_and_sync(num_envs, mode, config)
    assert isinstance(native, tokengym.TokenGenVectorEnv)
    assert isinstance(sync, gym.vector.SyncVectorEnv)
    assert native.autoreset_mode == sync.autoreset_mode == native.metadata["autoreset_mode"]
    tok = native.tokenizer
    actions = policy_actions(4, tok.vocab_size, tok.eos_id, 60 * num_envs).reshape(60, num_envs)
    run = run_disabled if mode == AutoresetMode.DISABLED else run_batch
    ended = 0
    for mine, theirs in zip(run(native, actions, 11), run(sync, actions, 11), strict=True):
        assert mine[0].tolist() == theirs[0].tolist()
        for a, b in zip(mine[1:4], theirs[1:4]):
            assert (a is None and b is None) or (a.dtype == b.dtype and a.tolist() == b.tolist())
        assert_same_infos(mine[4], theirs[4])
        final = mine[4].get("final_info", mine[4])  # SAME_STEP: the ends are in final_info
        ended += sum(reason in tokengym.env.STOP_REASONS for reason in final["stop_reason"])
    assert ended > 20  # many episodes ended, so the autoreset path was compared too


def test_native_vector_env_matches_async_vector_env_with_spawn() -> None:
    config = {"task": "copy", "reward_mode": "dense", "train_size": 30, "test_size": 5}
    native = gym.make_vec("TokenGen-v0", num_envs=2, **config)
    spawned = gym.make_vec(
        "TokenGen-v0",
        num_envs=2,
        vectorization_mode="async",
        vector_kwargs={"context": "spawn"},
        **config,
    )
    try:
        tok = native.tokenizer
        actions = policy_actions(5, tok.vocab_size, tok.eos_id, 40).reshape(20, 2)
        for mine, theirs in zip(run_batch(native, actions, 3), run_batch(spawned, actions, 3)):
            assert mine[0].tolist() == theirs[0].tolist()
            for a, b in zip(mine[1:4], theirs[1:4]):
                assert (a is None and b is None) or a.tolist() == b.tolist()
            assert_same_infos(mine[4], theirs[4])
    finally:
        spawned.close()


def test_pinned_prompts_per_sub_env() -> None:
    env = gym.make_vec("TokenGen-v0", num_envs=3, task="copy", split="test")
    _, infos = env.reset(seed=0, options={"prompt_index": np.array([2, 0, 1])})
    assert infos["prompt_index"].tolist() == [2, 0, 1]
    assert infos["prompt"].tolist() == [env.prompts[2], env.prompts[0], env.prompts[1]]
    _, infos = env.reset(options={"prompt_index": 4})
    assert infos["prompt_index"].tolist() == [4, 4, 4]


def test_copy_false_returns_the_internal_buffer() -> None:
    env = gym.make_vec("TokenGen-v0", num_envs=2, task="copy", copy=False)
    first, _ = env.reset(seed=0)
    second = env.step(np.array([4, 4]))[0]
    assert first is second


def test_perfect_policy_gets_reward_one_in_every_sub_env() -> None:
    env = gym.make_vec("TokenGen-v0", num_envs=4, task="reverse", reward_mode="dense")
    _, infos = env.reset(seed=5)
    answers = [env.reference_ids[i] + [env.tokenizer.eos_id] for i in infos["prompt_index"]]
    returns = np.zeros(4)
    for t in range(max(map(len, answers))):
        actions = np.array([a[min(t, len(a) - 1)] for a in answers])
        active = np.array([t < len(a) for a in answers])
        _, rewards, terminated, _, infos = env.step(actions)
        returns += np.where(active, rewards, 0.0)
        assert terminated.tolist() == [t == len(a) - 1 for a in answers]
    assert returns == pytest.approx(np.ones(4))


def test_disabled_autoreset_needs_a_reset_of_the_ended_sub_envs() -> None:
    env = gym.make_vec("TokenGen-v0", num_envs=2, task="copy", autoreset_mode="Disabled")
    env.reset(seed=0)
    eos = env.tokenizer.eos_id
    assert env.step(np.array([eos, 4]))[2].tolist() == [True, False]
    with pytest.raises(tokengym.ResetNeeded) as err:
        env.step(np.array([4, 4]))
    assert str(err.value) == (
        "step() called on sub-envs [0] after their episodes ended; with "
        "autoreset_mode=DISABLED call reset(options={'reset_mask': mask}) first"
    )
    with pytest.raises(tokengym.ConfigError, match=r"must be a bool array of shape \(2,\)"):
        env.reset(options={"reset_mask": np.array([1, 0])})
    _, infos = env.reset(options={"reset_mask": np.array([True, False])})
    assert infos["_prompt"].tolist() == [True, False]
    assert env.step(np.array([4, 4]))[2].tolist() == [False, False]


def test_unknown_autoreset_mode() -> None:
    with pytest.raises(tokengym.ConfigError) as err:
        gym.make_vec("TokenGen-v0", num_envs=2, autoreset_mode="never")
    assert str(err.value) == (
        "autoreset_mode must be an AutoresetMode or one of ['NextStep', 'SameStep', "
        "'Disabled'], got 'never'"
    )
