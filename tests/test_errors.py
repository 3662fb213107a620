"""Bad input gets a clear error that names the value and what is allowed."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest

import tokengym
from tokengym import (
    ConfigError,
    DatasetError,
    InvalidActionError,
    ResetNeeded,
    TokenGenEnv,
    UnknownNameError,
)


@pytest.fixture
def env() -> TokenGenEnv:
    env = TokenGenEnv(task="copy")  # vocabulary of 9 tokens
    env.reset(seed=0)
    return env


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (9, "action 9 is out of range: token ids run from 0 to 8"),
        (-1, "action -1 is out of range: token ids run from 0 to 8"),
        (np.int32(12), "action 12 is out of range: token ids run from 0 to 8"),
        (True, "action must be an integer token id in [0, 8], got True of type bool"),
        (
            np.bool_(True),
            "action must be an integer token id in [0, 8], got np.True_ of type numpy.bool",
        ),
        (4.0, "action must be an integer token id in [0, 8], got 4.0 of type float"),
        ("a", "action must be an integer token id in [0, 8], got 'a' of type str"),
        (
            np.array([4]),
            "action must be an integer token id in [0, 8], got array([4]) of type numpy.ndarray",
        ),
    ],
)
def test_bad_actions(env: TokenGenEnv, action: object, message: str) -> None:
    with pytest.raises(InvalidActionError) as err:
        env.step(action)
    assert str(err.value) == message


@pytest.mark.parametrize("action", [4, np.int64(4), np.uint8(4), np.array(4)])
def test_integer_actions_of_any_kind_are_accepted(env: TokenGenEnv, action: object) -> None:
    obs, *_ = env.step(action)
    assert obs[env.unwrapped._start] == 4


def test_step_before_reset_and_after_the_end() -> None:
    env = TokenGenEnv(task="copy")
    with pytest.raises(
        ResetNeeded, match=r"^step\(\) called before reset\(\); call reset\(\) first$"
    ):
        env.step(4)
    env.reset(seed=0)
    env.step(env.tokenizer.eos_id)
    with pytest.raises(ResetNeeded, match=r"^step\(\) called after the episode ended"):
        env.step(4)
    vec = gym.make_vec("TokenGen-v0", num_envs=2)
    with pytest.raises(ResetNeeded, match="before reset"):
        vec.step(np.array([4, 4]))


def test_vector_env_bad_actions() -> None:
    vec = gym.make_vec("TokenGen-v0", num_envs=2)
    vec.reset(seed=0)
    with pytest.raises(InvalidActionError) as err:
        vec.step(np.array([4, 99]))
    assert str(err.value) == "action 99 of sub-env 1 is out of range: token ids run from 0 to 8"
    with pytest.raises(InvalidActionError, match=r"int array of shape \(2,\)"):
        vec.step(np.array([4.0, 4.0]))
    with pytest.raises(InvalidActionError, match=r"got dtype int64 shape \(3,\)"):
        vec.step(np.array([4, 4, 4]))


def test_prompt_longer_than_the_observation_budget() -> None:
    with pytest.raises(DatasetError) as err:
        TokenGenEnv(task="copy", min_length=3, max_length=5, max_prompt_tokens=4)
    assert "tokens long, over the observation budget max_prompt_tokens=4" in str(err.value)
    assert str(err.value).startswith("train prompt ")


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"reward": "exat"},
            UnknownNameError,
            "unknown reward 'exat'. Did you mean 'exact' or 'edit'? "
            "Known rewards: edit, exact, prefix.",
        ),
        (
            {"reward_mode": "sparse"},
            ConfigError,
            "reward_mode must be one of ('terminal', 'dense', 'progress'), got 'sparse'",
        ),
        ({"split": "valid"}, ConfigError, "split must be one of ('train', 'test'), got 'valid'"),
        (
            {"gamma": 1.5},
            ConfigError,
            "gamma=1.5 is invalid; expected a finite number in [0.0, 1.0]",
        ),
        (
            {"max_new_tokens": 0},
            ConfigError,
            "max_new_tokens=0 is invalid; expected an int in [1, 4096]",
        ),
        (
            {"max_new_tokens": 10**9},
            ConfigError,
            "max_new_tokens=1000000000 is invalid; expected an int in [1, 4096]",
        ),
        (
            {"max_prompt_tokens": 5000},
            ConfigError,
            "max_prompt_tokens=5000 is invalid; expected an int in [1, 4096]",
        ),
        (
            {"render_mode": "rgb_array"},
            ConfigError,
            "render_mode must be None or one of ['ansi', 'human'], got 'rgb_array'",
        ),
        (
            {"task": "copy", "dataset": [{"prompt": "a"}, {"prompt": "b"}]},
            ConfigError,
            "pass either task= or dataset=, not both (task='copy')",
        ),
        (
            {"dataset": [{"prompt": "a"}, {"prompt": "b"}]},
            DatasetError,
            "reward 'exact' needs an answer for every prompt; train records dataset[1] have none "
            "(use a reward callable and reward_mode='terminal')",
        ),
        (
            {"reward": 3},
            ConfigError,
            "reward must be one of ['edit', 'exact', 'prefix'] or a callable "
            "(prompt, completion, reference) -> float, got 3",
        ),
        (
            {"dataset": [{"prompt": "a"}, {"prompt": "b"}], "reward": lambda p, c, r: 0.0},
            ConfigError,
            "the dataset has no answers to size generations by: pass max_new_tokens",
        ),
    ],
)
def test_bad_environment_arguments(kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error) as err:
        TokenGenEnv(**kwargs)
    assert str(err.value) == message


def test_reset_options_are_checked(env: TokenGenEnv) -> None:
    with pytest.raises(ConfigError, match=r"prompt_index must be in \[0, 999\], got 1000"):
        env.reset(options={"prompt_index": 1000})
    with pytest.raises(ConfigError, match=r"unknown reset options \['prompt'\]"):
        env.reset(options={"prompt": "abc"})


def test_errors_are_tokengym_errors() -> None:
    for name in tokengym.errors.__dict__:
        obj = getattr(tokengym.errors, name)
        if (
            isinstance(obj, type)
            and issubclass(obj, Exception)
            and obj.__module__ == "tokengym.errors"
        ):
            assert issubclass(obj, tokengym.TokenGymError)


ENV_ARGUMENTS = (
    "bos_token, dataset, eos_token, gamma, invalid_reward, max_new_tokens, max_prompt_tokens, "
    "pad_token, render_mode, reward, reward_mode, sep_token, split, success_threshold, task, "
    "text_infos, tokenizer"
)
COPY_KNOBS = "alphabet_size, data_seed, max_length, min_length, test_size, train_size"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"max_new_token": 5},
            "TokenGenEnv.__init__() got an unexpected keyword argument 'max_new_token'. Did you "
            f"mean 'max_new_tokens' or 'max_prompt_tokens'? Arguments: {ENV_ARGUMENTS}; knobs of "
            f"task 'copy': {COPY_KNOBS}.",
        ),
        (
            {"reward_mod": "dense"},
            "TokenGenEnv.__init__() got an unexpected keyword argument 'reward_mod'. Did you "
            f"mean 'reward_mode' or 'reward'? Arguments: {ENV_ARGUMENTS}; knobs of task 'copy': "
            f"{COPY_KNOBS}.",
        ),
        (
            {"task": "addition", "digit": 3},
            "TokenGenEnv.__init__() got an unexpected keyword argument 'digit'. Did you mean "
            f"'digits'? Arguments: {ENV_ARGUMENTS}; knobs of task 'addition': data_seed, "
            "digits, test_size, train_size.",
        ),
        (
            {"frameskip": 1},
            "TokenGenEnv.__init__() got an unexpected keyword argument 'frameskip'. Arguments: "
            f"{ENV_ARGUMENTS}; knobs of task 'copy': {COPY_KNOBS}.",
        ),
    ],
)
def test_unknown_keywords_are_type_errors_with_pythons_wording(kwargs: dict, message: str) -> None:
    with pytest.raises(TypeError) as err:
        TokenGenEnv(**kwargs)
    assert isinstance(err.value, tokengym.UnknownArgumentError)
    assert isinstance(err.value, tokengym.TokenGymError)
    assert str(err.value) == message


def test_unknown_keyword_through_make_and_make_vec() -> None:
    # gym.make re-raises the TypeError with the kwargs appended: the wording that torchrl's
    # GymEnv looks for ("unexpected keyword argument 'frameskip'") must survive.
    with pytest.raises(tokengym.UnknownArgumentError) as err:
        gym.make("TokenGen-v0", frameskip=1)
    assert "got an unexpected keyword argument 'frameskip'" in str(err.value)
    with pytest.raises(TypeError) as err:
        gym.make_vec("TokenGen-v0", num_envs=2, max_new_token=5)
    assert str(err.value).startswith(
        "TokenGenVectorEnv.__init__() got an unexpected keyword argument 'max_new_token'. Did "
        "you mean 'max_new_tokens' or 'max_prompt_tokens'? Arguments: autoreset_mode, "
        "bos_token, copy, dataset,"
    )
    with pytest.raises(TypeError, match=r"; task object CopyTask: no knobs\.$"):
        TokenGenEnv(task=tokengym.tasks.CopyTask(), min_length=2)
    with pytest.raises(TypeError, match=r"knobs of dataset: data_seed, test_fraction\.$"):
        TokenGenEnv(dataset=[{"prompt": "a", "answer": "a"}] * 2, test_fraction=0.5, seed=3)


@pytest.mark.parametrize("make", [TokenGenEnv, tokengym.TokenGenVectorEnv])
def test_unsupported_render_mode_is_a_type_error(make: type) -> None:
    with pytest.raises(TypeError) as err:
        make(render_mode="rgb_array")
    assert isinstance(err.value, tokengym.RenderModeError)
    assert isinstance(err.value, ConfigError)
    assert str(err.value).startswith("render_mode must be None or one of ['ansi'")


def test_a_budget_shorter_than_some_answers_warns() -> None:
    with pytest.warns(UserWarning) as record:
        TokenGenEnv(task="copy", max_new_tokens=2)
    assert len(record) == 1
    assert str(record[0].message) == (
        "max_new_tokens=2 is shorter than 1200 answers, e.g. train answer 0 ('dcbba', 5 tokens): "
        "those prompts cannot be answered; the longest answer needs max_new_tokens=5 (6 with "
        "its EOS)"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        TokenGenEnv(task="copy", max_new_tokens=5)  # answers fit; EOS may be cut off


def test_train_prompts_in_the_test_split_warn() -> None:
    data = {
        "train": [{"prompt": "ab", "answer": "b"}, {"prompt": "cd", "answer": "d"}],
        "test": [{"prompt": "ef", "answer": "f"}, {"prompt": "cd", "answer": "d"}],
    }
    with pytest.warns(UserWarning) as record:
        TokenGenEnv(dataset=data)
    assert [str(r.message) for r in record] == [
        "1 of 2 test prompts are also train prompts, e.g. 'cd' (train[1] and test[1]): the test "
        "split does not measure generalisation; remove the duplicates"
    ]
