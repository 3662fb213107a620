"""The action masks are read-only constants; completions decoded by table equal `decode`."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

import tokengym
from tests.helpers import policy_actions
from tests.test_vector import assert_same_infos, first_char_reward, run_batch
from tokengym.decoding import batch_decoder

READ_ONLY = "assignment destination is read-only"


def test_single_env_infos_own_their_masks_and_the_env_mask_cannot_be_written_through() -> None:
    env = gym.make("TokenGen-v0", task="copy")
    _, info = env.reset(seed=0)
    step_info = env.step(4)[-1]
    with pytest.raises(ValueError, match=READ_ONLY):
        env.unwrapped.action_masks()[0] = True
    for key in ("action_mask", "action_mask_bool"):
        assert not np.shares_memory(step_info[key], info[key])  # Gymnasium 1.4's checker
        assert not np.shares_memory(step_info[key], env.unwrapped.action_masks())
    info["action_mask"][0] = 1  # the user's own copy: the env and later infos keep theirs
    assert env.step(4)[-1]["action_mask"].tolist() == [0, 0, 0, 1, 1, 1, 1, 1, 1]
    assert step_info["action_mask"].dtype == np.int8
    assert env.unwrapped.action_masks().tolist() == [False] * 3 + [True] * 6
    assert step_info["action_mask_bool"].tolist() == [False] * 3 + [True] * 6


def test_vector_env_masks_are_broadcast_views_that_cannot_be_written_through() -> None:
    env = gym.make_vec("TokenGen-v0", num_envs=3, task="copy")
    _, infos = env.reset(seed=0)
    for key in ("action_mask", "action_mask_bool", "_action_mask", "gamma"):
        with pytest.raises(ValueError, match=READ_ONLY):
            infos[key][0] = 0
    with pytest.raises(ValueError, match=READ_ONLY):
        env.action_masks()[0, 0] = True
    assert infos["action_mask"].shape == (3, 9) and infos["action_mask"].strides == (0, 1)
    assert infos["action_mask_bool"].tolist() == [[False] * 3 + [True] * 6] * 3
    step_infos = env.step(np.array([4, 4, 4]))[-1]
    assert step_infos["action_mask"] is infos["action_mask"]
    step_infos["success"][0] = True  # the per-step values are fresh, writable arrays


def trained(decoder: Any, pre_tokenizer: Any, suffix: str | None = None) -> Tokenizer:
    model = models.BPE() if suffix is None else models.BPE(end_of_word_suffix=suffix)
    tokenizer = Tokenizer(model)
    tokenizer.pre_tokenizer, tokenizer.decoder = pre_tokenizer, decoder
    trainer = trainers.BpeTrainer(
        vocab_size=60,
        special_tokens=["<pad>", "<bos>", "<sep>", "<eos>"],
        show_progress=False,
        **({} if suffix is None else {"end_of_word_suffix": suffix}),
    )
    tokenizer.train_from_iterator(["abc abd bca cab éa daa ebe"] * 20, trainer)
    return tokenizer


BYTE_LEVEL = trained(decoders.ByteLevel(), pre_tokenizers.ByteLevel(add_prefix_space=False))
PLAIN_BPE = trained(decoders.BPEDecoder(), pre_tokenizers.WhitespaceSplit())
SUFFIX_BPE = trained(decoders.BPEDecoder(), pre_tokenizers.WhitespaceSplit(), "</w>")
WORD_PIECE = trained(decoders.WordPiece(), pre_tokenizers.WhitespaceSplit())


@pytest.mark.parametrize(
    ("hf", "by_table"),
    [(BYTE_LEVEL, True), (PLAIN_BPE, True), (SUFFIX_BPE, False), (WORD_PIECE, False)],
    ids=["byte-level", "bpe", "bpe-with-suffix", "word-piece"],
)
def test_table_decoding_is_used_only_where_it_equals_decode(hf: Tokenizer, by_table: bool) -> None:
    tok = tokengym.Tokenizer(hf)
    decode = batch_decoder(tok)
    assert (decode is not None) == by_table
    if decode is not None:
        ids = np.random.default_rng(1).integers(0, tok.vocab_size, size=(500, 5))
        assert decode(ids) == [tok.decode(row) for row in ids.tolist()]
    if hf is BYTE_LEVEL:  # rows with a token that is part of a character (decoded as bytes)
        lone = {i for i in range(tok.vocab_size) if "\ufffd" in tok.decode([i])}
        with_lone = [bool(lone & set(row)) for row in ids.tolist()]
        assert len(lone) == 3 and 0 < sum(with_lone) < len(with_lone)


@pytest.mark.parametrize("reward", [None, "prefix", first_char_reward])
def test_vector_env_with_a_byte_level_bpe_matches_sync(reward: Any) -> None:
    config = {"task": "copy", "tokenizer": BYTE_LEVEL, "reward": reward, "max_new_tokens": 5}
    native = gym.make_vec("TokenGen-v0", num_envs=4, **config)
    sync = gym.make_vec("TokenGen-v0", num_envs=4, vectorization_mode="sync", **config)
    tok = native.tokenizer
    actions = policy_actions(3, tok.vocab_size, tok.eos_id, 120).reshape(30, 4)
    ended = 0
    for mine, theirs in zip(run_batch(native, actions, 2), run_batch(sync, actions, 2)):
        assert mine[0].tolist() == theirs[0].tolist()
        for a, b in zip(mine[1:4], theirs[1:4]):
            assert (a is None and b is None) or a.tolist() == b.tolist()
        assert_same_infos(mine[4], theirs[4])
        ended += sum(reason != "" for reason in mine[4]["stop_reason"])
    assert ended > 10


@pytest.mark.parametrize("mode", ["NextStep", "SameStep"])
@pytest.mark.parametrize("reward", [None, first_char_reward])
def test_text_infos_false_gives_numeric_infos_equal_to_sync(mode: str, reward: Any) -> None:
    config = {"task": "copy", "reward": reward, "text_infos": False, "reward_mode": "progress"}
    native = gym.make_vec("TokenGen-v0", num_envs=3, autoreset_mode=mode, **config)
    sync = gym.make_vec(
        "TokenGen-v0",
        num_envs=3,
        vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": mode},
        **config,
    )
    tok = native.tokenizer
    actions = policy_actions(6, tok.vocab_size, tok.eos_id, 240).reshape(80, 3)
    codes = []
    for mine, theirs in zip(run_batch(native, actions, 4), run_batch(sync, actions, 4)):
        assert mine[0].tolist() == theirs[0].tolist()
        for a, b in zip(mine[1:4], theirs[1:4]):
            assert (a is None and b is None) or a.tolist() == b.tolist()
        assert_same_infos(mine[4], theirs[4])
        codes += mine[4].get("final_info", mine[4])["stop_code"].tolist()
    keys = ["prompt_index", "sequence_reward", "success", "stop_code", "gamma", "action_mask"]
    assert [k for k in mine[4] if not k.startswith("_")][:6] == keys
    assert {0, 1, 2} <= set(codes)  # eos, max_length, invalid_token
    single = gym.make("TokenGen-v0", **config)
    _, info = single.reset(seed=0)
    assert list(info) == [*keys, "action_mask_bool"] and info["stop_code"] == -1
