"""Hypothesis properties of the MDP: any action sequence, any task."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import TASK_NAMES
from tokengym import TokenGenEnv

ENVS = {name: TokenGenEnv(task=name, train_size=30, test_size=5) for name in TASK_NAMES}


@settings(max_examples=150, deadline=None)
@given(
    name=st.sampled_from(TASK_NAMES),
    seed=st.integers(0, 2**31),
    actions=st.lists(st.integers(0, 14), min_size=1, max_size=14),
)
def test_observation_is_prompt_plus_actions(name: str, seed: int, actions: list[int]) -> None:
    env = ENVS[name]
    tok = env.tokenizer
    obs, info = env.reset(seed=seed)
    prompt = tok.encode(info["prompt"])
    taken: list[int] = []
    for action in (a % tok.vocab_size for a in actions):
        obs, _, terminated, truncated, info = env.step(action)
        taken.append(action)
        assert env.observation_space.contains(obs)
        assert obs.shape == (env.observation_length,)
        start = len(prompt) + 2
        assert obs[:start].tolist() == [tok.bos_id, *prompt, tok.sep_id]
        assert obs[start : start + len(taken)].tolist() == taken
        assert (obs[start + len(taken) :] == tok.pad_id).all()
        assert len(taken) <= env.max_new_tokens
        ends = action == tok.eos_id or len(taken) == env.max_new_tokens or action in (
            tok.pad_id, tok.bos_id, tok.sep_id
        )  # fmt: skip
        assert terminated == ends and truncated is False
        assert info["action_mask"].tolist() == [0, 0, 0] + [1] * (tok.vocab_size - 3)
        if terminated:
            assert info["stop_reason"] in ("eos", "max_length", "invalid_token")
            assert isinstance(info["success"], bool)
            break


@settings(max_examples=40, deadline=None)
@given(name=st.sampled_from(TASK_NAMES), seed=st.integers(0, 2**31))
def test_answering_the_reference_succeeds(name: str, seed: int) -> None:
    env = ENVS[name]
    _, info = env.reset(seed=seed)
    answer = env.tokenizer.encode(info["reference"])
    for token in [*answer, env.tokenizer.eos_id]:
        _, _, terminated, _, info = env.step(np.int64(token))
    assert terminated and info["success"] and info["sequence_reward"] == 1.0
    assert info["completion"] == info["reference"]
