"""Tokenizers: a thin layer over HF `tokenizers` with the four special tokens the MDP needs.

The observation layout `[BOS] prompt [SEP] generated [PAD]...` needs BOS, SEP, EOS and PAD, all
distinct. `CharTokenizer` (the default for built-in tasks) puts them at ids 0-3 and the task's
characters after them in sorted order, so ids are stable across runs and machines. A
tokenizer.json that lacks some of them (GPT-2's has only `<|endoftext|>`, taken as EOS) gets
the missing ones appended at the end of its vocabulary, always with the same ids.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from typing import Protocol, runtime_checkable

import tokenizers
from tokenizers import decoders, models, pre_tokenizers

from .errors import TokenizerError

PAD_TOKEN, BOS_TOKEN, SEP_TOKEN, EOS_TOKEN = "<pad>", "<bos>", "<sep>", "<eos>"
SPECIAL_TOKENS = (PAD_TOKEN, BOS_TOKEN, SEP_TOKEN, EOS_TOKEN)
DEFAULT_TOKENS = dict(zip(("pad", "bos", "sep", "eos"), SPECIAL_TOKENS, strict=True))
# Other names a tokenizer.json may give a role (GPT-2, Llama/T5, BERT conventions), tried in
# order when the default name is absent; the lists are disjoint so no token plays two roles.
ROLE_ALIASES: dict[str, tuple[str, ...]] = {
    "pad": ("[PAD]", "<|pad|>", "<|padding|>"),
    "bos": ("<s>", "<|begin_of_text|>", "<|startoftext|>", "[BOS]"),
    "sep": ("[SEP]", "<|sep|>"),
    "eos": ("</s>", "<|endoftext|>", "<|end_of_text|>", "[EOS]"),
}
_SPECIAL_LOOKING = re.compile(r"<[^<>\s]+>|\[[^\[\]\s]+\]")


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

    A role left unnamed takes, in this order: the default name (`<pad>`, `<bos>`, `<sep>`,
    `<eos>`), else the first of the tokenizer's own tokens in :data:`ROLE_ALIASES` (so GPT-2's
    `<|endoftext|>` is its EOS), else a new special token of the default name, appended at the
    end of the vocabulary as HF `add_special_tokens` does (new ones in the order PAD, BOS, SEP,
    EOS: the same ids on every load). `added_special_tokens` lists what was appended; a token
    named explicitly must exist.

    Args:
        hf_tokenizer: any HF tokenizer (BPE, WordPiece, Unigram, WordLevel); it is not modified
            (tokens are added to a copy).
        pad_token, bos_token, sep_token, eos_token: the strings of the special tokens (None: as
            above); all four must be distinct.

    Attributes:
        special_tokens: role ("pad", "bos", "sep", "eos") -> the token playing it.
        added_special_tokens: token -> id of the tokens appended here ({} when none were).

    Example:
        >>> tok = Tokenizer.from_file("gpt2/tokenizer.json")  # doctest: +SKIP
        >>> tok.special_tokens["eos"], tok.added_special_tokens  # doctest: +SKIP
        ('<|endoftext|>', {'<pad>': 50257, '<bos>': 50258, '<sep>': 50259})
    """

    is_char_level = False

    def __init__(
        self,
        hf_tokenizer: tokenizers.Tokenizer,
        *,
        pad_token: str | None = None,
        bos_token: str | None = None,
        sep_token: str | None = None,
        eos_token: str | None = None,
    ) -> None:
        vocab = hf_tokenizer.get_vocab(with_added_tokens=True)
        size = len(vocab)
        if sorted(vocab.values()) != list(range(size)):
            raise TokenizerError(
                f"token ids must run from 0 to vocab_size-1 without gaps so that every action "
                f"of Discrete({size}) is a token; this vocabulary's ids run from "
                f"{min(vocab.values())} to {max(vocab.values())}"
            )
        named = {"pad": pad_token, "bos": bos_token, "sep": sep_token, "eos": eos_token}
        chosen: dict[str, str] = {}
        for role, token in named.items():
            if token is not None and token not in vocab:
                raise TokenizerError(
                    f"the tokenizer has no {role.upper()} token {token!r}; pass {role}_token= "
                    f"with one of its tokens (special-looking ones: "
                    f"{special_looking(hf_tokenizer, vocab)[:10]}) or leave it unset to add one"
                )
            chosen[role] = token if token is not None else _default_token(role, vocab)
        if len(set(chosen.values())) != 4:
            raise TokenizerError(f"the special tokens must be four distinct tokens, got {chosen}")
        missing = [t for t in chosen.values() if t not in vocab]
        if missing:
            hf_tokenizer = tokenizers.Tokenizer.from_str(hf_tokenizer.to_str())  # a copy
            hf_tokenizer.add_special_tokens(missing)
            vocab = hf_tokenizer.get_vocab(with_added_tokens=True)
            if [vocab.get(t) for t in missing] != list(range(size, size + len(missing))):
                raise TokenizerError(f"could not append the special tokens {missing}")
        self.hf = hf_tokenizer
        self.vocab: dict[str, int] = vocab
        self.vocab_size = len(vocab)
        self.special_tokens = chosen
        self.added_special_tokens = {t: vocab[t] for t in missing}
        ids = {role: vocab[token] for role, token in chosen.items()}
        self.pad_id, self.bos_id, self.sep_id, self.eos_id = (
            ids["pad"],
            ids["bos"],
            ids["sep"],
            ids["eos"],
        )
        self.unk_id = _unknown_id(hf_tokenizer, self.vocab)

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
        added = (
            f", added_special_tokens={self.added_special_tokens}"
            if self.added_special_tokens
            else ""
        )
        return f"{type(self).__name__}(vocab_size={self.vocab_size}{added})"


def _default_token(role: str, vocab: dict[str, int]) -> str:
    """The token of an unnamed role: the default name, an alias present, else the default."""
    for token in (DEFAULT_TOKENS[role], *ROLE_ALIASES[role]):
        if token in vocab:
            return token
    return DEFAULT_TOKENS[role]


def special_looking(hf: tokenizers.Tokenizer, vocab: dict[str, int]) -> list[str]:
    """The tokenizer's special tokens, then other tokens shaped like `<x>` or `[x]`, sorted."""
    special = sorted(t.content for t in hf.get_added_tokens_decoder().values() if t.special)
    shaped = sorted(t for t in vocab if t not in special and _SPECIAL_LOOKING.fullmatch(t))
    return special + shaped


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
