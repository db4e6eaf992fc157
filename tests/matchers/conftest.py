"""Fixtures for the matcher tests: a tiny synthetic captioned dataset and saved HF models."""

from __future__ import annotations

import pytest
import torch
from matcher_data import COLORS, PLACES, TinyCaptioned, word_level_tokenizer  # noqa: F401


@pytest.fixture(autouse=True)
def _one_thread_and_home(tmp_path, monkeypatch):
    """Keep tests light on the shared CPU and never touch the user's asset folder."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv("T2I_STAGES_HOME", str(tmp_path / "home"))
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_data():
    return TinyCaptioned(64), TinyCaptioned(32, offset=3)


@pytest.fixture
def tiny_clip_folder(tmp_path):
    """A randomly initialised tiny CLIP + word-level tokenizer saved with save_pretrained."""
    from transformers import CLIPConfig, CLIPModel

    words = sorted({w for c in COLORS for p in PLACES for w in f"{c} square at {p}".split()})
    tok = word_level_tokenizer(words)
    text = {
        "vocab_size": len(tok),
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "max_position_embeddings": 16,
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.eos_token_id,
        "pad_token_id": tok.pad_token_id,
    }
    vision = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "image_size": 16,
        "patch_size": 4,
    }
    torch.manual_seed(0)
    model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=24))
    folder = tmp_path / "tiny-clip"
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder
