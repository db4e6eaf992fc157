"""Fixtures of the import tests: a registry with the toy importer, its legacy file, and the
AttnGAN release files the golden fixtures leave out."""

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


@pytest.fixture(scope="session")
def made_release_files(tmp_path_factory):
    """The AttnGAN release files the golden fixtures leave out, made once per session:
    ``captions.pickle`` and the full ``image_encoder.pth`` (see reference_release.py)."""
    from reference_release import write_captions_pickle, write_full_image_encoder

    folder = tmp_path_factory.mktemp("attngan-release")
    return {
        "captions": write_captions_pickle(folder / "captions.pickle"),
        "image_encoder": write_full_image_encoder(folder / "image_encoder200.pth"),
    }


@pytest.fixture(scope="session")
def reg():
    """The installed plugins, the built-in importers among them (no toy)."""
    return load_registry()
