"""Character/byte tokenisation of a text corpus, its train/val split and a vectorised language-model
batch sampler (the corpora themselves: :mod:`structlearn.data.corpus`).

Split by position: the first 90 % of the token stream trains, the last 10 % validates (Tiny Shakespeare,
named or given by path: nanoGPT's cut ``int(0.9·n)``, one token earlier than the default rule, so the
splits are nanoGPT's to the character). Tokenisers:
``char`` (vocabulary = the sorted distinct characters of the train split, id 0 reserved for characters
unseen there) and ``byte`` (256 ids, no vocabulary). Nothing here downloads.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from structlearn.data.corpus import CorpusFingerprint, is_shakespeare, read_corpus
from structlearn.utils.validation import check_choice, check_float

TOKENIZERS = ("char", "byte")
UNKNOWN_CHAR = "\ufffd"
_CHUNK = 1 << 20


class CharTokenizer:
    """Characters → ids 1..V in code-point order; id 0 stands for any character not in the vocabulary."""

    kind = "char"
    unk_id = 0

    def __init__(self, chars: str) -> None:
        cps = _codepoints(chars)
        # bincount is O(n) where np.unique would sort millions of characters.
        codes = np.flatnonzero(np.bincount(cps)) if len(cps) else np.zeros(0, dtype=np.int64)
        self._codes = codes  # sorted code points; id = position + 1
        self.chars = "".join(map(chr, codes.tolist()))

    @classmethod
    def fit(cls, text: str) -> CharTokenizer:
        return cls(text)

    @property
    def vocab_size(self) -> int:
        return len(self._codes) + 1

    def encode(self, text: str, dtype: Any = np.int64) -> np.ndarray:
        """Vectorised lookup (searchsorted over the sorted code points); unseen characters → 0.

        Works in chunks of 2²⁰ characters so that a corpus of tens of MB needs no int64 temporaries
        of its own size; ``dtype`` is the output type (e.g. uint8 when the vocabulary fits).
        """
        cps = _codepoints(text)
        out = np.zeros(len(cps), dtype=dtype)
        if len(self._codes) == 0:
            return out
        for i in range(0, len(cps), _CHUNK):
            c = cps[i : i + _CHUNK]
            pos = np.searchsorted(self._codes, c).clip(max=len(self._codes) - 1)
            out[i : i + _CHUNK] = np.where(self._codes[pos] == c, pos + 1, 0)
        return out

    def decode(self, ids: Any) -> str:
        table = np.array([UNKNOWN_CHAR, *self.chars], dtype=object)
        return "".join(table[np.asarray(ids, dtype=np.int64)].tolist())

    def state_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "codepoints": self._codes.astype(np.int64).tolist()}


class ByteTokenizer:
    """UTF-8 bytes as ids 0..255."""

    kind = "byte"
    vocab_size = 256

    def encode(self, data: bytes | str, dtype: Any = np.int64) -> np.ndarray:
        raw = data.encode("utf-8") if isinstance(data, str) else data
        return np.frombuffer(raw, dtype=np.uint8).astype(dtype)

    def decode(self, ids: Any) -> str:
        return bytes(np.asarray(ids, dtype=np.uint8).tobytes()).decode("utf-8", errors="replace")

    def state_dict(self) -> dict[str, Any]:
        return {"kind": self.kind}


Tokenizer = CharTokenizer | ByteTokenizer


def tokenizer_from_state(state: dict[str, Any]) -> Tokenizer:
    """Rebuild a tokenizer saved with ``state_dict`` (e.g. from a checkpoint)."""
    kind = state.get("kind")
    if kind == "byte":
        return ByteTokenizer()
    if kind == "char" and isinstance(state.get("codepoints"), list):
        return CharTokenizer("".join(map(chr, state["codepoints"])))
    raise ValueError(f"unknown tokenizer state (kind {kind!r})")


def _codepoints(text: str) -> np.ndarray:
    """Code points as a uint32 view of the UTF-32 encoding (no per-character Python work)."""
    return np.frombuffer(text.encode("utf-32-le", errors="replace"), dtype=np.uint32)


@dataclass(frozen=True)
class TextData:
    """Tokenised train/val streams (1-D int tensors), the tokenizer and the corpus fingerprint."""

    train: torch.Tensor
    val: torch.Tensor
    tokenizer: Tokenizer
    fingerprint: CorpusFingerprint

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size

    def check_context(self, block_size: int) -> None:
        """A context needs ``block_size + 1`` consecutive tokens in each split (``block_size``: a validated
        positive int, e.g. ``TrainConfig.block_size``)."""
        for name, split in (("train", self.train), ("val", self.val)):
            if block_size >= len(split):
                raise ValueError(
                    f"context {block_size} is >= the {name} split length ({len(split)} tokens); "
                    f"use a smaller --block-size or a larger corpus"
                )


def load_text(
    corpus: str | os.PathLike[str] | None = "stdlib",
    tokenizer: str = "char",
    max_bytes: int | None = None,
    val_fraction: float = 0.1,
    vocabulary: dict[str, Any] | None = None,
) -> TextData:
    """Read, tokenise and split a corpus by position (first ``1 − val_fraction`` trains).

    ``vocabulary`` (a tokenizer ``state_dict``, e.g. from a checkpoint) reuses a saved vocabulary
    instead of building one from the train split.
    """
    check_choice("tokenizer", tokenizer, TOKENIZERS)
    check_float("val_fraction", val_fraction, positive=True, maximum=0.5)
    raw, fingerprint = read_corpus(corpus, max_bytes)
    # nanoGPT's prepare.py cuts Tiny Shakespeare at int(0.9·n); the library's rule keeps n − int(0.1·n).
    nano = is_shakespeare(fingerprint) and val_fraction == 0.1

    def cut_at(n: int) -> int:
        return int(n * (1 - val_fraction)) if nano else n - int(n * val_fraction)

    if tokenizer == "byte":
        tok: Tokenizer = ByteTokenizer()
        ids = tok.encode(raw, dtype=np.uint8)
    else:
        text = raw.decode("utf-8", errors="replace")
        if vocabulary is not None:
            tok = tokenizer_from_state(vocabulary)
            if tok.kind != "char":
                raise ValueError(f"vocabulary is for the {tok.kind!r} tokenizer, not 'char'")
        else:
            tok = CharTokenizer.fit(text[: cut_at(len(text))])
        # compact storage (one byte per token for vocabularies up to 256); batches are int64
        ids = tok.encode(text, dtype=np.uint8 if tok.vocab_size <= 256 else np.int32)
        del text
    cut = cut_at(len(ids))
    stream = torch.from_numpy(ids)
    return TextData(stream[:cut].clone(), stream[cut:].clone(), tok, fingerprint)


def sample_batch(
    tokens: torch.Tensor, block_size: int, batch_size: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch_size`` random windows: x = tokens[o : o+T], y = tokens[o+1 : o+T+1], as int64.

    One ``randint`` for the offsets and one gather for all windows (no Python loop over the batch).
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be > 0, got {batch_size}")
    if block_size >= len(tokens):
        raise ValueError(f"context {block_size} is >= the split length ({len(tokens)} tokens)")
    offsets = torch.randint(0, len(tokens) - block_size, (batch_size,), generator=generator)
    window = tokens[offsets[:, None] + torch.arange(block_size + 1)].long()
    return window[:, :-1], window[:, 1:]
