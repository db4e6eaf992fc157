"""The attention strip draws each run's per-word maps for one caption, and a run without word
attention as its image alone."""

from __future__ import annotations

from pathlib import Path

import attention_strip as strip
import pytest
from PIL import Image

from t2i_stages.recipe import load_recipe
from t2i_stages.registry import load_registry

MICRO = Path(__file__).resolve().parents[1] / "training" / "micro.yaml"


def _train(out: Path, extra: list[str]) -> Path:
    from t2i_stages.training import train

    registry = load_registry()
    recipe = load_recipe(MICRO, ["train.max_steps=2", "train.ckpt_every=2", *extra], registry)
    train(recipe, registry, out, evaluate=False, log=lambda *a, **k: None)
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The micro recipe (dynamic memory: word attention) and one whose refinement stage fuses
    the sentence by affine modulation (no word attention)."""
    attn = _train(tmp_path_factory.mktemp("attn"), [])
    plain = _train(
        tmp_path_factory.mktemp("plain"),
        [
            "generator.params.stages.1.params.conditioning.type=sentence",
            "generator.params.stages.1.params.fusion.type=affine",
            "losses.3.stages=[]",
        ],
    )
    return attn, plain


def test_rows_hold_one_map_per_word_the_run_saw(runs):
    from t2i_stages.api import load_run

    run = load_run(runs[0])
    caption = "a large red dotted circle"
    words, rows = strip.run_rows(run, caption, stages=False)
    assert words == caption.split()
    [(label, image, attn)] = rows
    assert label == "32 px" and tuple(image.shape) == (3, 32, 32)
    assert attn.shape[0] == len(words) and attn.ndim == 3
    assert strip.word_columns(words, all_words=False) == [1, 2, 3, 4]  # "a" left out
    assert strip.word_columns(words, all_words=True) == [0, 1, 2, 3, 4]

    _, plain_rows = strip.run_rows(load_run(runs[1]), caption, stages=False)
    assert [(lab, a) for lab, _, a in plain_rows] == [("32 px, no word attention", None)]


def test_the_strip_is_a_row_per_run_and_a_column_per_content_word(runs, tmp_path):
    out = tmp_path / "strip.png"
    caption = "a small blue striped square"
    argv = [f"{runs[0]}=DM", f"{runs[1]}=affine", "--caption", caption, "--out", str(out)]
    assert strip.main([*argv, "--cell", "40"]) == 0
    width, height = Image.open(out).size
    assert width == 130 + (4 + 1) * (40 + 3)  # label, image, 4 content words
    assert height == 30 + 2 * (40 + 14 + 3)


def test_the_strip_refuses_a_folder_that_is_no_run_and_an_index_past_the_split(
    runs, tmp_path, capsys
):
    out = tmp_path / "o.png"
    assert strip.main([f"{tmp_path}=x", "--out", str(out)]) == 2
    assert "not a run folder" in capsys.readouterr().err
    assert strip.main([str(runs[0]), "--index", "999", "--out", str(out)]) == 2
    assert "--index 999: the test split has 32 captions" in capsys.readouterr().err
    assert not out.exists()
