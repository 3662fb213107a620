"""Speed changes that must not change results: incremental evaluation, the constant mask read
once, trimmed loss columns, Adam without torch._dynamo, one thread, TensorBoard cadence."""

from __future__ import annotations

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch
from tokengym.agents import TrainConfig, evaluate, policy_act
from tokengym.agents.losses import Decisions, decision_logits
from tokengym.agents.metrics import RunLogger
from tokengym.agents.optim import EagerAdam
from tokengym.agents.policies import masked_logits
from tokengym.agents.rollout import collect_rollout

COPY = {"task": "copy", "reward": "edit"}  # graded rewards: the means below are informative


def _copy_policy(kind: str, make_policy):
    probe = gym.make("TokenGen-v0", **COPY).unwrapped
    return make_policy(kind, probe.tokenizer.vocab_size, probe.observation_length), probe


@pytest.mark.parametrize("greedy", [True, False])
def test_incremental_evaluation_scores_like_full_recomputation(
    policy_kind, make_policy, greedy
) -> None:
    policy, probe = _copy_policy(policy_kind, make_policy)
    full = policy_act(policy, probe.tokenizer.pad_id, greedy=greedy, seed=3)
    kwargs = {"num_prompts": 40, "num_envs": 16, "seed": 3}  # 3 chunks, the last one partial
    incremental = evaluate(policy, COPY, greedy=greedy, **kwargs)
    assert incremental == evaluate(full, COPY, **kwargs)
    assert incremental.episodes == 40 and 0 < incremental.mean_reward < 1


def test_rollout_reads_the_mask_once_as_a_view(make_policy) -> None:
    policy, _ = _copy_policy("gru", make_policy)
    vec = gym.make_vec("TokenGen-v0", num_envs=4, **COPY)
    batch = collect_rollout(vec, policy, np.arange(4), torch.Generator().manual_seed(0), seed=0)
    expected = torch.from_numpy(vec.unwrapped.action_masks().copy())  # (B, V)
    assert batch.masks.shape == (4, vec.unwrapped.max_new_tokens, expected.shape[1])
    assert batch.masks.stride(1) == 0  # one (B, V) mask broadcast over T, not T copies
    assert torch.equal(batch.masks[:, 0], expected) and torch.equal(batch.masks[:, -1], expected)


def test_decision_logits_skip_columns_after_the_last_decision(make_policy) -> None:
    policy = make_policy("gru", 9).double()
    tokens = torch.randint(0, 9, (3, 12), generator=torch.Generator().manual_seed(0))
    start = torch.tensor([2, 4, 3])
    mask, valid = torch.ones(9).bool(), torch.ones(3, 4, dtype=torch.bool)
    d = Decisions(tokens, start, torch.zeros(3, 4, dtype=torch.long), mask, valid)
    full = policy(tokens)  # (B, L, V) on every column
    lengths = []
    features = policy.features
    policy.features = lambda t: lengths.append(t.shape[1]) or features(t)
    logits, _ = decision_logits(policy, d)
    assert lengths == [4 + 4]  # the last decision is at position start + 3 = 7
    idx = start[:, None] + torch.arange(4)  # (B, T)
    expected = masked_logits(full.gather(1, idx[..., None].expand(-1, -1, 9)), mask)
    torch.testing.assert_close(logits, expected, rtol=0, atol=1e-12)


def test_eager_adam_steps_and_saves_like_torch_adam() -> None:
    torch.manual_seed(0)
    nets = [torch.nn.GRU(3, 4, batch_first=True) for _ in range(2)]
    nets[1].load_state_dict(nets[0].state_dict())
    optimizers = [
        EagerAdam(nets[0].parameters(), lr=0.01),
        torch.optim.Adam(nets[1].parameters(), lr=0.01),
    ]
    x = torch.randn(5, 7, 3)
    for net, optimizer in zip(nets, optimizers):
        for _ in range(3):
            optimizer.zero_grad()
            net(x)[0].pow(2).sum().backward()
            optimizer.step()
    for a, b in zip(nets[0].parameters(), nets[1].parameters()):
        assert torch.equal(a, b)
    ours, theirs = optimizers[0].state_dict(), optimizers[1].state_dict()
    assert ours["param_groups"] == theirs["param_groups"]
    assert all(torch.equal(ours["state"][0][k], theirs["state"][0][k]) for k in theirs["state"][0])
    resumed = EagerAdam(nets[0].parameters(), lr=0.01)
    resumed.load_state_dict(theirs)
    assert torch.equal(resumed.state_dict()["state"][2]["exp_avg"], theirs["state"][2]["exp_avg"])


@pytest.mark.slow
def test_training_imports_no_dynamo_and_runs_on_one_thread(tmp_path) -> None:
    code = (
        "import sys, torch\n"
        "from tokengym.agents import TrainConfig, train\n"
        "torch.set_num_threads(2)\n"
        "seen = []\n"
        "set_threads = torch.set_num_threads\n"
        "torch.set_num_threads = lambda n: seen.append(n) or set_threads(n)\n"
        f"train(TrainConfig(iterations=2, eval_every=1, out={str(tmp_path)!r}, progress=False))\n"
        "print('torch._dynamo' in sys.modules, seen, torch.get_num_threads())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == "False [1, 2] 2"  # 1 for the run, then restored


def test_one_thread_is_every_agents_default() -> None:
    assert TrainConfig().threads == TrainConfig(agent="supervised").threads == 1
    assert TrainConfig(threads=3).threads == 3


def test_tensorboard_gets_every_kth_line_evaluations_and_the_last(tmp_path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logger = RunLogger(tmp_path, {}, tensorboard_every=10)
    for step in range(1, 26):
        metrics = {"charts/x": float(step)}
        if step == 7:
            metrics["eval/greedy_success"] = 0.5
        logger.write(step, metrics)
    logger.close()
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    assert [e.step for e in events.Scalars("charts/x")] == [7, 10, 20, 25]
    assert [e.step for e in events.Scalars("eval/greedy_success")] == [7]
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 25
    with pytest.raises(ValueError, match="tensorboard_every=0 is invalid"):
        RunLogger(tmp_path, {}, tensorboard_every=0)
