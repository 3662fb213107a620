"""Reset to a prefix: `reset(options={"prompt_index": i, "prefix": ids})` equals stepping `ids`."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import tokengym
from tests.helpers import CONFIGS, config_id, policy_actions
from tests.test_vector import assert_same_infos, first_char_reward, native_and_sync


def ordinary_tokens(env: Any) -> np.ndarray:
    """The ids a prefix may hold: all but EOS, PAD, BOS and SEP."""
    return np.array([t for t in range(env.tokenizer.vocab_size) if t not in (0, 1, 2, 3)])


def random_prefix(rng: np.random.Generator, env: Any, index: int) -> list[int]:
    """Half the time a prefix of the reference (so shaping has matches to carry), else random."""
    length = int(rng.integers(0, env.max_new_tokens))  # 0 .. max_new_tokens - 1
    reference = env.reference_ids[index] or []
    if rng.random() < 0.5 and reference:
        return reference[: min(length, len(reference))]
    return rng.choice(ordinary_tokens(env), size=length).tolist()


def plain(info: dict[str, Any]) -> dict[str, Any]:
    """The info with its arrays (the masks) as lists, so that infos compare with ==."""
    return {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in info.items()}


def same_step(a: tuple, b: tuple) -> None:
    assert a[0].tolist() == b[0].tolist()
    assert a[1:4] == b[1:4]
    assert plain(a[4]) == plain(b[4])


@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
def test_prefix_reset_equals_stepping_the_prefix(config: dict[str, Any]) -> None:
    with_prefix, stepped = tokengym.TokenGenEnv(**config), tokengym.TokenGenEnv(**config)
    tok, rng = stepped.tokenizer, np.random.default_rng(0)
    for episode in range(6):
        index = episode % stepped.num_prompts
        prefix = random_prefix(rng, stepped, index)
        obs, info = with_prefix.reset(options={"prompt_index": index, "prefix": prefix})
        step = stepped.reset(options={"prompt_index": index})
        for token in prefix:
            step = stepped.step(token)
            assert not step[2]
        assert obs.tolist() == step[0].tolist()
        assert plain(info) == plain(step[-1])
        actions = policy_actions(episode, tok.vocab_size, tok.eos_id, 40)
        reference = [*(stepped.reference_ids[index] or [])[len(prefix) :], tok.eos_id]
        if episode % 2:  # finish with the right answer, so rewards of a success are compared
            actions[: len(reference)] = reference
        for action in actions:
            same_step(with_prefix.step(action), expected := stepped.step(action))
            if expected[2]:
                break
        else:
            raise AssertionError("the episode did not end")


VECTOR_PREFIX_CONFIGS = [
    {"task": "copy", "reward_mode": "dense", "gamma": 0.9, "train_size": 20, "test_size": 5},
    {"task": "reverse", "reward_mode": "progress", "train_size": 20, "test_size": 5},
    {"task": "sort", "reward": first_char_reward, "train_size": 20, "test_size": 5},
    {"task": "target", "reward_mode": "dense", "max_new_tokens": 4, "max_episode_steps": 3},
]


def run_steps(env: Any, actions: np.ndarray) -> list[tuple]:
    return [env.step(batch) for batch in actions]


def assert_same_runs(mine: list[tuple], theirs: list[tuple]) -> None:
    for a, b in zip(mine, theirs, strict=True):
        assert a[0].tolist() == b[0].tolist()
        for x, y in zip(a[1:4], b[1:4]):
            assert x.dtype == y.dtype and x.tolist() == y.tolist()
        assert_same_infos(a[4], b[4])


@pytest.mark.parametrize("mode", list(AutoresetMode), ids=lambda m: m.value)
@pytest.mark.parametrize("config", VECTOR_PREFIX_CONFIGS, ids=lambda c: "-".join(map(str, c)))
def test_native_vector_prefix_reset_equals_sync(config: dict[str, Any], mode: Any) -> None:
    num_envs = 4
    native, sync = native_and_sync(num_envs, mode, config)
    tok = native.tokenizer
    prefix = (native.reference_ids[1] or [4])[:2][: native.max_new_tokens - 1]
    options = {"prompt_index": 1, "prefix": prefix}  # the same for every sub-env
    mine, theirs = native.reset(seed=3, options=options), sync.reset(seed=3, options=options)
    assert_same_runs(
        [(mine[0], *[np.zeros(1)] * 3, mine[1])], [(theirs[0], *[np.zeros(1)] * 3, theirs[1])]
    )
    actions = policy_actions(1, tok.vocab_size, tok.eos_id, 8 * num_envs).reshape(8, num_envs)
    if mode is AutoresetMode.DISABLED:
        actions = actions[:1]  # one step, then the ended rows would need a reset
    assert_same_runs(run_steps(native, actions), run_steps(sync, actions))

    # Per-row prefixes and prompts in one reset equal one reset per row of SyncVectorEnv.
    rng = np.random.default_rng(2)
    indices = rng.integers(0, native.num_prompts, size=num_envs)
    prefixes = [random_prefix(rng, native, int(i)) for i in indices]
    prefixes[0] = None
    mask = np.array([True, True, False, True])
    native.reset(seed=5), sync.reset(seed=5)
    mine = native.reset(options={"reset_mask": mask, "prompt_index": indices, "prefix": prefixes})
    for row in np.flatnonzero(mask):
        one = np.arange(num_envs) == row
        theirs = sync.reset(
            options={
                "reset_mask": one,
                "prompt_index": int(indices[row]),
                "prefix": prefixes[row] or [],
            }
        )
    assert mine[0].tolist() == theirs[0].tolist()
    actions = actions[:1] if mode is AutoresetMode.DISABLED else actions
    assert_same_runs(run_steps(native, actions), run_steps(sync, actions))


def bad_prefix_message(prefix: object, **config: Any) -> str:
    env = tokengym.TokenGenEnv(
        task="copy", **config
    )  # max_new_tokens 6; EOS 3, PAD 0, BOS 1, SEP 2
    with pytest.raises(tokengym.ConfigError) as err:
        env.reset(options={"prompt_index": 0, "prefix": prefix})
    return str(err.value)


SPECIAL = (
    "a prefix holds tokens generated before the episode's end, so it may not contain EOS, PAD, "
    "BOS or SEP"
)
TOO_LONG = (
    "prefix has {} tokens; at most max_new_tokens - 1 = 5 fit (prefix[5] would be the step "
    "that ends the episode at max_length)"
)


@pytest.mark.parametrize(
    ("prefix", "message"),
    [
        ([4, 3], f"prefix[1] = 3 is EOS: {SPECIAL}"),
        ([0], f"prefix[0] = 0 is PAD: {SPECIAL}"),
        ([4, 5, 1], f"prefix[2] = 1 is BOS: {SPECIAL}"),
        ([4, 2, 4], f"prefix[1] = 2 is SEP: {SPECIAL}"),
        (
            [4] * 6,
            TOO_LONG.format(6),
        ),
        (
            [4] * 9,
            TOO_LONG.format(9),
        ),
        ([4, 9], "prefix[1] = 9 is out of range: token ids run from 0 to 8"),
        ([4, -1], "prefix[1] = -1 is out of range: token ids run from 0 to 8"),
        ([4, "a"], "prefix[1] must be an int token id in [0, 8], got 'a'"),
        ([True], "prefix[0] must be an int token id in [0, 8], got True"),
        ([4.0], "prefix[0] must be an int token id in [0, 8], got 4.0"),
        ("ab", "prefix must be a sequence of token ids, got 'ab'"),
        (5, "prefix must be a sequence of token ids, got 5"),
    ],
)
def test_bad_prefix_is_an_error_naming_the_position(prefix: object, message: str) -> None:
    assert bad_prefix_message(prefix, max_new_tokens=6) == message


def test_longest_prefix_leaves_one_step() -> None:
    env = tokengym.TokenGenEnv(
        task="copy", min_length=2, max_length=2, max_new_tokens=3, train_size=20, test_size=5
    )
    obs, _ = env.reset(options={"prompt_index": 0, "prefix": np.array([4, 5])})
    start = len(env.prompt_ids[0]) + 2
    assert obs[start : start + 3].tolist() == [4, 5, 0]
    _, _, terminated, _, info = env.step(4)
    assert terminated and info["stop_reason"] == "max_length" and info["completion"] == "aba"


def test_vector_prefix_errors_name_the_row() -> None:
    env = gym.make_vec("TokenGen-v0", num_envs=2, task="copy", max_new_tokens=6)
    with pytest.raises(tokengym.ConfigError) as err:
        env.reset(options={"prefix": [[4], [4, 3]]})
    assert str(err.value) == f"prefix[1][1] = 3 is EOS: {SPECIAL}"
    with pytest.raises(tokengym.ConfigError) as err:
        env.reset(options={"prefix": [[4], [4], None]})
    assert str(err.value) == (
        "prefix must be a sequence of token ids or a sequence of 2 such sequences (None for no "
        "prefix), got 3 entries"
    )


@pytest.mark.parametrize("options", [[], "prefix", ("prompt_index", 0)])
def test_reset_options_that_are_not_a_dict_are_refused(options: object) -> None:
    for env in (gym.make("TokenGen-v0"), gym.make_vec("TokenGen-v0", num_envs=2)):
        with pytest.raises(tokengym.ConfigError, match=r"^reset options must be a dict \(keys"):
            env.reset(options=options)
