"""Registration, the spec, the torch-free import, rendering."""

from __future__ import annotations

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest

import tokengym


def run_python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_make_with_module_prefix_in_a_fresh_process() -> None:
    out = run_python(
        "import gymnasium as gym; env = gym.make('tokengym:TokenGen-v0', task='sort'); "
        "print(type(env.unwrapped).__name__, env.unwrapped.task.name)"
    )
    assert out == "TokenGenEnv sort"


def test_importing_tokengym_does_not_import_torch() -> None:
    assert run_python("import sys, tokengym; print('torch' in sys.modules)") == "False"


def test_spec_and_vector_entry_point() -> None:
    spec = gym.spec("TokenGen-v0")
    assert spec.entry_point == "tokengym.env:TokenGenEnv"
    assert spec.vector_entry_point == "tokengym.vector:TokenGenVectorEnv"
    vec = gym.make_vec("TokenGen-v0", num_envs=8, task="copy")
    assert isinstance(vec, tokengym.TokenGenVectorEnv) and vec.num_envs == 8
    assert vec.metadata["autoreset_mode"] == gym.vector.AutoresetMode.NEXT_STEP
    assert vec.autoreset_mode == gym.vector.AutoresetMode.NEXT_STEP
    assert spec.reward_threshold == 0.9


def test_time_limit_truncates_through_make() -> None:
    env = gym.make("TokenGen-v0", task="copy", max_new_tokens=5, max_episode_steps=2)
    env.reset(seed=0)
    assert env.step(4)[2:4] == (False, False)
    assert env.step(4)[2:4] == (False, True)


def test_render_ansi_and_human(capsys: pytest.CaptureFixture[str]) -> None:
    env = gym.make("TokenGen-v0", task="copy", render_mode="ansi")
    _, info = env.reset(seed=0)
    env.step(4)
    assert env.render() == f"{info['prompt']} => a"
    assert env.metadata["render_fps"] == 4
    human = gym.make("TokenGen-v0", task="copy", render_mode="human")
    _, info = human.reset(seed=0)
    human.step(5)
    assert capsys.readouterr().out == f"{info['prompt']} => \n{info['prompt']} => b\n"


def test_render_names_special_tokens() -> None:
    env = gym.make("TokenGen-v0", task="copy", render_mode="ansi")
    _, info = env.reset(seed=0)
    env.step(4)
    env.step(0)  # PAD: masked, ends the episode
    assert env.render() == f"{info['prompt']} => a<pad>  [end]"
    vec = gym.make_vec("TokenGen-v0", num_envs=1, task="copy", render_mode="ansi")
    _, infos = vec.reset(seed=0)
    vec.step(np.array([5]))
    vec.step(np.array([3]))
    assert vec.render() == (f"{infos['prompt'][0]} => b<eos>",)
