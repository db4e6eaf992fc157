"""A D conditioned on its own word embedding trains end to end, and the detail probes read it."""

from __future__ import annotations

from pathlib import Path

import detail_probes
import pytest

from t2i_stages.recipe import load_recipe
from t2i_stages.registry import load_registry

MICRO = Path(__file__).resolve().parents[1] / "training" / "micro.yaml"


@pytest.fixture(scope="module")
def token_run(tmp_path_factory):
    """The micro recipe, its last D reading the caption through token_embedding + projection."""
    from t2i_stages.training import train

    registry = load_registry()
    overrides = [
        "discriminators.1.params.conditioning.type=token_embedding",
        "discriminators.1.params.cond_head_kind=projection",
        "data.dataset.params.grid=1",
        "train.max_steps=3",
        "train.ckpt_every=1",
        "train.keep_checkpoints=3",
    ]
    out = tmp_path_factory.mktemp("token-run")
    recipe = load_recipe(MICRO, overrides, registry)
    summary = train(recipe, registry, out, evaluate=False, log=lambda *a, **k: None)
    return out, summary, None


def test_the_token_embedding_trains_with_the_ids_the_step_attaches(token_run):
    from t2i_stages.checkpoint import load_checkpoint
    from t2i_stages.plugins.datasets.shapes.dataset import shapes_vocab

    out, _, _ = token_run
    key = "conditioning.embedding.weight"
    first, last = (
        load_checkpoint(out / "checkpoints" / f"step_{s:08d}").components["discriminator_1"][key]
        for s in (1, 3)
    )
    assert first.shape == (4096, 16)
    moved = (first != last).any(1)
    n_words = len(shapes_vocab())
    assert moved[:n_words].sum() > 3  # the captions' words learn
    assert not moved[n_words:].any()  # rows no token id reaches stay as they were


def test_probes_report_shares_and_cosines(token_run):
    out, _, _ = token_run
    shares = detail_probes.discriminator_probe(out, index=1, images=6)
    assert set(shares) == {"fine", "colour"} and all(0 <= v <= 1 for v in shares.values())
    sims = detail_probes.text_probe(out)
    assert set(sims) == {"fine", "colour", "shape"}
    assert all(-1.0001 <= v <= 1.0001 for group in sims.values() for v in group.values())


def test_probes_refuse_a_folder_that_is_no_run(tmp_path, capsys):
    assert detail_probes.main(["discriminator", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err
