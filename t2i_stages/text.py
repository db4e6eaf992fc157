"""Caption text processing: the word-level vocabulary used by RNN encoders, and an offline
wrapper around Hugging Face tokenizers for transformer encoders.

Both expose one interface, which every dataset and text encoder relies on::

    ids, mask = tok.encode(text, max_words, rng=None, subsample=False)
    len(tok) == tok.vocab_size
    tok.save(path)               # JSON (never a pickle)
    Tok.load(path)

``ids`` is a list of ``max_words`` ints, zero-padded (index 0 is padding / ``<end>``, as in the
AttnGAN family); ``mask`` is a list of ``max_words`` bools, True for a real token. No torch here:
datasets turn the lists into tensors.

Word tokenization follows the references (architectures.md §8.1): lower-case, non-ASCII
characters dropped, words are ``\\w+`` runs. A caption longer than ``max_words`` is either
truncated or, with ``subsample=True`` (the references' behaviour), ``max_words`` positions are drawn
at random with ``rng`` and kept in their original order.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from .errors import T2IError

PAD = "<end>"
UNK = "<unk>"
_WORD = re.compile(r"\w+")
_FORMAT = "t2i-stages-word-vocab"


class Tokenizer(Protocol):
    """What a dataset needs from a tokenizer."""

    vocab_size: int

    def encode(
        self, text: str, max_words: int, rng: Any = None, subsample: bool = False
    ) -> tuple[list[int], list[bool]]: ...

    def __len__(self) -> int: ...

    def save(self, path: str | Path) -> None: ...


def tokenize(text: str) -> list[str]:
    """Split a caption into lower-case ASCII ``\\w+`` words (the references' tokenizer)."""
    text = text.replace("\ufffd\ufffd", " ").lower()
    text = text.encode("ascii", "ignore").decode("ascii")
    return _WORD.findall(text)


def _select(n: int, max_words: int, rng: Any, subsample: bool) -> list[int]:
    """Which of ``n`` token positions to keep (all, the first ``max_words``, or a random subset)."""
    if n <= max_words:
        return list(range(n))
    if subsample:
        if rng is None:
            raise ValueError("word subsampling needs an rng (numpy Generator or random.Random)")
        if hasattr(rng, "choice") and hasattr(rng, "integers"):  # numpy Generator
            keep = rng.choice(n, size=max_words, replace=False)
            return sorted(int(k) for k in keep)
        return sorted(rng.sample(range(n), max_words))
    return list(range(max_words))


def _pad(ids: list[int], max_words: int) -> tuple[list[int], list[bool]]:
    mask = [True] * len(ids) + [False] * (max_words - len(ids))
    return ids + [0] * (max_words - len(ids)), mask


class WordVocab:
    """A word-level vocabulary: index 0 = ``<end>`` (padding), index 1 = ``<unk>``.

    Built deterministically (most frequent first, ties alphabetical) so that the same captions
    always give the same indices, unlike the references' Python-2 dict order.
    """

    def __init__(self, words: list[str]):
        if not words or words[0] != PAD:
            raise ValueError(f"a vocabulary must start with {PAD!r}")
        if len(set(words)) != len(words):
            raise ValueError("duplicate words in the vocabulary")
        self.itos: list[str] = list(words)
        self.stoi: dict[str, int] = {w: i for i, w in enumerate(self.itos)}
        self.unk_index = self.stoi.get(UNK, None)

    @classmethod
    def build(
        cls, captions: Iterable[str], min_count: int = 1, extra: Iterable[str] = ()
    ) -> WordVocab:
        """Vocabulary over ``captions`` (words seen at least ``min_count`` times) plus ``extra``."""
        counts = Counter()
        for caption in captions:
            counts.update(tokenize(caption))
        for word in extra:
            counts[word] += max(min_count, 1)
        words = sorted(
            (w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w)
        )
        words = [w for w in words if w not in (PAD, UNK)]
        return cls([PAD, UNK, *words])

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, word: str) -> bool:
        return word in self.stoi

    def ids(self, text: str) -> list[int]:
        """All token ids of ``text`` (unknown words map to ``<unk>``; dropped if there is none)."""
        out = []
        for w in tokenize(text):
            i = self.stoi.get(w, self.unk_index)
            if i is not None:
                out.append(i)
        return out

    def encode(
        self, text: str, max_words: int, rng: Any = None, subsample: bool = False
    ) -> tuple[list[int], list[bool]]:
        """``max_words`` zero-padded ids and the mask (True = real word)."""
        ids = self.ids(text)
        ids = [ids[k] for k in _select(len(ids), max_words, rng, subsample)]
        return _pad(ids, max_words)

    def decode(self, ids: Iterable[int]) -> str:
        """Words of ``ids`` up to the first padding index."""
        words = []
        for i in ids:
            i = int(i)
            if i == 0:
                break
            words.append(self.itos[i] if 0 <= i < len(self.itos) else UNK)
        return " ".join(words)

    def to_dict(self) -> dict[str, Any]:
        return {"format": _FORMAT, "version": 1, "words": self.itos}

    def save(self, path: str | Path) -> None:
        """Write the vocabulary as JSON (index = position in ``words``)."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=0), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> WordVocab:
        """Read a vocabulary written by :meth:`save`; a bad file is a one-line T2IError."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise T2IError(f"{path}: vocabulary file not found") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise T2IError(f"{path}: not a vocabulary JSON file: {exc}") from None
        if (
            not isinstance(data, dict)
            or data.get("format") != _FORMAT
            or not isinstance(data.get("words"), list)
        ):
            raise T2IError(f"{path}: not a t2i-stages word vocabulary (missing format/words)")
        try:
            return cls([str(w) for w in data["words"]])
        except ValueError as exc:
            raise T2IError(f"{path}: {exc}") from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WordVocab) and other.itos == self.itos

    def __repr__(self) -> str:
        return f"WordVocab({len(self)} words)"


class HFTokenizer:
    """A Hugging Face tokenizer read from local files only (no download ever happens).

    ``source`` is a directory saved with ``save_pretrained`` or a single ``tokenizer.json``.
    Padding uses the tokenizer's pad id (0 when it has none), and the mask is the attention mask;
    ``subsample`` is ignored (sub-word pieces must stay together).
    """

    def __init__(self, source: str | Path):
        self.source = str(source)
        path = Path(source)
        try:
            from transformers import AutoTokenizer, PreTrainedTokenizerFast
        except ImportError as exc:  # pragma: no cover - transformers is a dependency
            raise T2IError(
                f"Hugging Face tokenizer {source}: transformers is not installed ({exc})"
            ) from None
        try:
            if path.is_file():
                tok = PreTrainedTokenizerFast(tokenizer_file=str(path))
            elif path.is_dir():
                tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            else:
                raise T2IError(
                    f"tokenizer '{source}': no such file or directory (Hugging Face tokenizers are "
                    "read from local files only; save one with save_pretrained and point to it)"
                )
        except T2IError:
            raise
        except Exception as exc:
            raise T2IError(
                f"tokenizer '{source}': cannot load: {type(exc).__name__}: {exc}"
            ) from None
        self.tok = tok
        self.pad_id = tok.pad_token_id if tok.pad_token_id is not None else 0

    @property
    def vocab_size(self) -> int:
        return len(self.tok)

    def __len__(self) -> int:
        return len(self.tok)

    def encode(
        self, text: str, max_words: int, rng: Any = None, subsample: bool = False
    ) -> tuple[list[int], list[bool]]:
        ids = [int(i) for i in self.tok(text, max_length=max_words, truncation=True)["input_ids"]][
            :max_words
        ]
        mask = [True] * len(ids) + [False] * (max_words - len(ids))
        ids = ids + [self.pad_id] * (max_words - len(ids))
        return ids, mask

    def decode(self, ids: Iterable[int]) -> str:
        return self.tok.decode([int(i) for i in ids], skip_special_tokens=True)

    def save(self, path: str | Path) -> None:
        """Save as a Hugging Face tokenizer directory (JSON files)."""
        self.tok.save_pretrained(str(path))

    @classmethod
    def load(cls, path: str | Path) -> HFTokenizer:
        return cls(path)


def load_tokenizer(path: str | Path) -> WordVocab | HFTokenizer:
    """Load a word vocabulary JSON file, or a Hugging Face tokenizer directory/file."""
    path = Path(path)
    if path.is_file() and path.suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            data = None
        if isinstance(data, dict) and data.get("format") == _FORMAT:
            return WordVocab.load(path)
    return HFTokenizer(path)


def word_level_hf_tokenizer(words: Iterable[str]) -> Any:
    """A Hugging Face fast tokenizer over ``words`` with [BOS] ... [EOS], built offline.

    For CLIP-style folders made without internet (tests, stand-in benchmark assets): ids 0-3
    are [PAD], [UNK], [BOS], [EOS], then the words sorted.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[BOS]", "[EOS]"]
    vocab = {w: i for i, w in enumerate(specials + sorted(set(words) - set(specials)))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="[BOS] $A [EOS]",
        special_tokens=[("[BOS]", vocab["[BOS]"]), ("[EOS]", vocab["[EOS]"])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="[PAD]",
        unk_token="[UNK]",
        bos_token="[BOS]",
        eos_token="[EOS]",
    )
