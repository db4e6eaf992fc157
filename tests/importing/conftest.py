"""Fixtures of the import tests: a registry with the toy importer, and its legacy file."""

from __future__ import annotations

import pytest
import torch
from toy_release import MICRO, ToyPlugin, reference_names, toy_vocab

from t2i_stages.registry import load_registry


@pytest.fixture(scope="module")
def registry():
    return load_registry(plugins=[("toy-importer", ToyPlugin())])


@pytest.fixture(scope="module")
def release(registry, tmp_path_factory):
    """([legacy netG .pth, the matcher file], our generator's state dict), randomly initialised."""
    from t2i_stages.recipe import load_recipe

    torch.manual_seed(0)
    recipe = load_recipe(MICRO, registry=registry)
    sd = registry.build("generator", recipe.generator).state_dict()
    sd = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}  # as torch 0.4
    folder = tmp_path_factory.mktemp("release")
    path = folder / "netG_epoch_600.pth"
    torch.save(reference_names(sd), path, _use_new_zipfile_serialization=False)
    vocab = toy_vocab()
    matcher = registry.build("matcher", recipe.matcher, vocab=vocab, vocab_size=len(vocab))
    encoder = folder / "text_encoder200.pth"
    torch.save({f"enc.{k}": v for k, v in matcher.state_dict().items()}, encoder)
    return [path, encoder], sd
