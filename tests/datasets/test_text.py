"""Word tokenizer / vocabulary and the offline Hugging Face tokenizer wrapper."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from t2i_stages.errors import T2IError
from t2i_stages.text import HFTokenizer, WordVocab, load_tokenizer, tokenize


def test_tokenize_lowercases_drops_non_ascii_and_punctuation():
    assert tokenize("A Small, RED star\ufffd\ufffdabove café!") == [
        "a",
        "small",
        "red",
        "star",
        "above",
        "caf",
    ]


def test_build_is_deterministic_and_reserves_padding():
    caps = ["a red star", "a blue star", "the red square"]
    v1, v2 = WordVocab.build(caps), WordVocab.build(list(reversed(caps)))
    assert v1 == v2
    assert v1.itos[:2] == ["<end>", "<unk>"]
    assert v1.itos[2:5] == ["a", "red", "star"]  # most frequent first, ties alphabetical
    assert len(v1) == v1.vocab_size == 2 + 6


def test_encode_pads_masks_and_maps_unknown_words():
    v = WordVocab.build(["a red star"])
    ids, mask = v.encode("A red moon", 5)
    assert ids == [v.stoi["a"], v.stoi["red"], v.unk_index, 0, 0]
    assert mask == [True, True, True, False, False]
    assert v.decode(ids) == "a red <unk>"


def test_long_captions_are_cut_or_subsampled_in_order():
    words = [f"w{i}" for i in range(10)]
    v = WordVocab.build([" ".join(words)])
    ids, mask = v.encode(" ".join(words), 4)
    assert [v.itos[i] for i in ids] == words[:4] and all(mask)
    sub1, _ = v.encode(" ".join(words), 4, rng=np.random.default_rng(3), subsample=True)
    sub2, _ = v.encode(" ".join(words), 4, rng=np.random.default_rng(3), subsample=True)
    assert sub1 == sub2
    positions = [int(v.itos[i][1:]) for i in sub1]
    assert positions == sorted(positions) and len(set(positions)) == 4
    assert (
        positions != [0, 1, 2, 3]
        or v.encode(" ".join(words), 4, rng=np.random.default_rng(4), subsample=True)[0] != sub1
    )
    py_ids, _ = v.encode(" ".join(words), 4, rng=random.Random(0), subsample=True)
    assert len(py_ids) == 4
    with pytest.raises(ValueError):
        v.encode(" ".join(words), 4, subsample=True)


def test_save_load_roundtrip_is_json(tmp_path):
    v = WordVocab.build(["a red star", "a blue square"])
    path = tmp_path / "vocab.json"
    v.save(path)
    assert json.loads(path.read_text())["words"][0] == "<end>"
    assert WordVocab.load(path) == v
    assert load_tokenizer(path) == v


def test_bad_vocab_files_are_clear_errors(tmp_path):
    with pytest.raises(T2IError, match="not found"):
        WordVocab.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(T2IError, match="bad.json"):
        WordVocab.load(bad)
    bad.write_text(json.dumps({"words": ["a"]}))
    with pytest.raises(T2IError, match="not a t2i-stages word vocabulary"):
        WordVocab.load(bad)


def test_hf_tokenizer_from_local_file(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"[PAD]": 0, "[UNK]": 1, "a": 2, "red": 3, "star": 4}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    path = tmp_path / "tokenizer.json"
    tok.save(str(path))
    hf = HFTokenizer(path)  # no pad token declared: padding uses id 0
    ids, mask = hf.encode("a red star", 6)
    assert ids[:3] == [2, 3, 4] and ids[3:] == [0, 0, 0]
    assert mask == [True, True, True, False, False, False]
    assert len(hf) == 5
    out = tmp_path / "saved"
    hf.save(out)
    assert (out / "tokenizer.json").is_file()
    with pytest.raises(T2IError, match="local files only"):
        HFTokenizer(tmp_path / "nothing-here")
