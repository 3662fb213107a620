"""The native vector env's step returns fresh values: what a caller keeps, or writes, from one
step does not change with, or change, the steps after it; the action checks are exact."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from tests.helpers import policy_actions
from tokengym.errors import InvalidActionError

CONFIG: dict[str, Any] = {"task": "copy", "reward_mode": "dense", "train_size": 30}


def make(num_envs: int = 8, **kwargs: Any) -> Any:
    return gym.make_vec("TokenGen-v0", num_envs=num_envs, **CONFIG, **kwargs)


def actions_for(env: Any, steps: int) -> np.ndarray:
    tok = env.tokenizer
    draws = policy_actions(3, tok.vocab_size, tok.eos_id, steps * env.num_envs)
    return draws.reshape(steps, env.num_envs)


@pytest.mark.parametrize("text_infos", [True, False])
def test_values_kept_from_a_step_do_not_change_with_later_steps(text_infos: bool) -> None:
    env = make(text_infos=text_infos)
    env.reset(seed=3)
    kept, snapshots = [], []
    for batch in actions_for(env, 40):
        step = env.step(batch)
        kept.append(step)
        snapshots.append(copy.deepcopy(step))
    ended = sum(int(step[2].sum()) for step in kept)
    assert ended > 30  # rows ended and reset, so the per-row buffers were rewritten often
    for step, snapshot in zip(kept, snapshots):
        for value, frozen in zip(step[:4], snapshot[:4]):
            assert value.tolist() == frozen.tolist()
        assert step[4].keys() == snapshot[4].keys()
        for key, value in step[4].items():
            assert value.tolist() == snapshot[4][key].tolist(), key


def test_writing_into_returned_arrays_does_not_change_the_episodes() -> None:
    env, untouched = make(), make()
    env.reset(seed=5)
    untouched.reset(seed=5)
    for batch in actions_for(env, 30):
        caller_batch = batch.copy()
        obs, rewards, terminated, truncated, infos = env.step(caller_batch)
        assert caller_batch.tolist() == batch.tolist()  # the actions are not written
        want = untouched.step(batch)
        assert obs.tolist() == want[0].tolist() and terminated.tolist() == want[2].tolist()
        assert rewards.tolist() == want[1].tolist() and infos["prompt"].tolist() == (
            want[4]["prompt"].tolist()
        )
        for array in (obs, rewards, terminated, truncated, infos["prompt_index"]):
            array[...] = np.zeros_like(array)  # a caller that reuses the arrays
        infos["prompt"][:] = "x"


def test_out_of_range_actions_raise_except_in_rows_that_are_resetting() -> None:
    env = make(num_envs=2)
    env.reset(seed=0)
    eos = env.tokenizer.eos_id
    vocab = env.tokenizer.vocab_size
    for bad in (-1, vocab, np.iinfo(np.int64).min):
        with pytest.raises(InvalidActionError, match=f"action {bad} of sub-env 1 is out of range"):
            env.step(np.array([eos, bad]))
    terminated = env.step(np.array([eos, eos]))[2]
    assert terminated.tolist() == [True, True]
    # Both rows reset on this step (NextStep): their actions are ignored, even out of range.
    obs, rewards, terminated, _, infos = env.step(np.array([-1, vocab]))
    assert rewards.tolist() == [0.0, 0.0] and terminated.tolist() == [False, False]
    assert obs[:, 0].tolist() == [env.tokenizer.bos_id] * 2  # fresh rows: BOS not overwritten
    assert infos["stop_reason"].tolist() == ["", ""]
    with pytest.raises(InvalidActionError, match="action -1 of sub-env 0 is out of range"):
        env.step(np.array([-1, eos]))
    with pytest.raises(InvalidActionError, match="actions must be an int array of shape"):
        env.step(np.array([0.0, 1.0]))


@pytest.mark.parametrize("clone", [pickle.loads, copy.deepcopy], ids=["pickle", "deepcopy"])
def test_a_clone_mid_episode_steps_as_the_original(clone: Any) -> None:
    env = make().unwrapped
    env.reset(seed=2)
    batches = actions_for(env, 30)
    env.step(batches[0])
    twin = clone(pickle.dumps(env) if clone is pickle.loads else env)
    for batch in batches[1:]:
        mine, theirs = env.step(batch), twin.step(batch)
        for a, b in zip(mine[:4], theirs[:4]):
            assert a.tolist() == b.tolist()
        assert {k: v.tolist() for k, v in mine[4].items()} == {
            k: v.tolist() for k, v in theirs[4].items()
        }
    assert twin._flat_obs.base is not None and twin._generated.base is twin._state
