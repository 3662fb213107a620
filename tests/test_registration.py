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


def test_made_env_enforces_the_reset_order_itself() -> None:
    # The spec turns OrderEnforcing off: the env raises gymnasium's ResetNeeded on its own.
    env = gym.make("TokenGen-v0", task="copy", render_mode="ansi")
    assert type(env) is gym.wrappers.PassiveEnvChecker
    assert type(env.env) is tokengym.TokenGenEnv
    with pytest.raises(gym.error.ResetNeeded, match=r"^step\(\) called before reset\(\)"):
        env.step(4)
    with pytest.raises(gym.error.ResetNeeded, match=r"^render\(\) called before reset\(\)"):
        env.render()
    env.reset(seed=0)
    assert env.render().endswith(" => ")


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


@pytest.mark.parametrize(
    ("kwargs", "threshold"),
    [
        ({}, 0.9),
        ({"reward_mode": "dense"}, 0.9),
        ({"reward_mode": "progress"}, 0.9 * 2 + 0.1 * 5 / 6),  # copy: longest reference 5
        ({"reward_mode": "dense", "gamma": 0.9}, 0.9 * (1 - 0.1 * 6 / 2)),
        ({"reward": "edit"}, None),
        ({"reward_mode": "dense", "gamma": 0.1}, None),  # an exact answer returns < 0
    ],
)
def test_made_spec_threshold_means_90_percent_exact_answers(
    kwargs: dict, threshold: float | None
) -> None:
    env = gym.make("TokenGen-v0", task="copy", **kwargs)
    vec = gym.make_vec("TokenGen-v0", num_envs=2, task="copy", **kwargs)
    assert env.spec.reward_threshold == pytest.approx(threshold, abs=1e-12)
    assert vec.spec.reward_threshold == env.spec.reward_threshold
    assert gym.spec("TokenGen-v0").reward_threshold == 0.9
    if threshold is None:
        return
    # The exact answer to the longest reference returns the E of the threshold, and the best
    # other episode (the whole reference, then a wrong token) at most its F.
    u = env.unwrapped
    longest = max(range(u.num_prompts), key=lambda i: len(u.reference_ids[i]))
    reference = u.reference_ids[longest]

    def episode_return(tokens: list[int]) -> float:
        env.reset(options={"prompt_index": longest})
        total = 0.0
        for token in tokens:
            _, reward, terminated, _, _ = env.step(token)
            total += reward
            if terminated:
                return total
        raise AssertionError("the episode did not end")

    exact = episode_return([*reference, u.tokenizer.eos_id])
    other = episode_return([*reference, reference[0]])
    assert exact > other
    if u.reward_mode == "dense":
        assert other <= 0.0  # F = 0 (a supremum: no episode reaches it at gamma < 1)
        assert 0.9 * exact == pytest.approx(threshold)
    else:
        assert 0.9 * exact + 0.1 * other == pytest.approx(threshold)


def test_a_threshold_registered_otherwise_is_kept() -> None:
    gym.register("TokenGenMine-v0", entry_point="tokengym.env:TokenGenEnv", reward_threshold=0.5)
    try:
        env = gym.make("TokenGenMine-v0", reward_mode="progress")
        assert env.spec.reward_threshold == 0.5
    finally:
        del gym.registry["TokenGenMine-v0"]
