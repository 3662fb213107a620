"""Agents: config validation, bit-identical determinism, checkpoints, metrics, evaluation, CLI."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from tokengym.agents import (
    ReinforceAgent,
    SupervisedAgent,
    VocabularyMismatchError,
    evaluate,
    load_checkpoint,
    save_checkpoint,
)
from tokengym.agents.device import resolve_device
from tokengym.agents.metrics import MetricsWriter, read_metrics

from tests.helpers import train_config

COPY = {
    "task": "copy",
    "min_length": 1,
    "max_length": 3,
    "train_size": 40,
    "test_size": 20,
    "reward_mode": "dense",
}


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")


def _reinforce(make_policy, vocab: int, **config) -> ReinforceAgent:
    policy = make_policy("gru", vocab)
    cfg = train_config("reinforce", COPY, batch_size=32, group_size=4, baseline="rloo", **config)
    return ReinforceAgent(policy, cfg)


def _supervised(make_policy, vocab: int) -> SupervisedAgent:
    return SupervisedAgent(
        make_policy("gru", vocab), train_config("supervised", COPY, batch_size=16)
    )


@pytest.mark.parametrize("agent", ["reinforce", "supervised"])
def test_same_seed_gives_bit_identical_parameters(agent, make_policy, vocab_size) -> None:
    vocab = vocab_size(**COPY)

    def run() -> list[torch.Tensor]:
        a = (
            _reinforce(make_policy, vocab)
            if agent == "reinforce"
            else _supervised(make_policy, vocab)
        )
        for _ in range(3):
            a.train_iteration()
        return [p.detach().clone() for p in a.policy.parameters()]

    first, second = run(), run()
    assert all(torch.equal(x, y) for x, y in zip(first, second))


def test_reinforce_metrics_are_namespaced_and_shares_sum_to_one(make_policy, vocab_size) -> None:
    m = _reinforce(make_policy, vocab_size(**COPY), entropy_coef=0.01).train_iteration()
    assert all("/" in k for k in m)
    shares = m["perf/rollout_share"] + m["perf/env_share"] + m["perf/update_share"]
    assert shares == pytest.approx(1.0)
    assert m["charts/episodes"] == 32


def test_value_baseline_and_kl_run(make_policy, vocab_size) -> None:
    vocab = vocab_size(**COPY)
    policy = make_policy("transformer", vocab, value_head=True)
    cfg = train_config("reinforce", COPY, batch_size=16, baseline="value", kl_coef=0.1)
    m = ReinforceAgent(policy, cfg).train_iteration()
    assert {"losses/value_loss", "losses/kl"} <= set(m)


def test_checkpoint_round_trip(tmp_path, make_policy, vocab_size) -> None:
    agent = _reinforce(make_policy, vocab_size(**COPY))
    agent.train_iteration()
    path = tmp_path / "ckpt.pt"
    vocab = agent.base.tokenizer.vocab
    save_checkpoint(
        path,
        policy=agent.policy,
        vocab=vocab,
        agent=agent.name,
        agent_config=agent.config,
        optimizer=agent.optimizer,
        env_kwargs={**COPY, "reward": lambda p, c, r: 0.0},
        iteration=1,
    )
    ckpt = load_checkpoint(path, gym.make("TokenGen-v0", **COPY))
    assert ckpt.agent == "reinforce" and ckpt.iteration == 1 and ckpt.vocab == vocab
    assert ckpt.agent_config["group_size"] == 4
    assert "reward" not in ckpt.env_kwargs and ckpt.env_kwargs["task"] == "copy"
    for (name, p), q in zip(agent.policy.state_dict().items(), ckpt.policy.state_dict().values()):
        assert torch.equal(p, q), name
    optimizer = torch.optim.Adam(ckpt.policy.parameters())
    optimizer.load_state_dict(ckpt.optimizer_state)
    assert optimizer.state_dict()["state"][0]["step"] == 1


def test_checkpoint_with_another_vocabulary_is_a_clear_error(tmp_path, make_policy) -> None:
    env = gym.make("TokenGen-v0", **COPY)
    policy = make_policy("gru", env.unwrapped.tokenizer.vocab_size)
    save_checkpoint(tmp_path / "c.pt", policy=policy, vocab=env.unwrapped.tokenizer.vocab)
    other = gym.make("TokenGen-v0", **{**COPY, "alphabet_size": 7})
    with pytest.raises(VocabularyMismatchError, match="new in env \\['f', 'g'\\]"):
        load_checkpoint(tmp_path / "c.pt", other)


def test_metrics_writer(tmp_path) -> None:
    path = tmp_path / "run" / "m.jsonl"
    with MetricsWriter(path) as w:
        w.write(1, {"charts/success": 0.5, "losses/policy_loss": float("nan")})
    assert read_metrics(path) == [{"step": 1, "charts/success": 0.5, "losses/policy_loss": None}]
    with MetricsWriter(path) as w, pytest.raises(ValueError, match="has no namespace"):
        w.write(2, {"success": 1.0})


def test_evaluate_with_an_oracle_and_a_bad_act() -> None:
    env = gym.make("TokenGen-v0", **{**COPY, "split": "test"}).unwrapped
    refs = {tuple(p): r for p, r in zip(env.prompt_ids, env.reference_ids)}
    tok = env.tokenizer

    def oracle(obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        out = []
        for row in obs:
            sep = int(np.argmax(row == tok.sep_id))
            target = [*refs[tuple(row[1:sep])], tok.eos_id]
            done = int((row[sep + 1 :] != tok.pad_id).sum())
            out.append(target[min(done, len(target) - 1)])
        return np.array(out)

    result = evaluate(oracle, COPY, num_envs=8)  # 20 prompts in chunks of 8
    assert (result.success_rate, result.mean_reward, result.episodes) == (1.0, 1.0, 20)
    eos = evaluate(lambda o, m: np.full(len(o), tok.eos_id), COPY, num_prompts=5)
    assert (eos.success_rate, eos.episodes) == (0.0, 5)
