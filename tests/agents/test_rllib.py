"""RLlib PPO on TokenGen-v0: the masked-observation wrapper, the masking module, two iterations."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("ray.rllib", reason="needs the ray extra: pip install -e '.[ray]'")

import ray
import torch
from gymnasium.utils.env_checker import check_env
from ray.rllib.core.columns import Columns
from tokengym.agents.rllib import MaskedTokenObs, make_env, ppo_config, train_ppo

import tokengym  # noqa: F401  (registers TokenGen-v0)

pytestmark = pytest.mark.ray

MASKED = [0, 1, 2]  # PAD, BOS, SEP
TARGET = {"task": "target", "train_size": 200, "test_size": 50, "invalid_reward": -1.0}
SMALL = {"train_batch_size_per_learner": 256, "minibatch_size": 64, "num_epochs": 1}


@pytest.fixture(scope="module")
def ray_session():
    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.mark.filterwarnings("ignore:.*is different from the unwrapped version")
def test_masked_obs_is_float_ids_and_the_env_mask():
    env, raw = make_env(TARGET), gym.make("TokenGen-v0", **TARGET)
    check_env(env, skip_render_check=True)
    (obs, info), (ids, _) = env.reset(seed=0), raw.reset(seed=0)
    assert obs["observations"].dtype == np.float32 and obs["action_mask"].dtype == np.float32
    assert obs["observations"].tolist() == ids.tolist()
    np.testing.assert_array_equal(obs["action_mask"], info["action_mask"].astype(np.float32))
    assert np.flatnonzero(obs["action_mask"] == 0).tolist() == MASKED
    obs, ids = env.step(4)[0], raw.step(4)[0]  # token "a"
    assert obs["observations"].tolist() == ids.tolist()


def test_masked_obs_rejects_a_non_token_env():
    with pytest.raises(TypeError, match="needs a Box observation and a Discrete action space"):
        MaskedTokenObs(gym.make("Pendulum-v1"))  # a Box action space


def test_module_gives_masked_tokens_zero_probability():
    env = make_env(TARGET)
    module = ppo_config(TARGET, seed=0).get_rl_module_spec(env=env).build()
    obs, _ = env.reset(seed=0)
    batch = {Columns.OBS: {k: torch.as_tensor(np.stack([v] * 4)) for k, v in obs.items()}}
    for forward in (module.forward_exploration, module.forward_inference):
        logits = forward({Columns.OBS: dict(batch[Columns.OBS])})[Columns.ACTION_DIST_INPUTS]
        probs = torch.softmax(logits, dim=-1)  # (B, V)
        assert probs[:, MASKED].max().item() == 0.0
        assert torch.allclose(probs.sum(-1), torch.ones(4))


def test_train_ppo_rejects_zero_iterations():
    with pytest.raises(ValueError, match="iterations must be >= 1, got 0"):
        train_ppo(TARGET, iterations=0)


def test_ppo_two_iterations_never_take_a_masked_token(ray_session):
    results = train_ppo(TARGET, iterations=2, seed=0, **SMALL)

    assert [r["training_iteration"] for r in results] == [1, 2]
    assert results[-1]["env_runners"]["num_env_steps_sampled_lifetime"] == 512
    for result in results:
        runners, learner = result["env_runners"], result["learners"]["default_policy"]
        for key in ("episode_return_mean", "episode_len_mean", "tokengym/success"):
            assert math.isfinite(runners[key]), key
        for key in ("policy_loss", "vf_loss", "entropy", "total_loss"):
            assert math.isfinite(learner[key]), key
        assert runners["num_episodes"] > 0
        # A masked token ends the episode with stop_reason "invalid_token" and R = -1.
        assert runners["tokengym/invalid_token"] == 0
        assert runners["episode_return_min"] >= 0.0
