"""Tokenizers: a thin layer over HF `tokenizers` with the four special tokens the MDP needs.

The observation layout `[BOS] prompt [SEP] generated [PAD]...` needs BOS, SEP, EOS and PAD, all
distinct. `CharTokenizer` (the default for built-in tasks) puts them at ids 0-3 and the task's
characters after them in sorted order, so ids are stable across runs and machines.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from typing import Protocol, runtime_checkable

import tokenizers
from tokenizers import decoders, models, pre_tokenizers

from .errors import TokenizerError

PAD_TOKEN, BOS_TOKEN, SEP_TOKEN, EOS_TOKEN = "<pad>", "<bos>", "<sep>", "<eos>"
SPECIAL_TOKENS = (PAD_TOKEN, BOS_TOKEN, SEP_TOKEN, EOS_TOKEN)


@runtime_checkable
class TokenizerLike(Protocol):
    """What the environment needs of a tokenizer."""

    vocab_size: int
    pad_id: int
    bos_id: int
    sep_id: int
    eos_id: int

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...


class Tokenizer:
    """Wraps a `tokenizers.Tokenizer` and resolves its special tokens.

    Args:
        hf_tokenizer: any HF tokenizer (BPE, WordPiece, Unigram, WordLevel).
        pad_token, bos_token, sep_token, eos_token: the strings of the special tokens; each must
            be in the vocabulary and all four must be distinct.

    Example:
        >>> tok = Tokenizer.from_file("tokenizer.json", eos_token="</s>")  # doctest: +SKIP
    """

    is_char_level = False

    def __init__(
        self,
        hf_tokenizer: tokenizers.Tokenizer,
        *,
        pad_token: str = PAD_TOKEN,
        bos_token: str = BOS_TOKEN,
        sep_token: str = SEP_TOKEN,
        eos_token: str = EOS_TOKEN,
    ) -> None:
        self.hf = hf_tokenizer
        self.vocab: dict[str, int] = hf_tokenizer.get_vocab(with_added_tokens=True)
        self.vocab_size = len(self.vocab)
        if sorted(self.vocab.values()) != list(range(self.vocab_size)):
            raise TokenizerError(
                f"token ids must run from 0 to vocab_size-1 without gaps so that every action "
                f"of Discrete({self.vocab_size}) is a token; this vocabulary's ids run from "
                f"{min(self.vocab.values())} to {max(self.vocab.values())}"
            )
        named = {"pad": pad_token, "bos": bos_token, "sep": sep_token, "eos": eos_token}
        ids = {role: self._special_id(role, token) for role, token in named.items()}
        if len(set(ids.values())) != 4:
            raise TokenizerError(f"the special tokens must be four distinct tokens, got {named}")
        self.pad_id, self.bos_id, self.sep_id, self.eos_id = (
            ids["pad"],
            ids["bos"],
            ids["sep"],
            ids["eos"],
        )
        self.unk_id = _unknown_id(hf_tokenizer, self.vocab)

    def _special_id(self, role: str, token: str) -> int:
        if token not in self.vocab:
            specials = sorted(t for t in self.vocab if t.startswith("<") or t.startswith("["))
            raise TokenizerError(
                f"the tokenizer has no {role.upper()} token {token!r}; pass {role}_token= with one "
                f"of its tokens (special-looking ones: {specials[:10]}) or add it when training"
            )
        return self.vocab[token]

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], **special_tokens: str) -> Tokenizer:
        """Loads a `tokenizer.json` file written by HF `tokenizers`."""
        try:
            hf = tokenizers.Tokenizer.from_file(os.fspath(path))
        except Exception as exc:  # the Rust side raises plain Exception
            raise TokenizerError(f"cannot load tokenizer file {os.fspath(path)!r}: {exc}") from exc
        return cls(hf, **special_tokens)

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, with no special tokens added."""
        try:
            return self.hf.encode(text, add_special_tokens=False).ids
        except Exception as exc:
            raise TokenizerError(f"cannot encode {text!r}: {exc}") from exc

    def decode(self, ids: Sequence[int]) -> str:
        """Text of `ids`; special tokens are dropped."""
        return self.hf.decode(list(ids), skip_special_tokens=True)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size})"


def _unknown_id(hf: tokenizers.Tokenizer, vocab: dict[str, int]) -> int | None:
    """The id the model maps unknown text to, or None where it has no unknown token."""
    model = json.loads(hf.to_str()).get("model", {})
    if model.get("unk_token") is not None:  # BPE, WordPiece, WordLevel
        return vocab.get(model["unk_token"])
    return model.get("unk_id")  # Unigram


class CharTokenizer(Tokenizer):
    """One token per character: PAD, BOS, SEP, EOS at ids 0-3, then the sorted alphabet.

    Example:
        >>> tok = CharTokenizer("ba")
        >>> tok.encode("ab"), tok.decode([5, 4]), tok.vocab_size
        ([4, 5], 'ba', 6)
    """

    is_char_level = True

    def __init__(self, alphabet: Iterable[str]) -> None:
        chars = sorted(set(alphabet))
        if not chars:
            raise TokenizerError("a character tokenizer needs a non-empty alphabet")
        bad = [c for c in chars if len(c) != 1]
        if bad:
            raise TokenizerError(f"alphabet entries must be single characters, got {bad[:5]}")
        self.alphabet = "".join(chars)
        vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS)}
        vocab.update({c: i + len(SPECIAL_TOKENS) for i, c in enumerate(chars)})
        # No unknown token on purpose: a character outside the alphabet is an error.
        hf = tokenizers.Tokenizer(models.WordLevel(vocab, unk_token=None))
        hf.add_special_tokens(list(SPECIAL_TOKENS))
        hf.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
        hf.decoder = decoders.Fuse()
        super().__init__(hf)

    def encode(self, text: str) -> list[int]:
        # A dict lookup gives the same ids as the HF pipeline, several times faster.
        try:
            return [self.vocab[c] for c in text]
        except KeyError:
            unknown = sorted(set(text) - set(self.alphabet))
            raise TokenizerError(
                f"cannot encode {text!r}: characters {unknown} are not in the alphabet "
                f"{self.alphabet!r}"
            ) from None

    def __repr__(self) -> str:
        return f"CharTokenizer({self.alphabet!r})"


def character_table(tokenizer: TokenizerLike) -> list[str] | None:
    """id -> its character ('' for special tokens) where every ordinary id is one character.

    Both environments decode through this table in their hot paths; None for other tokenizers.
    """
    if not getattr(tokenizer, "is_char_level", False):
        return None
    specials = {tokenizer.pad_id, tokenizer.bos_id, tokenizer.sep_id, tokenizer.eos_id}
    return ["" if i in specials else tokenizer.decode([i]) for i in range(tokenizer.vocab_size)]


def resolve_tokenizer(
    tokenizer: TokenizerLike | tokenizers.Tokenizer | str | os.PathLike[str] | None,
    alphabet: Iterable[str],
    special_tokens: dict[str, str] | None = None,
) -> TokenizerLike:
    """The tokenizer an environment uses: a char tokenizer of `alphabet` when none is given.

    `special_tokens` ({"pad_token": "[PAD]", ...}) name the special tokens of a tokenizer.json
    path or a `tokenizers.Tokenizer`; other tokenizers already know theirs.
    """
    special_tokens = special_tokens or {}
    if isinstance(tokenizer, (str, os.PathLike)):
        return Tokenizer.from_file(tokenizer, **special_tokens)
    if isinstance(tokenizer, tokenizers.Tokenizer):
        return Tokenizer(tokenizer, **special_tokens)
    if special_tokens:
        names = ", ".join(f"{k}={v!r}" for k, v in special_tokens.items())
        raise TokenizerError(
            f"{names}: special token names apply to a tokenizer.json path or a "
            f"tokenizers.Tokenizer, got tokenizer={tokenizer!r}"
        )
    if tokenizer is None:
        return CharTokenizer(alphabet)
    if isinstance(tokenizer, TokenizerLike):
        return tokenizer
    raise TokenizerError(
        f"tokenizer must be None, a tokenizer.json path, a tokenizers.Tokenizer or an object with "
        f"encode, decode, vocab_size, pad_id, bos_id, sep_id and eos_id; got "
        f"{type(tokenizer).__name__}"
    )
