"""`t2i-stages data preview|stats` and the API behind them."""

from __future__ import annotations

import json

from PIL import Image

from t2i_stages.cli.main import main
from t2i_stages.dataset_tools import dataset_from_recipe, dataset_stats, preview_grid


def _recipe(tmp_path, dataset_type="shapes", extra=""):
    path = tmp_path / "recipe.yaml"
    path.write_text(
        f"""name: data-cli
data:
  dataset:
    type: {dataset_type}
    params:
      train_size: 12
      test_size: 6
      resolutions: [16, 32]
      cache_dir: {tmp_path / "cache"}
      workers: 1{extra}
generator: {{type: whatever}}
""",
        encoding="utf-8",
    )
    return path


def test_api_builds_from_the_data_section_only(tmp_path):
    ds = dataset_from_recipe(
        _recipe(tmp_path), split="test", overrides=["data.dataset.params.max_words=20"]
    )
    assert len(ds) == 6 and ds.max_words == 20 and ds.resolutions == [16, 32]
    stats = dataset_stats(ds)
    assert (
        stats["images"] == 6
        and stats["vocab_size"] == len(ds.vocab)
        and stats["unknown_words"] == 0
    )
    assert stats["captions"] == sum(len(ds.captions(i)) for i in range(6))
    words = stats["caption_words"]
    assert words["min"] >= 1 and words["max"] <= 40 and words["min"] <= words["max"]
    out = preview_grid(ds, tmp_path / "g.png", count=4, columns=2)
    assert Image.open(out).size[0] > 2 * 32


def test_cli_stats_and_preview(tmp_path, capsys):
    recipe = _recipe(tmp_path)
    assert main(["data", "stats", str(recipe), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["train"]["images"] == 12 and stats["test"]["images"] == 6
    assert main(["data", "stats", str(recipe), "--split", "train"]) == 0
    assert "vocab_size" in capsys.readouterr().out
    out = tmp_path / "grid.png"
    assert main(["data", "preview", str(recipe), "--out", str(out), "--count", "3"]) == 0
    assert out.is_file() and "wrote" in capsys.readouterr().out


def test_cli_errors_are_one_line_with_file_and_line(tmp_path, capsys):
    assert main(["data", "stats", str(_recipe(tmp_path, "shapez"))]) == 2
    err = capsys.readouterr().err
    assert (
        "recipe.yaml:4: data.dataset.type: unknown dataset 'shapez'; did you mean 'shapes'?" in err
    )
    assert main(["data", "stats", str(_recipe(tmp_path, extra="\n      grid: 9"))]) == 2
    assert "recipe.yaml:11: data.dataset.params.grid" in capsys.readouterr().err
    folder = _recipe(tmp_path, "folder", extra=f"\n      root: {tmp_path / 'nowhere'}")
    folder.write_text(
        folder.read_text()
        .replace("      train_size: 12\n      test_size: 6\n", "")
        .replace(f"      cache_dir: {tmp_path / 'cache'}\n      workers: 1\n", "")
    )
    assert main(["data", "preview", str(folder)]) == 2
    assert "nowhere is not a folder" in capsys.readouterr().err
