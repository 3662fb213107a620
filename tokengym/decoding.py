"""Decoding with the tokenizer's own text, fast: one completion (`fast_decode`), or many at once
by table lookup (`batch_decoder`).

For the decoders whose output is the concatenation of a per-token piece (HF `Fuse`, `BPEDecoder`
with no token holding its suffix, and GPT-2's `ByteLevel`, whose pieces are bytes), a completion
is the join of its tokens' pieces: one `join` per completion instead of a call into the
tokenizer. Any other tokenizer is decoded by its own `decode`. The table is checked against
`decode` on every single token and on random sequences before it is used.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np

from .tokenizer import Tokenizer, TokenizerLike, character_table

Decoder = Callable[[np.ndarray], list[str]]


class TableDecoder:
    """Decodes by table lookup (picklable, unlike a closure)."""

    def __init__(self, table: list[str]) -> None:
        self.table = table

    def __call__(self, ids: list[int]) -> str:
        return "".join(map(self.table.__getitem__, ids))


def fast_decode(tokenizer: TokenizerLike) -> Callable[[list[int]], str]:
    """The fastest function with `tokenizer.decode`'s text: a table lookup for one-char-per-id
    tokenizers, the HF method that `Tokenizer.decode` calls (one Python call less), or
    `decode` itself."""
    table = character_table(tokenizer)
    if table is not None:
        return TableDecoder(table)
    if type(tokenizer).decode is Tokenizer.decode:
        return tokenizer.hf.decode  # type: ignore[attr-defined]  # skips special tokens
    return tokenizer.decode


def _byte_level_table() -> dict[str, int]:
    """GPT-2's map from the printable characters of byte-level tokens back to bytes."""
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
    chars, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            chars[chr(byte)] = byte
        else:
            chars[chr(256 + extra)] = byte
            extra += 1
    return chars


def _pieces(tokenizer: TokenizerLike) -> tuple[list[str] | list[bytes], bool] | None:
    """Each id's piece (text, or bytes for ByteLevel) and whether pieces are bytes; None where
    the tokenizer's decoder does not concatenate per-token pieces."""
    hf = getattr(tokenizer, "hf", None)
    if hf is None or type(tokenizer).decode is not Tokenizer.decode:
        return None
    config = json.loads(hf.to_str())
    decoder = config.get("decoder") or {}
    added = config.get("added_tokens") or []
    if any(not token.get("special", False) for token in added):
        return None  # added tokens bypass some decoders: leave them to decode
    specials = {token["id"] for token in added}
    specials |= {tokenizer.pad_id, tokenizer.bos_id, tokenizer.sep_id, tokenizer.eos_id}
    tokens = [hf.id_to_token(i) for i in range(tokenizer.vocab_size)]
    kind = decoder.get("type")
    if kind == "Fuse":
        return ["" if i in specials else t for i, t in enumerate(tokens)], False
    if kind == "BPEDecoder":
        suffix = decoder.get("suffix", "</w>")
        if any(suffix in t for i, t in enumerate(tokens) if i not in specials):
            return None
        return ["" if i in specials else t for i, t in enumerate(tokens)], False
    if kind == "ByteLevel":
        to_byte = _byte_level_table()
        if any(c not in to_byte for i, t in enumerate(tokens) if i not in specials for c in t):
            return None
        pieces = [
            b"" if i in specials else bytes(to_byte[c] for c in t) for i, t in enumerate(tokens)
        ]
        return pieces, True
    return None


def _utf8(piece: bytes) -> str | None:
    try:
        return piece.decode("utf-8")
    except UnicodeDecodeError:
        return None


def batch_decoder(tokenizer: TokenizerLike, seed: int = 0) -> Decoder | None:
    """A function from an (n, T) array of ids (special ids decode to nothing) to the n texts,
    or None where no table reproduces `tokenizer.decode`."""
    found = _pieces(tokenizer)
    if found is None:
        return None
    pieces, as_bytes = found
    table = np.empty(len(pieces), dtype=object)
    table[:] = pieces
    if as_bytes:
        # A row of pieces that are each valid UTF-8 decodes to the join of their texts; only
        # the rows with a piece of a character (a lone byte of one) are joined as bytes.
        texts = [_utf8(piece) for piece in pieces]
        partial = np.array([text is None for text in texts])
        text_table = np.empty(len(pieces), dtype=object)
        text_table[:] = ["" if text is None else text for text in texts]

        def decode(ids: np.ndarray) -> list[str]:
            decoded = list(map("".join, text_table[ids].tolist()))
            for row in partial[ids].any(axis=1).nonzero()[0].tolist():
                decoded[row] = b"".join(table[ids[row]].tolist()).decode("utf-8", "replace")
            return decoded

    else:

        def decode(ids: np.ndarray) -> list[str]:
            return list(map("".join, table[ids].tolist()))

    rng = np.random.default_rng(seed)
    samples = rng.integers(0, tokenizer.vocab_size, size=(256, 6))
    singles = np.arange(tokenizer.vocab_size)[:, None]
    for ids in (singles, samples):
        if decode(ids) != [tokenizer.decode(row) for row in ids.tolist()]:
            return None
    return decode


class CompletionTexts:
    """The texts of many completions at once, from (k, max_new_tokens) windows of generated
    ids: by a character table, the batch decoder, or `decode` per completion (in that order of
    speed). The windows hold the generated ids, then the ending EOS or masked token and PAD:
    specials, which the character and batch tables decode to ""."""

    def __init__(self, tokenizer: TokenizerLike, max_new_tokens: int) -> None:
        table = character_table(tokenizer)
        self.chars = None if table is None else np.array(table, dtype="<U1")
        self.dtype = np.dtype(f"<U{max_new_tokens}")  # a row of chars viewed as one string
        self.batch = None if table is not None else batch_decoder(tokenizer)
        self.decode = fast_decode(tokenizer)

    def __call__(self, windows: np.ndarray, kept: np.ndarray) -> np.ndarray:
        """An object array of the k texts; row i's completion is its first `kept[i]` ids."""
        texts = np.empty(len(windows), dtype=object)
        if self.chars is not None:
            # Python strings at once, not one per assignment.
            texts[:] = self.chars[windows].view(self.dtype)[:, 0].tolist()
        elif self.batch is not None:
            texts[:] = self.batch(windows)
        else:
            ids = [w[:k] for w, k in zip(windows.tolist(), kept.tolist())]
            texts[:] = list(map(self.decode, ids))
        return texts
