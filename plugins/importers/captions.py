"""The vocabulary of an AttnGAN-lineage release: the dataset's ``captions.pickle``.

AttnGAN's ``datasets.py`` (``TextDataset.load_text_data``) writes
``[train_captions, test_captions, ixtoword, wordtoix]`` with pickle protocol 2 under Python 2:
the captions as lists of word indices, ``ixtoword`` a dict ``{index: word}`` with
``ixtoword[0] == '<end>'`` (the padding index), ``wordtoix`` its inverse. The text encoders of a
release index their embedding rows by it, so a run imported from them takes its vocabulary from
this file. It is read with the restricted unpickler (``plugins/datasets/legacy_pickle``): plain
containers and strings only, nothing in the file runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from t2i_stages.plugin import ReleaseFile, T2IError, WordVocab
from t2i_stages.plugins.datasets.legacy_pickle import safe_load_pickle

LAYOUT = "an AttnGAN captions.pickle ([train_captions, test_captions, ixtoword, wordtoix])"


def is_captions_file(file: ReleaseFile) -> bool:
    """Whether ``file`` is a vocabulary pickle (a non-weights ``.pickle`` file)."""
    return file.content is None and file.path.suffix == ".pickle"


def _fail(path: Path, why: str) -> T2IError:
    return T2IError(f"{path}: not {LAYOUT}: {why}")


def read_vocab(path: str | Path) -> WordVocab:
    """The word vocabulary of ``captions.pickle``, index for index (no ``<unk>``: the
    reference drops unknown words, and so does a vocabulary without one)."""
    path = Path(path)
    data: Any = safe_load_pickle(path)
    if not isinstance(data, (list, tuple)) or len(data) != 4:
        raise _fail(path, f"it holds a {type(data).__name__}, not a list of four")
    ixtoword, wordtoix = data[2], data[3]
    if not isinstance(ixtoword, dict) or not isinstance(wordtoix, dict):
        raise _fail(path, "items 2 and 3 are not the ixtoword and wordtoix dicts")
    n = len(ixtoword)
    if set(ixtoword) != set(range(n)):
        raise _fail(path, f"ixtoword's keys are not the indices 0..{n - 1}")
    words = [ixtoword[i] for i in range(n)]
    if not all(isinstance(w, str) for w in words):
        raise _fail(path, "ixtoword holds values that are not words")
    if words[0] != "<end>":
        raise _fail(path, f"ixtoword[0] is {words[0]!r}, not '<end>'")
    if any(wordtoix.get(w) != i for i, w in enumerate(words)) or len(wordtoix) != n:
        raise _fail(path, "wordtoix is not the inverse of ixtoword")
    return WordVocab(words)
