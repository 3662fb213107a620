"""The vector env after an error inside a step, argument checks with pinned messages, and the
per-process dataset cache."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import tokengym
from tokengym.tasks import dataset as dataset_module


class FailOnce:
    """A reward that raises on the first completion starting with "b", then behaves."""

    def __init__(self) -> None:
        self.failed = False

    def __call__(self, prompt: str, completion: str, reference: str | None) -> float:
        if completion.startswith("b") and not self.failed:
            self.failed = True
            raise ValueError("boom")
        return float(completion == reference)


def test_a_reward_error_leaves_the_vector_env_needing_a_full_reset() -> None:
    reward = FailOnce()
    env = gym.make_vec("TokenGen-v0", num_envs=2, task="copy", reward=reward)
    env.reset(seed=0)
    eos = env.tokenizer.eos_id
    env.step(np.array([4, 5]))  # "a", "b"
    with pytest.raises(tokengym.RewardError, match="raised ValueError: boom"):
        env.step(np.array([eos, eos]))
    message = (
        "{} called after a step raised (RewardError: the reward function {!r} raised ValueError: "
        "boom (prompt {!r}, completion 'b')), which left the sub-envs mid-step; call reset() (of "
        "every sub-env) first"
    )
    prompt = env.prompts[env.unwrapped._index[1]]
    with pytest.raises(tokengym.ResetNeeded) as err:
        env.step(np.array([4, 4]))
    assert str(err.value) == message.format("step()", reward, prompt)
    with pytest.raises(tokengym.ResetNeeded) as err:
        env.reset(options={"reset_mask": np.array([True, False])})
    assert str(err.value) == message.format("reset(options={'reset_mask': ...})", reward, prompt)
    # A full reset gives the same episodes as a fresh env with the same seed.
    fresh = gym.make_vec("TokenGen-v0", num_envs=2, task="copy", reward=reward)
    actions = [np.array([4, 5]), np.array([eos, 4]), np.array([4, eos]), np.array([5, 5])]
    assert env.reset(seed=3)[0].tolist() == fresh.reset(seed=3)[0].tolist()
    for batch in actions:
        mine, theirs = env.step(batch), fresh.step(batch)
        assert mine[0].tolist() == theirs[0].tolist()
        assert mine[1].tolist() == theirs[1].tolist() and mine[2].tolist() == theirs[2].tolist()
        assert mine[4]["completion"].tolist() == theirs[4]["completion"].tolist()


def test_a_bad_action_changes_nothing() -> None:
    env, fresh = (gym.make_vec("TokenGen-v0", num_envs=2, task="copy") for _ in range(2))
    env.reset(seed=0), fresh.reset(seed=0)
    with pytest.raises(tokengym.InvalidActionError):
        env.step(np.array([4, 99]))
    for batch in (np.array([4, 5]), np.array([3, 4])):
        mine, theirs = env.step(batch), fresh.step(batch)
        assert mine[0].tolist() == theirs[0].tolist() and mine[1].tolist() == theirs[1].tolist()


def test_a_directory_as_the_dataset_says_so(tmp_path: Path) -> None:
    with pytest.raises(tokengym.DatasetError) as err:
        gym.make("TokenGen-v0", dataset=str(tmp_path))
    assert str(err.value) == f"dataset file {str(tmp_path)!r} is a directory; pass a JSONL file"


@pytest.mark.parametrize("seed", ["x", -1, 1.5, [0], [0, "a"], True])
def test_vector_seed_that_is_not_a_seed(seed: object) -> None:
    env = gym.make_vec("TokenGen-v0", num_envs=2)
    with pytest.raises(tokengym.ConfigError) as err:
        env.reset(seed=seed)
    assert str(err.value) == (
        f"seed must be None, an int >= 0 or a sequence of 2 entries (None or an int >= 0), got "
        f"{seed!r}"
    )


def test_vector_seeds_as_a_sequence_or_numpy_ints_equal_sync() -> None:
    native = gym.make_vec("TokenGen-v0", num_envs=3)
    sync = gym.make_vec("TokenGen-v0", num_envs=3, vectorization_mode="sync")
    assert native.reset(seed=np.int64(4))[0].tolist() == sync.reset(seed=4)[0].tolist()
    assert native.reset(seed=[7, None, 2])[0][[0, 2]].tolist() == (
        sync.reset(seed=[7, None, 2])[0][[0, 2]].tolist()
    )


def test_reset_options_that_are_a_list_are_an_error() -> None:
    with pytest.raises(tokengym.ConfigError) as err:
        gym.make("TokenGen-v0").reset(options=[])
    assert str(err.value) == (
        "reset options must be a dict (keys ['prompt_index', 'prefix']) or None, got [] of type "
        "list"
    )


def test_numpy_integers_for_max_new_tokens_and_num_envs() -> None:
    env = gym.make_vec("TokenGen-v0", num_envs=np.int64(3), max_new_tokens=np.int64(7))
    plain = gym.make_vec("TokenGen-v0", num_envs=3, max_new_tokens=7)
    assert env.num_envs == 3 and type(env.num_envs) is int
    assert env.reset(seed=1)[0].tolist() == plain.reset(seed=1)[0].tolist()
    single = gym.make("TokenGen-v0", max_new_tokens=np.int32(7), max_prompt_tokens=np.uint8(6))
    assert single.observation_space.shape == (15,)
    with pytest.raises(tokengym.ConfigError, match=r"max_new_tokens=np.True_ is invalid"):
        gym.make("TokenGen-v0", max_new_tokens=np.True_)


def test_a_dataset_file_is_parsed_once_per_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "qa.jsonl"
    records = [{"prompt": p, "answer": p[::-1]} for p in ("ab", "ba", "abb", "bab", "aab")]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    reads: list[str] = []
    read_lines = dataset_module._read_lines
    monkeypatch.setattr(dataset_module, "_read_lines", lambda p: reads.append(p) or read_lines(p))
    first = gym.make("TokenGen-v0", dataset=str(path))
    gym.make_vec("TokenGen-v0", num_envs=2, dataset=str(path), split="test")
    assert len(reads) == 1
    path.write_text("".join(json.dumps(r) + "\n" for r in records[:4]))  # a changed file
    second = gym.make("TokenGen-v0", dataset=str(path))
    assert len(reads) == 2
    assert second.unwrapped.num_prompts + 1 == first.unwrapped.num_prompts
