"""A D conditioned on its own word embedding and a G stage with its own word vectors train end
to end, and the detail probes read the run."""

from __future__ import annotations

from pathlib import Path

import detail_probes
import pytest

from t2i_stages.recipe import load_recipe
from t2i_stages.registry import load_registry

MICRO = Path(__file__).resolve().parents[1] / "training" / "micro.yaml"


@pytest.fixture(scope="module")
def token_run(tmp_path_factory):
    """The micro recipe, its last D reading the caption through token_embedding + projection
    and its last G stage the words through token_words."""
    from t2i_stages.training import train

    registry = load_registry()
    overrides = [
        "discriminators.1.params.conditioning.type=token_embedding",
        "discriminators.1.params.cond_head_kind=projection",
        "generator.params.stages.1.params.conditioning.type=token_words",
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


def test_a_generator_stage_learns_its_own_word_vectors(token_run):
    from t2i_stages.api import load_run
    from t2i_stages.checkpoint import load_checkpoint
    from t2i_stages.plugins.datasets.shapes.dataset import shapes_vocab

    out, _, _ = token_run
    first, last = (
        load_checkpoint(out / "checkpoints" / f"step_{s:08d}").components["generator"]
        for s in (1, 3)
    )
    prefix = "stages.1.conditioning."
    assert first[prefix + "embedding.weight"].shape == (4096, 16)
    assert last[prefix + "out.weight"].abs().sum() > 0  # zero at the start, trained since
    moved = (first[prefix + "embedding.weight"] != last[prefix + "embedding.weight"]).any(1)
    n_words = len(shapes_vocab())
    assert moved[:n_words].sum() > 3 and not moved[n_words:].any()
    # a loaded run hands its stage the token ids too
    images = load_run(out).generate(["a red circle", "a dotted blue square"], seed=1).images
    assert images[-1].shape == (2, 3, 32, 32)


def test_fd_share_sets_each_caption_group_beside_random_rows(token_run):
    out, _, _ = token_run
    r = detail_probes.fd_share_probe(out, images=16)
    assert r["all"]["fd"] >= 0 and r["floor"]["fd"] >= 0
    groups = [g for g in r.values() if "captions" in g]
    assert r["detail named"]["captions"] + r["detail not named"]["captions"] == 16
    for g in groups:
        lo, hi = g["fd_random_range"]
        assert 0 <= lo <= hi and lo - 1e-6 <= g["fd_random"] <= hi + 1e-6
        assert g["fd_replaced"] >= 0


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
