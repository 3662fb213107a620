"""Reward functions, hand-computed returns for every reward mode, and what each mode preserves."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tokengym  # noqa: F401
from tokengym import TASKS, RewardError, edit_similarity, exact_match, prefix_match

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


# Reference "abcd" (prompt 0): the target is a b c d EOS, 1/5 per token that extends the match.
# Reference "ba" (prompt 1): the target is b a EOS, 1/3 per token.
PROGRESS_TABLE = [
    (0, "abcd$", [0.2, 0.2, 0.2, 0.2, 0.2 + 1.0]),
    (0, "abd$", [0.2, 0.2, 0.0, 0.0]),
    (0, "$", [0.0]),
    (0, "bacd$", [0.0, 0.0, 0.0, 0.0, 0.0]),  # matching is of a prefix only
    (0, "abcda$", [0.2, 0.2, 0.2, 0.2, 0.0, 0.0]),  # ran on: no share for the late EOS
    (1, "ba$", [1 / 3, 1 / 3, 1 / 3 + 1.0]),
    (1, "b$", [1 / 3, 0.0]),
    (1, "bb$", [1 / 3, 0.0, 0.0]),
]


@pytest.mark.parametrize("gamma", [1.0, 0.5])
@pytest.mark.parametrize(("prompt_index", "text", "expected"), PROGRESS_TABLE)
def test_progress_rewards_by_hand(prompt_index: int, text: str, expected, gamma: float) -> None:
    env = copy_env(reward_mode="progress", gamma=gamma, max_new_tokens=7)
    eos = env.unwrapped.tokenizer.eos_id
    tokens = [eos if c == "$" else ids(env, c)[0] for c in text]
    rewards, info = play(env, tokens, prompt_index)
    assert rewards == expected  # progress is paid undiscounted: the same for every gamma
    assert info["sequence_reward"] == (1.0 if text == ("abcd$", "ba$")[prompt_index] else 0.0)


def test_progress_at_max_length_and_on_an_invalid_token() -> None:
    env = copy_env(reward_mode="progress", max_new_tokens=2)
    rewards, info = play(env, ids(env, "ba"), prompt_index=1)  # no room left for EOS
    assert rewards == [1 / 3, 1 / 3 + 1.0] and info["stop_reason"] == "max_length"
    env = copy_env(reward_mode="progress", invalid_reward=-1.0)
    rewards, info = play(env, [ids(env, "a")[0], env.unwrapped.tokenizer.pad_id])
    assert rewards == [0.2, 0.0 - 1.0] and info["stop_reason"] == "invalid_token"


def common_prefix(a: list[int], b: list[int]) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


@settings(max_examples=60, deadline=None)
@given(
    tokens=st.lists(st.integers(3, 7), min_size=1, max_size=8),
    prompt_index=st.integers(0, 1),
    reward=st.sampled_from(["exact", "edit"]),
)
def test_progress_total_is_matched_share_plus_sequence_reward(tokens, prompt_index, reward) -> None:
    """Undiscounted: sum_t r_t = k / (m + 1) + R, k = common prefix with reference + EOS."""
    env = copy_env(reward_mode="progress", reward=reward, max_new_tokens=6)
    tokens = [*tokens, env.unwrapped.tokenizer.eos_id]  # ends on EOS or at the budget
    rewards, info = play(env, tokens, prompt_index)
    played = tokens[: len(rewards)]
    target = [*env.unwrapped.reference_ids[prompt_index], env.unwrapped.tokenizer.eos_id]
    share = common_prefix(played, target) / len(target)
    assert sum(rewards) == pytest.approx(share + info["sequence_reward"], abs=1e-12)


def completions_around(reference: list[int], letters: list[int], eos: int, budget: int):
    """The reference with EOS, and completions that share its prefix then stop, go wrong or run
    on (to EOS or to the budget)."""
    out = {(*reference, eos)}
    for k in range(len(reference) + 1):
        prefix = reference[:k]
        out.add((*prefix, eos)[:budget])
        for token in letters:
            out.add((*prefix, token, eos)[:budget])
            out.add((*prefix, token, *[token] * budget)[:budget])
            out.add((*prefix, token, *reference[k:], eos)[:budget])
    return out


def episode_return(env: gym.Env, prompt_index: int, tokens, gamma: float) -> float:
    rewards, _ = play(env, list(tokens), prompt_index)
    assert len(rewards) == len(tokens)  # every completion above ends exactly on its last token
    return sum(gamma**t * r for t, r in enumerate(rewards))


@pytest.mark.parametrize(
    ("task", "reward", "gamma"),
    [(task, None, gamma) for task in TASKS for gamma in (1.0, 0.9)]
    + [("copy", "edit", 1.0), ("reverse", "prefix", 1.0)],
)
def test_progress_optimum_is_the_exact_answer(task: str, reward, gamma: float) -> None:
    env = gym.make(
        "TokenGen-v0",
        task=task,
        reward=reward,
        reward_mode="progress",
        gamma=gamma,
        train_size=8,
        test_size=2,
    )
    base = env.unwrapped
    tok = base.tokenizer
    letters = [t for t in np.flatnonzero(base.action_masks()).tolist() if t != tok.eos_id]
    rng = np.random.default_rng(0)
    for i in range(base.num_prompts):
        reference = base.reference_ids[i]
        best = episode_return(env, i, [*reference, tok.eos_id], gamma)
        others = completions_around(reference, letters, tok.eos_id, base.max_new_tokens)
        for _ in range(100):  # and random completions, ended by EOS or by the budget
            length = int(rng.integers(1, base.max_new_tokens + 1))
            sample = rng.choice([*letters, tok.eos_id], size=length).tolist()
            ends = [j for j, t in enumerate(sample) if t == tok.eos_id]
            if ends:
                sample = sample[: ends[0] + 1]
            elif length < base.max_new_tokens:
                sample.append(tok.eos_id)
            others.add(tuple(sample))
        others.discard((*reference, tok.eos_id))
        assert len(others) >= 6  # parity has 6 other completions in all; the rest have more
        worst_gap = min(best - episode_return(env, i, o, gamma) for o in others)
        assert worst_gap > 1e-9, (task, base.prompts[i], worst_gap)


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


def test_the_single_envs_scalar_dense_rule_gives_the_array_rules_values_exactly() -> None:
    from tokengym.rewards import SCALAR_STEP_RULES, STEP_RULES

    scalar, array = SCALAR_STEP_RULES["dense"].step, STEP_RULES["dense"].step
    assert scalar is not array and SCALAR_STEP_RULES["progress"] is STEP_RULES["progress"]
    for length in range(5):
        for generated in range(1, 8):
            for matched in range(min(generated, length) + 1):
                for state, gamma in ((0.0, 1.0), (0.25, 0.9), (1 / 3, 0.5)):
                    args = (matched, generated, length, state, gamma)
                    assert scalar(*args) == array(*args)  # same floats, bit for bit
    assert scalar(1, 1, 4, 0.0, 0.5) == (0.125, 0.25)


def test_the_vector_envs_array_dense_rule_gives_the_shared_rules_values_exactly() -> None:
    from tokengym.rewards import ARRAY_STEP_RULES, STEP_RULES

    fast, shared = ARRAY_STEP_RULES["dense"].step, STEP_RULES["dense"].step
    assert fast is not shared and ARRAY_STEP_RULES["progress"] is STEP_RULES["progress"]
    grid = [
        (m, g, n) for n in range(-1, 5) for g in range(1, 8) for m in range(min(g, max(n, 0)) + 1)
    ]
    matched, generated, length = (np.array(column, dtype=np.int64) for column in zip(*grid))
    for state, gamma in ((0.0, 1.0), (0.25, 0.9), (1 / 3, 0.5)):
        states = np.full(len(grid), state)
        for got, want in zip(
            fast(matched, generated, length, states, gamma),
            shared(matched, generated, length, states, gamma),
        ):
            assert got.dtype == want.dtype and got.tobytes() == want.tobytes()  # bit for bit
