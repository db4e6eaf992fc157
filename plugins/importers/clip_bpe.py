"""OpenAI CLIP's BPE vocabulary (``bpe_simple_vocab_16e6.txt.gz``) as a ``transformers`` tokenizer.

GR-GAN tokenizes with its CLIP fork's ``SimpleTokenizer``, built from this file: the merges are
its lines 1..48894 (line 0 is a header), and the vocabulary is the 256 byte symbols, the same
with ``</w>``, one entry per merge, then ``<|startoftext|>`` and ``<|endoftext|>`` (49408 ids).
``clip.tokenize`` pads with id 0 (the symbol ``!``), Hugging Face's CLIP tokenizers with the end
token; the tokenizer keeps Hugging Face's (a pad token ``!`` would turn every ``!`` of a caption
into a special token), and the ``itm`` matcher's ``word_layout: grgan``, which reads padded
positions as GR-GAN does, pads with 0 itself.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

from t2i_stages.plugin import KeyMapError

BPE_NAME = "bpe_simple_vocab_16e6.txt.gz"
MERGES = 49152 - 256 - 2  # the merges SimpleTokenizer reads: its vocabulary is 49408 ids
START, END = "<|startoftext|>", "<|endoftext|>"


def is_bpe_file(path: Path) -> bool:
    """A CLIP BPE merges file, by its name (``*.txt.gz`` or ``*.txt`` with 'bpe' in it)."""
    name = path.name.lower()
    return "bpe" in name and name.endswith((".txt.gz", ".txt"))


def read_merges(path: Path) -> list[tuple[str, str]]:
    """The merge pairs SimpleTokenizer uses; anything that is not such a file is one line."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        lines = raw.decode("utf-8").split("\n")
    except (OSError, EOFError, gzip.BadGzipFile, UnicodeDecodeError) as exc:
        raise KeyMapError(f"{path}: not a readable CLIP BPE file ({type(exc).__name__})") from None
    pairs = [tuple(line.split()) for line in lines[1 : MERGES + 1]]
    if len(pairs) != MERGES or any(len(p) != 2 for p in pairs):
        raise KeyMapError(
            f"{path}: not OpenAI CLIP's BPE merges ({BPE_NAME}: a header line, then {MERGES} "
            "lines of two symbols)"
        )
    return pairs  # type: ignore[return-value]


def vocabulary(merges: list[tuple[str, str]]) -> dict[str, int]:
    """SimpleTokenizer's encoder: byte symbols, the same with ``</w>``, merges, specials."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    symbols = list(bytes_to_unicode().values())
    words = symbols + [s + "</w>" for s in symbols] + ["".join(p) for p in merges] + [START, END]
    return {w: i for i, w in enumerate(words)}


def clip_tokenizer(path: Path, vocab_size: int) -> Any:
    """A ``transformers`` CLIP tokenizer from the BPE file, checked against the tower's rows."""
    from transformers import CLIPTokenizer

    merges = read_merges(path)
    vocab = vocabulary(merges)
    if len(vocab) != vocab_size:
        raise KeyMapError(
            f"{path}: gives {len(vocab)} token ids but the ITM's text tower has {vocab_size} "
            "embedding rows; give the BPE file of the CLIP the ITM was built on"
        )
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)
