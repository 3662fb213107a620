"""Reward functions, hand-computed returns for both reward modes, and the shaping identity."""

from __future__ import annotations

import math

import gymnasium as gym
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tokengym  # noqa: F401
from tokengym import RewardError, edit_similarity, exact_match, prefix_match

REWARD_TABLE = [
    (exact_match, "abc", "abc", 1.0),
    (exact_match, "ab", "abc", 0.0),
    (prefix_match, "abx", "abcd", 0.5),
    (prefix_match, "abcdef", "abcd", 4 / 6),
    (prefix_match, "", "", 1.0),
    (prefix_match, "", "ab", 0.0),
    (edit_similarity, "abxd", "abcd", 0.75),
    (edit_similarity, "kitten", "sitting", 1 - 3 / 7),
    (edit_similarity, "", "", 1.0),
    (edit_similarity, "abc", "", 0.0),
]


@pytest.mark.parametrize(("fn", "completion", "reference", "expected"), REWARD_TABLE)
def test_reward_functions(fn, completion: str, reference: str, expected: float) -> None:
    assert fn("prompt", completion, reference) == pytest.approx(expected, abs=1e-12)


def play(env: gym.Env, tokens: list[int], prompt_index: int = 0) -> tuple[list[float], dict]:
    env.reset(seed=0, options={"prompt_index": prompt_index})
    rewards, info = [], {}
    for token in tokens:
        _, reward, terminated, _, info = env.step(token)
        rewards.append(reward)
        if terminated:
            break
    return rewards, info


def ids(env: gym.Env, text: str) -> list[int]:
    return env.unwrapped.tokenizer.encode(text)


def copy_env(**kwargs) -> gym.Env:
    data = [{"prompt": "abcd", "answer": "abcd"}, {"prompt": "ba", "answer": "ba"}]
    return gym.make("TokenGen-v0", dataset={"train": data, "test": data}, **kwargs)


def test_terminal_rewards_by_hand() -> None:
    env = copy_env(reward_mode="terminal")
    eos = env.unwrapped.tokenizer.eos_id
    rewards, info = play(env, [*ids(env, "abcd"), eos])
    assert rewards == [0.0, 0.0, 0.0, 0.0, 1.0]
    assert info["completion"] == "abcd" and info["success"] is True
    assert info["stop_reason"] == "eos" and info["sequence_reward"] == 1.0
    rewards, info = play(env, [*ids(env, "abd"), eos])
    assert rewards == [0.0, 0.0, 0.0, 0.0] and info["success"] is False


def test_dense_rewards_by_hand() -> None:
    # Reference "abcd": Phi after "a", "ab", "abd" = 1/4, 2/4, 2/4; the EOS step pays R - Phi.
    env = copy_env(reward_mode="dense", gamma=0.5)
    eos = env.unwrapped.tokenizer.eos_id
    rewards, _ = play(env, [*ids(env, "abd"), eos])
    assert rewards == [0.5 * 0.25, 0.5 * 0.5 - 0.25, 0.5 * 0.5 - 0.5, 0.0 - 0.5]
    rewards, _ = play(env, [*ids(env, "abcd"), eos])
    assert rewards == [0.125, 0.25 - 0.25, 0.375 - 0.5, 0.5 - 0.75, 1.0 - 1.0]
    # Over-long prefixes lower Phi: "abcda" matched 4 of max(4, 5).
    env = copy_env(reward_mode="dense", gamma=0.5, max_new_tokens=7)
    rewards, _ = play(env, ids(env, "abcdab"))
    assert rewards[4:] == [0.5 * 4 / 5 - 1.0, 0.5 * 4 / 6 - 4 / 5]


def test_max_length_is_terminated_and_scored() -> None:
    env = copy_env(reward_mode="terminal", max_new_tokens=2)
    rewards, info = play(env, ids(env, "ba"), prompt_index=1)
    assert rewards == [0.0, 1.0] and info["stop_reason"] == "max_length" and info["success"]


def test_invalid_token_ends_the_episode_as_failure() -> None:
    env = copy_env(reward_mode="dense", invalid_reward=-1.0)
    pad = env.unwrapped.tokenizer.pad_id
    rewards, info = play(env, [ids(env, "a")[0], pad])
    assert rewards == [0.25, -1.0 - 0.25]
    assert info["stop_reason"] == "invalid_token" and info["success"] is False
    assert info["completion"] == "a" and info["sequence_reward"] == -1.0


@settings(max_examples=60, deadline=None)
@given(
    gamma=st.sampled_from([1.0, 0.99, 0.9, 0.5]),
    tokens=st.lists(st.integers(3, 7), min_size=1, max_size=8),
    prompt_index=st.integers(0, 1),
)
def test_discounted_dense_return_equals_terminal_return(gamma, tokens, prompt_index) -> None:
    """sum_t gamma^t r_t(dense) = sum_t gamma^t r_t(terminal) - Phi(s_0), with Phi(s_0) = 0."""
    returns = []
    for mode in ("dense", "terminal"):
        env = copy_env(reward_mode=mode, gamma=gamma, reward="edit")
        rewards, _ = play(env, [*tokens, env.unwrapped.tokenizer.eos_id], prompt_index)
        returns.append(sum(gamma**t * r for t, r in enumerate(rewards)))
    assert returns[0] == pytest.approx(returns[1], abs=1e-12)


def test_dense_reward_per_step_before_the_end_is_potential_difference() -> None:
    env = copy_env(reward_mode="dense", gamma=1.0)
    rewards, _ = play(env, ids(env, "ab"))
    assert rewards == [0.25, 0.25]


def raising_reward(prompt: str, completion: str, reference: str | None) -> float:
    raise KeyError("boom")


@pytest.mark.parametrize(
    ("reward", "message"),
    [
        (
            raising_reward,
            "the reward function 'raising_reward' raised KeyError: 'boom' "
            "(prompt 'ba', completion 'b')",
        ),
        (
            lambda p, c, r: math.nan,
            "the reward function must return a finite number, got nan "
            "(prompt 'ba', completion 'b')",
        ),
        (
            lambda p, c, r: math.inf,
            "the reward function must return a finite number, got inf "
            "(prompt 'ba', completion 'b')",
        ),
        (
            lambda p, c, r: None,
            "the reward function must return a finite number, got None "
            "(prompt 'ba', completion 'b')",
        ),
    ],
)
def test_reward_function_failures_are_raised_with_the_prompt(reward, message: str) -> None:
    env = copy_env(reward=reward)
    env.reset(options={"prompt_index": 1})
    env.step(ids(env, "b")[0])
    with pytest.raises(RewardError) as err:
        env.step(env.unwrapped.tokenizer.eos_id)
    assert str(err.value) == message


def test_callable_reward_gets_prompt_completion_reference() -> None:
    seen = []

    def reward(prompt: str, completion: str, reference: str | None) -> float:
        seen.append((prompt, completion, reference))
        return 0.25

    env = copy_env(reward=reward, success_threshold=0.2)
    rewards, info = play(env, [*ids(env, "b"), env.unwrapped.tokenizer.eos_id], prompt_index=1)
    assert seen == [("ba", "b", "ba")] and rewards == [0.0, 0.25] and info["success"] is True
