"""Tokenizers: the character default and any tokenizer.json, here a BPE trained at test time."""

from __future__ import annotations

import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from tokenizers import Tokenizer as HFTokenizer
from tokenizers import decoders, models, pre_tokenizers, trainers

import tokengym  # noqa: F401
from tokengym import CharTokenizer, TokenGenEnv, Tokenizer, TokenizerError


def test_char_tokenizer_ids_are_fixed() -> None:
    tok = CharTokenizer("dcba")
    assert (tok.pad_id, tok.bos_id, tok.sep_id, tok.eos_id) == (0, 1, 2, 3)
    assert tok.vocab["a"] == 4 and tok.vocab["d"] == 7 and tok.vocab_size == 8
    assert tok.encode("abcd") == [4, 5, 6, 7]
    assert tok.decode([4, 3, 0, 7]) == "ad"
    assert TokenGenEnv(task="addition").tokenizer.vocab == {
        "<pad>": 0, "<bos>": 1, "<sep>": 2, "<eos>": 3, "+": 4,
        **{str(d): 5 + d for d in range(10)},
    }  # fmt: skip


def test_char_tokenizer_rejects_unknown_characters() -> None:
    with pytest.raises(TokenizerError) as err:
        CharTokenizer("ab").encode("abz")
    assert str(err.value) == "cannot encode 'abz': characters ['z'] are not in the alphabet 'ab'"


def train_bpe(path: Path, specials: list[str]) -> Path:
    hf = HFTokenizer(models.BPE(unk_token=None))
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    corpus = ["abcde edcba abc cab bca", "aaa bbb ccc ddd eee"] * 50
    hf.train_from_iterator(corpus, trainer)
    out = path / "tokenizer.json"
    hf.save(str(out))
    return out


@pytest.fixture(scope="module")
def bpe_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_bpe(tmp_path_factory.mktemp("bpe"), ["<pad>", "<bos>", "<sep>", "<eos>"])


@pytest.mark.parametrize("mode", ["terminal", "dense"])
def test_env_runs_on_a_bpe_tokenizer_json(bpe_file: Path, mode: str) -> None:
    env = gym.make("TokenGen-v0", task="reverse", tokenizer=str(bpe_file), reward_mode=mode)
    tok = env.unwrapped.tokenizer
    assert isinstance(tok, Tokenizer) and not tok.is_char_level
    assert env.action_space.n == tok.vocab_size > 250
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped)
    _, info = env.reset(seed=0)
    answer = tok.encode(info["reference"])
    assert len(answer) < len(info["reference"])  # merges happened
    total = 0.0
    for token in [*answer, tok.eos_id]:
        _, reward, terminated, _, info = env.step(token)
        total += reward
    assert terminated and info["success"] and info["completion"] == info["reference"]
    assert total == pytest.approx(1.0)


def test_bpe_vector_env_matches_sync(bpe_file: Path) -> None:
    kwargs = {"task": "copy", "tokenizer": str(bpe_file), "train_size": 30, "test_size": 5}
    native = gym.make_vec("TokenGen-v0", num_envs=3, **kwargs)
    sync = gym.make_vec("TokenGen-v0", num_envs=3, vectorization_mode="sync", **kwargs)
    native.reset(seed=2), sync.reset(seed=2)
    rng = np.random.default_rng(0)
    for _ in range(30):
        actions = rng.integers(3, native.tokenizer.vocab_size, size=3)
        a, b = native.step(actions), sync.step(actions)
        assert a[0].tolist() == b[0].tolist() and a[1].tolist() == b[1].tolist()
        assert (
            a[4].get("completion", np.array([])).tolist()
            == b[4].get("completion", np.array([])).tolist()
        )


def test_a_missing_default_special_token_is_appended_and_a_named_one_is_an_error(
    tmp_path: Path,
) -> None:
    path = train_bpe(tmp_path, ["<pad>", "<bos>", "<sep>"])
    tok = TokenGenEnv(task="copy", tokenizer=str(path)).tokenizer
    size = len(HFTokenizer.from_file(str(path)).get_vocab())
    assert tok.added_special_tokens == {"<eos>": size} and tok.eos_id == size
    assert (tok.pad_id, tok.bos_id, tok.sep_id, tok.vocab_size) == (0, 1, 2, size + 1)
    with pytest.raises(TokenizerError) as err:
        TokenGenEnv(task="copy", tokenizer=str(path), eos_token="</s>")
    assert str(err.value) == (
        "the tokenizer has no EOS token '</s>'; pass eos_token= with one of its tokens "
        "(special-looking ones: ['<bos>', '<pad>', '<sep>']) or leave it unset to add one"
    )
    with pytest.raises(TokenizerError, match="must be four distinct tokens"):
        Tokenizer.from_file(path, eos_token="<sep>")


@pytest.fixture(scope="module")
def gpt2_style_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A byte-level BPE whose only special token is <|endoftext|>, as GPT-2's tokenizer.json."""
    return train_bpe(tmp_path_factory.mktemp("gpt2"), ["<|endoftext|>"])


def test_a_gpt2_style_tokenizer_gets_pad_bos_sep_appended(gpt2_style_file: Path) -> None:
    hf = HFTokenizer.from_file(str(gpt2_style_file))
    size = hf.get_vocab_size()
    assert "<" in hf.get_vocab() and "[" in hf.get_vocab()  # plain bytes, not special-looking
    env = gym.make("TokenGen-v0", task="reverse", tokenizer=str(gpt2_style_file))
    tok = env.unwrapped.tokenizer
    assert tok.special_tokens == {
        "pad": "<pad>",
        "bos": "<bos>",
        "sep": "<sep>",
        "eos": "<|endoftext|>",
    }
    assert tok.added_special_tokens == {"<pad>": size, "<bos>": size + 1, "<sep>": size + 2}
    assert (tok.eos_id, tok.vocab_size, env.action_space.n) == (0, size + 3, size + 3)
    assert repr(tok) == (
        f"Tokenizer(vocab_size={size + 3}, added_special_tokens={tok.added_special_tokens})"
    )
    # Stable: a second load, or a tokenizers.Tokenizer (left unmodified), gives the same ids.
    assert Tokenizer(hf).vocab == Tokenizer.from_file(gpt2_style_file).vocab == tok.vocab
    assert hf.get_vocab_size() == size
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped)
    _, info = env.reset(seed=0)
    for token in [*tok.encode(info["reference"]), tok.eos_id]:
        _, reward, terminated, _, info = env.step(token)
    assert terminated and info["success"] and reward == 1.0
    vec = gym.make_vec("TokenGen-v0", num_envs=2, task="copy", tokenizer=str(gpt2_style_file))
    assert vec.tokenizer.vocab == tok.vocab
    vec.close()


class WrongSizeTokenizer:
    """A tokenizer whose vocab_size is smaller than the ids it produces."""

    vocab_size, pad_id, bos_id, sep_id, eos_id = 6, 0, 1, 2, 3

    def encode(self, text: str) -> list[int]:
        return [4 + "abcde".index(c) for c in text]

    def decode(self, ids: list[int]) -> str:
        return "".join("abcde"[i - 4] for i in ids)


def test_tokenizer_size_disagreeing_with_its_ids_is_an_error() -> None:
    with pytest.raises(TokenizerError) as err:
        TokenGenEnv(task="copy", tokenizer=WrongSizeTokenizer())
    assert "outside the action space Discrete(6): the tokenizer's vocab_size disagrees" in str(
        err.value
    )


def test_special_tokens_of_a_tokenizer_json_through_make(tmp_path: Path) -> None:
    path = train_bpe(tmp_path, ["[PAD]", "[BOS]", "[SEP]", "</s>"])
    names = {"pad_token": "[PAD]", "bos_token": "[BOS]", "sep_token": "[SEP]", "eos_token": "</s>"}
    env = gym.make("TokenGen-v0", task="copy", tokenizer=str(path), **names)
    tok = env.unwrapped.tokenizer
    assert [tok.pad_id, tok.bos_id, tok.sep_id, tok.eos_id] == [0, 1, 2, 3]
    vec = gym.make_vec("TokenGen-v0", num_envs=2, task="copy", tokenizer=str(path), **names)
    assert vec.tokenizer.eos_id == 3
    with pytest.raises(TokenizerError) as err:
        TokenGenEnv(task="copy", eos_token="</s>")
    assert str(err.value) == (
        "eos_token='</s>': special token names apply to a tokenizer.json path or a "
        "tokenizers.Tokenizer, got tokenizer=None"
    )


def test_text_the_tokenizer_maps_to_unknown_is_an_error() -> None:
    vocab = {"<pad>": 0, "<bos>": 1, "<sep>": 2, "<eos>": 3, "[UNK]": 4, "a": 5, "b": 6}
    hf = HFTokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    hf.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    data = {
        "train": [{"prompt": "ab", "answer": "ba"}, {"prompt": "ad", "answer": "da"}],
        "test": [{"prompt": "ba", "answer": "ab"}],
    }
    with pytest.raises(TokenizerError) as err:
        TokenGenEnv(dataset=data, tokenizer=hf)
    assert str(err.value) == (
        "the tokenizer maps train prompt train[1] ('ad') to its unknown token (id 4, at token "
        "1): that text cannot be represented; use a tokenizer whose vocabulary covers the data"
    )
