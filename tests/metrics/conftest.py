"""Fixtures for the metric tests: synthetic image sets, a micro run, a tiny local CLIP folder."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

MICRO = Path(__file__).parents[1] / "training" / "micro.yaml"


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def registry():
    from t2i_stages.registry import load_registry

    return load_registry()


@pytest.fixture(scope="session")
def micro_run_dir(registry, tmp_path_factory):
    """The micro recipe trained once (6 steps); its run folder."""
    from t2i_stages.recipe import load_recipe
    from t2i_stages.training import train

    out = tmp_path_factory.mktemp("metrics-micro-run")
    train(load_recipe(MICRO, [], registry), registry, out, log=lambda *a, **k: None)
    return out


def make_blobs(n: int, seed: int, shift: float = 0.0, size: int = 32) -> torch.Tensor:
    """uint8 (n, 3, size, size) images: random coloured squares on noise, brightened by shift."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, size, size, generator=g) * 0.3
    for i in range(n):
        r, c = torch.randint(0, size // 2, (2,), generator=g).tolist()
        x[i, :, r : r + size // 2, c : c + size // 2] += torch.rand(3, 1, 1, generator=g) * 0.7
    x = (x + shift).clamp(0, 1)
    return (x * 255).round().to(torch.uint8)


@pytest.fixture(scope="session")
def blobs():
    """make_blobs(n, seed, shift=0.0, size=32) -> uint8 images."""
    return make_blobs


@pytest.fixture
def tiny_clip_folder(tmp_path):
    """A randomly initialised tiny CLIP with a word-level tokenizer, saved offline."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import CLIPConfig, CLIPModel, PreTrainedTokenizerFast

    from t2i_stages.plugins.datasets.shapes import shapes_vocab

    specials = ["[PAD]", "[UNK]", "[BOS]", "[EOS]"]
    words = [w for w in shapes_vocab().itos if w not in specials and w.isalpha()]
    vocab = {w: i for i, w in enumerate(specials + sorted(set(words)))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="[BOS] $A [EOS]", special_tokens=[("[BOS]", 2), ("[EOS]", 3)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", bos_token="[BOS]",
        eos_token="[EOS]",
    )  # fmt: skip
    text = dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                num_attention_heads=2, max_position_embeddings=48, bos_token_id=2,
                eos_token_id=3, pad_token_id=0)  # fmt: skip
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                  num_attention_heads=2, image_size=16, patch_size=4)  # fmt: skip
    torch.manual_seed(0)
    model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=24))
    folder = tmp_path / "tiny-clip"
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder
