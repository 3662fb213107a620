"""Integration: each RL library drives TokenGen-v0 the way its own documentation shows.

A few hundred steps per client, no learning claims: these tests pin that the clients run at all
(each one failed on an earlier tokengym, see issue 9). The libraries come from the
`test-clients` extra: `pip install -e ".[test-clients]"`.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import tokengym  # noqa: F401  (registers TokenGen-v0)

torch = pytest.importorskip("torch")
CLIENTS = 'needs the test-clients extra: pip install -e ".[test-clients]" (CI installs it)'
PUFFERLIB = "--no-deps -r requirements/pufferlib-no-deps.txt"  # not in the extra (its pins)


def client(name: str, install: str = CLIENTS) -> None:
    """Skip the test where its client library is not installed (CI installs every one).

    Looked up, not imported: importing rl_zoo3 patches gymnasium's TimeLimit for the whole
    process (rl_zoo3.gym_patches), which would change what later tests see.
    """
    if importlib.util.find_spec(name) is None:
        pytest.skip(install)


ENV_ID = "TokenGen-v0"
MASKED = [0, 1, 2]  # PAD, BOS, SEP of the character tokenizer


def test_sb3_make_vec_env_and_ppo() -> None:
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    # make_vec_env passes render_mode="rgb_array" and retries without it on a TypeError only.
    vec_env = make_vec_env(ENV_ID, n_envs=4, seed=0)
    model = PPO("MlpPolicy", vec_env, n_steps=64, batch_size=64, n_epochs=1, seed=0)
    model.learn(total_timesteps=256)
    assert model.num_timesteps == 256
    obs = vec_env.reset()
    action, _ = model.predict(obs, deterministic=True)
    assert action.shape == (4,)


def test_sb3_contrib_maskable_ppo_never_picks_a_masked_token() -> None:
    from sb3_contrib import MaskablePPO
    from sb3_contrib.common.maskable.utils import get_action_masks
    from stable_baselines3.common.env_util import make_vec_env

    vec_env = make_vec_env(ENV_ID, n_envs=4, seed=0, env_kwargs={"task": "target"})
    model = MaskablePPO("MlpPolicy", vec_env, n_steps=64, batch_size=64, n_epochs=1, seed=0)
    model.learn(total_timesteps=256)
    obs, actions = vec_env.reset(), []
    for _ in range(100):
        action, _ = model.predict(obs, action_masks=get_action_masks(vec_env))
        actions.extend(action.tolist())
        obs, _, _, _ = vec_env.step(action)
    assert len(actions) == 400 and not set(actions) & set(MASKED)


def test_rl_zoo3_train_with_gym_packages(tmp_path: Path) -> None:
    client("rl_zoo3")
    hyperparams = tmp_path / "ppo.yml"
    hyperparams.write_text(
        "TokenGen-v0:\n"
        "  n_envs: 2\n"
        "  n_timesteps: 256\n"
        "  policy: 'MlpPolicy'\n"
        "  n_steps: 64\n"
        "  batch_size: 64\n"
        "  n_epochs: 1\n"
    )
    command = [
        sys.executable, "-m", "rl_zoo3.train", "--algo", "ppo", "--env", ENV_ID,
        "--gym-packages", "tokengym", "-conf", str(hyperparams), "--log-folder",
        str(tmp_path / "logs"), "--eval-freq", "-1", "--seed", "0", "--progress",
    ]  # fmt: skip
    done = subprocess.run(command[:-1], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert list((tmp_path / "logs" / "ppo").glob("TokenGen-v0_1/TokenGen-v0.zip"))


def test_torchrl_gym_env_specs_and_masked_rollout() -> None:
    client("torchrl")
    from torchrl.data import Binary
    from torchrl.envs import ActionMask, GymEnv, TransformedEnv
    from torchrl.envs.libs.gym import default_info_dict_reader
    from torchrl.envs.utils import check_env_specs

    # GymEnv passes frameskip= and drops it on a TypeError saying "unexpected keyword argument".
    env = GymEnv(f"tokengym:{ENV_ID}", categorical_action_encoding=True)
    vocab = env.action_spec.space.n
    reader = default_info_dict_reader(["action_mask_bool"], spec=[Binary(vocab, dtype=torch.bool)])
    env.set_info_dict_reader(reader)
    env = TransformedEnv(env, ActionMask(mask_key="action_mask_bool"))
    check_env_specs(env)
    env.set_seed(0)
    rollout = env.rollout(300, break_when_any_done=False)
    assert rollout.batch_size == torch.Size([300])
    assert not set(rollout["action"].tolist()) & set(MASKED)
    assert rollout["next", "done"].sum() > 10


def test_torchrl_wraps_the_native_vector_env() -> None:
    client("torchrl")
    from torchrl.envs import GymWrapper
    from torchrl.envs.utils import check_env_specs

    # torchrl takes vector envs in DISABLED (preferred) or SAME_STEP mode; its SAME_STEP reader
    # of final infos fails on string values (torchrl 0.14), so DISABLED it is.
    vec = gym.make_vec(ENV_ID, num_envs=4, autoreset_mode="Disabled")
    env = GymWrapper(vec, categorical_action_encoding=True)
    check_env_specs(env)
    rollout = env.rollout(50, break_when_any_done=False)
    assert rollout.batch_size == torch.Size([4, 50])
    assert rollout["next", "done"].sum() > 4


def test_torchrl_wraps_the_native_vector_env_in_same_step_mode() -> None:
    client("torchrl")
    from torchrl.envs import GymWrapper
    from torchrl.envs.utils import check_env_specs

    # torchrl's SAME_STEP reader turns every info key into a tensor, final_info included, and
    # fails on text (torchrl 0.14): text_infos=False leaves the infos numeric (stop_code for
    # stop_reason; no prompt, reference or completion text).
    vec = gym.make_vec(ENV_ID, num_envs=4, autoreset_mode="SameStep", text_infos=False)
    env = GymWrapper(vec, categorical_action_encoding=True)
    env.set_seed(0)  # before any step: torchrl keeps its cached observation across set_seed
    check_env_specs(env)
    rollout = env.rollout(60, break_when_any_done=False)
    assert rollout.batch_size == torch.Size([4, 60])
    done = rollout["next", "done"].squeeze(-1)
    assert done.sum() > 20
    # The ending step carries its episode's final info and observation, not the reset's.
    assert torch.equal(rollout["next", "stop_code"] >= 0, done)
    # From t = 1: at t = 0 torchrl's VecGymEnvTransform may hand out the observation it cached
    # before rollout's reset (torchrl 0.14), not the env's.
    done, steps = done[:, 1:], rollout[:, 1:]
    before, action = steps["observation"][done], steps["action"][done]
    final = before.clone()  # the observation with the ending token after the last non-PAD
    final[torch.arange(len(final)), (before != 0).sum(-1)] = action
    assert torch.equal(steps["next", "observation"][done], final)


def test_tianshou_procedural_dqn() -> None:
    client("tianshou")
    import tianshou as ts
    from tianshou.algorithm.modelfree.dqn import DiscreteQLearningPolicy
    from tianshou.algorithm.optim import AdamOptimizerFactory
    from tianshou.data import CollectStats
    from tianshou.trainer import OffPolicyTrainerParams
    from tianshou.utils.net.common import Net
    from tianshou.utils.space_info import SpaceInfo

    train_envs = ts.env.DummyVectorEnv([lambda: gym.make(ENV_ID) for _ in range(2)])
    test_envs = ts.env.DummyVectorEnv([lambda: gym.make(ENV_ID) for _ in range(2)])
    env = gym.make(ENV_ID)
    space_info = SpaceInfo.from_env(env)
    net = Net(
        state_shape=space_info.observation_info.obs_shape,
        action_shape=space_info.action_info.action_shape,
        hidden_sizes=[32],
    )
    policy = DiscreteQLearningPolicy(
        model=net, action_space=env.action_space, eps_training=0.1, eps_inference=0.05
    )
    algorithm = ts.algorithm.DQN(
        policy=policy, optim=AdamOptimizerFactory(lr=1e-3), gamma=0.9, target_update_freq=50
    )
    # Infos are batched into the replay buffer: a key that is None on some steps was a NaN.
    train_collector = ts.data.Collector[CollectStats](
        algorithm, train_envs, ts.data.VectorReplayBuffer(1000, 2), exploration_noise=True
    )
    test_collector = ts.data.Collector[CollectStats](algorithm, test_envs, exploration_noise=True)

    def stop_fn(mean_rewards: float) -> bool:  # as in Tianshou's examples
        threshold = env.spec.reward_threshold if env.spec else None
        return threshold is not None and mean_rewards >= threshold

    result = algorithm.run_training(
        OffPolicyTrainerParams(
            training_collector=train_collector,
            test_collector=test_collector,
            max_epochs=1,
            epoch_num_steps=300,
            collection_step_num_env_steps=10,
            test_step_num_episodes=4,
            batch_size=32,
            update_step_num_gradient_steps_per_sample=0.1,
            stop_fn=stop_fn,
            show_progress=False,
        )
    )
    assert len(train_collector.buffer) >= 300
    assert train_collector.buffer.info["stop_reason"][:300].dtype == object
    assert result.best_reward is not None and np.isfinite(result.best_reward)


# Across a process boundary (spawn or forkserver start a fresh interpreter that never imported
# tokengym) the id must name its module: "tokengym:TokenGen-v0" imports it in the worker.
SPAWN_ID = f"tokengym:{ENV_ID}"


def test_sb3_subproc_vec_env_with_spawn() -> None:
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import SubprocVecEnv

    vec_env = make_vec_env(
        SPAWN_ID,
        n_envs=2,
        seed=0,
        env_kwargs={"task": "target"},
        vec_env_cls=SubprocVecEnv,
        vec_env_kwargs={"start_method": "spawn"},
    )
    try:
        assert vec_env.get_attr("spec")[0].id == ENV_ID
        model = PPO("MlpPolicy", vec_env, n_steps=32, batch_size=64, n_epochs=1, seed=0)
        model.learn(total_timesteps=64)
        assert model.num_timesteps == 64
        infos = [vec_env.step(model.predict(vec_env.reset())[0])[3] for _ in range(3)][-1]
        assert [set(info) >= {"prompt", "success", "stop_reason"} for info in infos] == [True] * 2
    finally:
        vec_env.close()


def test_gymnasium_async_vector_env_with_spawn() -> None:
    envs = gym.vector.AsyncVectorEnv(
        [lambda: gym.make(SPAWN_ID, task="copy") for _ in range(2)], context="spawn"
    )
    try:
        reference = gym.vector.SyncVectorEnv([lambda: gym.make(ENV_ID, task="copy")] * 2)
        obs, infos = envs.reset(seed=[3, 4])
        expected_obs, expected_infos = reference.reset(seed=[3, 4])
        np.testing.assert_array_equal(obs, expected_obs)
        assert list(infos["prompt"]) == list(expected_infos["prompt"])
        for action in [4, 5, 3]:  # two letters, then EOS: both episodes end
            obs, rewards, terminated, _, infos = envs.step(np.array([action, action]))
            expected = reference.step(np.array([action, action]))
            np.testing.assert_array_equal(obs, expected[0])
            np.testing.assert_array_equal(rewards, expected[1])
        assert terminated.tolist() == [True, True]
        assert list(infos["stop_reason"]) == ["eos", "eos"]
    finally:
        envs.close()


def test_skrl_ppo_with_its_default_models() -> None:
    client("skrl")
    from skrl.agents.torch.ppo import PPO, PPO_CFG
    from skrl.envs.wrappers.torch import wrap_env
    from skrl.memories.torch import RandomMemory
    from skrl.trainers.torch import SequentialTrainer
    from skrl.utils import set_seed
    from skrl.utils.model_instantiators.torch import categorical_model, deterministic_model

    set_seed(0)
    # skrl treats a vector env as autoresetting in the same step: SameStep is its reading.
    env = wrap_env(gym.make_vec(ENV_ID, num_envs=4, task="target", autoreset_mode="SameStep"))
    # wrap_env hands Box observations to the models as float32: skrl's default MLPs take the ids.
    assert env.reset()[0].dtype == torch.float32
    layers = [{"name": "net", "input": "OBSERVATIONS", "layers": [32], "activations": "tanh"}]
    spaces = {"observation_space": env.observation_space, "action_space": env.action_space}
    models = {
        "policy": categorical_model(**spaces, device=env.device, network=layers, output="ACTIONS"),
        "value": deterministic_model(**spaces, device=env.device, network=layers, output="ONE"),
    }
    obs = env.reset()[0]
    before = models["policy"].act({"observations": obs})[1]["net_output"].detach()
    agent = PPO(
        models=models,
        memory=RandomMemory(memory_size=32, num_envs=env.num_envs, device=env.device),
        cfg=PPO_CFG(rollouts=32, learning_epochs=1, mini_batches=2),
        device=env.device,
        **spaces,
    )
    # skrl closes the env at interpreter exit by default and logs it after pytest's capture ended.
    trainer_cfg = {"timesteps": 64, "headless": True, "disable_progressbar": True}
    trainer_cfg["close_environment_at_exit"] = False
    SequentialTrainer(env=env, agents=agent, cfg=trainer_cfg).train()
    env.close()
    after = models["policy"].act({"observations": obs})[1]["net_output"].detach()
    assert not torch.equal(before, after)  # the PPO updates ran
    assert len(agent.memory.get_tensor_by_name("rewards")) == 32


def puffer_creator() -> Any:
    """PufferLib's env creator; module level, so that a spawned worker can unpickle it."""
    import pufferlib.emulation

    return pufferlib.emulation.GymnasiumPufferEnv(env=gym.make(SPAWN_ID, task="target"))


def test_pufferlib_emulation_and_vectorization() -> None:
    client("pufferlib", f"needs PufferLib: pip install {PUFFERLIB}")
    import pufferlib.vector

    backend = pufferlib.vector.Multiprocessing
    vec = pufferlib.vector.make(puffer_creator, num_envs=2, backend=backend)
    try:
        obs, _ = vec.reset(seed=0)
        assert obs.shape == (2, 10) and obs.dtype == np.int64
        steps = [vec.step(np.full(2, action)) for action in (4, 5, 3)]  # "ab", EOS
        rewards, terminated, infos = steps[-1][1], steps[-1][2], steps[-1][4]
        assert rewards.tolist() == [1.0, 1.0] and terminated.tolist() == [True, True]
        assert [(i["success"], i["completion"]) for i in infos] == [(True, "ab")] * 2
        # PufferLib resets an ended env on the next step, whose action is dropped.
        obs = vec.step(np.full(2, 4))[0]
        assert (obs[:, -3:] == 0).all()  # PAD after SEP: nothing generated yet
    finally:
        vec.close()
