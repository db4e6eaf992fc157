"""Per-word attention maps of several runs for one caption, from the same noise.

    python benchmarks/attention_strip.py RUN_DIR=LABEL [RUN_DIR=LABEL ...] --out docs/img/x.png
        [--index I | --caption TEXT] [--stages] [--all-words] [--cell 64]

The caption is the first run's test caption ``I`` (the evaluation's captions, epoch 0) unless
``--caption`` gives one. Each run's EMA generator draws it from the same noise
(``compare_families.GRID_NOISE_SEED``); a row per run shows its last image and, for every word
the run saw, that image half-blended with the word's attention map in the last refinement stage
that has one (``--stages``: a row per such stage). Runs whose generator attends to no word
(DF-GAN) get their image and a note. Function words are left out unless ``--all-words``. For
comparing where each family looks for the same words (issue 21, point 4).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from sample_strip import parse_run  # noqa: E402  (RUN_DIR=LABEL, as sample_strip takes them)

# words that name no object or attribute: hidden by default to keep a row screen-sized
FUNCTION_WORDS = frozenset(
    "a an the of that is are and with in at on to there image picture photo".split()
)


def word_columns(words: list[str], all_words: bool) -> list[int]:
    """The token positions to show: every one, or those that are not function words."""
    return [i for i, w in enumerate(words) if all_words or w.lower() not in FUNCTION_WORDS]


def run_rows(
    run: Any, caption: str, stages: bool
) -> tuple[list[str], list[tuple[str, Any, Any | None]]]:
    """The words the run saw and, per shown stage, (stage label, image (3,H,W), attention or None).

    ``attention`` is (T, h, w) over the caption's real words, None where the generator has no
    word attention at all.
    """
    import torch
    from compare_families import GRID_NOISE_SEED

    G = run.generator
    z = torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(GRID_NOISE_SEED))
    eps = None
    if G.eps_dim:
        eps = torch.randn(
            1, G.eps_dim, generator=torch.Generator().manual_seed(GRID_NOISE_SEED + 1)
        )
    out = run.generate([caption], z=z, eps=eps)
    tokens, mask = run.tokenize([caption])
    n_words = int(mask[0].sum())
    words = run.vocab.decode(tokens[0][mask[0]].tolist()).split()
    images = [im[0].float().cpu() for im in out.images]
    attended = [(k, a) for k, a in enumerate(out.attention) if a is not None]
    if not attended:
        return words, [(f"{images[-1].shape[-1]} px, no word attention", images[-1], None)]
    if not stages:
        attended = attended[-1:]
    rows = []
    for k, attn in attended:
        image = images[min(k + 1, len(images) - 1)]  # refinement stage k draws image k + 1
        rows.append((f"{image.shape[-1]} px", image, attn[0, :n_words].float().cpu()))
    return words, rows


def draw(
    caption: str,
    runs: list[tuple[str, list[str], list[tuple[str, Any, Any | None]]]],
    all_words: bool,
    cell: int = 64,
) -> Any:
    """One row per (run, stage): label, image, then one overlay per shown word."""
    import textwrap

    from PIL import Image, ImageDraw

    from t2i_stages.training.visuals import label_font, to_pixels, word_overlays

    font = label_font(11)
    label_w, head_h, word_h, pad = 130, 30, 14, 3
    cols = max(len(word_columns(words, all_words)) for _, words, _ in runs) + 1
    rows = sum(len(r) for _, _, r in runs)
    W = label_w + cols * (cell + pad)
    H = head_h + rows * (cell + word_h + pad)
    canvas = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(canvas)
    for j, line in enumerate(textwrap.wrap(f'"{caption}"', width=W // 6)[:2]):
        d.text((4, 2 + j * 13), line, fill="black", font=font)
    y = head_h
    for label, words, stage_rows in runs:
        shown = word_columns(words, all_words)
        for stage_label, image, attn in stage_rows:
            for j, line in enumerate(textwrap.wrap(f"{label}, {stage_label}", width=20)[:4]):
                d.text((4, y + word_h + 4 + j * 13), line, fill="black", font=font)
            tile = Image.fromarray(to_pixels(image[None])[0]).resize((cell, cell), Image.NEAREST)
            canvas.paste(tile, (label_w, y + word_h))
            d.text((label_w + 2, y), "image", fill="black", font=font)
            if attn is not None:
                tiles = word_overlays(image, attn[shown], cell)
                for c, (pos, t) in enumerate(zip(shown, tiles, strict=True), start=1):
                    x = label_w + c * (cell + pad)
                    canvas.paste(t, (x, y + word_h))
                    d.text((x + 2, y), words[pos][:10], fill="black", font=font)
            y += cell + word_h + pad
    return canvas


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=parse_run, help="RUN_DIR=LABEL")
    p.add_argument("--out", type=Path, required=True, help="the PNG to write")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--index", type=int, default=0, help="test caption of the first run")
    which.add_argument("--caption", help="a caption of your own instead")
    p.add_argument("--stages", action="store_true", help="every refinement stage, not the last")
    p.add_argument("--all-words", action="store_true", help="function words too")
    p.add_argument("--cell", type=int, default=64, help="tile size in pixels")
    args = p.parse_args(argv)

    from t2i_stages.api import load_run
    from t2i_stages.errors import T2IError
    from t2i_stages.registry import load_registry

    for path, _ in args.runs:
        if not (path / "checkpoints").is_dir():
            print(f"error: {path}: not a run folder (no checkpoints/)", file=sys.stderr)
            return 2
    registry = load_registry()
    try:
        loaded = [(label, load_run(path, registry=registry)) for path, label in args.runs]
        caption = args.caption
        if caption is None:
            test = registry.build("dataset", loaded[0][1].recipe.data.dataset, split="test")
            if hasattr(test, "set_epoch"):
                test.set_epoch(0)  # the captions the evaluation uses
            if not 0 <= args.index < len(test):
                print(f"error: --index {args.index}: the test split has {len(test)} captions",
                      file=sys.stderr)  # fmt: skip
                return 2
            caption = test[args.index]["caption"]
        rows = [(label, *run_rows(run, caption, args.stages)) for label, run in loaded]
    except T2IError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    draw(caption, rows, args.all_words, args.cell).save(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
