"""Reading a folder of images to score (``t2i-stages eval --images DIR``) with their captions.

Two layouts give each image its caption:

- a JSONL file (``--captions FILE.jsonl``): one object per line,
  ``{"image": "relative/path.png", "caption": "..."}`` (``"file"`` and ``"text"`` are accepted
  for the two keys), paths relative to ``DIR``; an optional ``"index"`` names the test-split
  image of the reference the caption was taken from. Blank lines are skipped;
- sidecar captions (no captions file): every image under ``DIR`` (searched recursively, in
  sorted order) with a text file of the same name and a ``.txt`` suffix, whose first non-empty
  line is the caption.

An unusable entry is skipped and all of them are reported in one ``DataWarning`` (the count and
the first names, as the real-data loaders do): an image that is missing, empty, unreadable or
cannot be decoded (a corrupt or truncated PNG), one whose mode holds no 8-bit colour or grey
(16-bit or float pixels), an image without a caption, a caption line that is not JSON or lacks a
key. ``strict=True`` raises a ``BadDataError`` naming the first instead. Every image is decoded
in full while the folder is indexed (a truncated file fails there, not halfway through the
metrics) and again, a batch at a time, when it is scored: the folder is never held in memory.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..data_files import IMAGE_EXTS, BadData
from ..errors import T2IError
from .extractors import clean_resizer

# PIL modes read as 8-bit RGB (grey is repeated, a palette looked up, alpha dropped)
MODES = ("RGB", "RGBA", "RGBX", "L", "LA", "P", "PA", "1", "CMYK", "YCbCr")
IMAGE_KEYS, CAPTION_KEYS = ("image", "file"), ("caption", "text")
STRICT_HINT = "without strict (--strict) bad files are skipped and reported"
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


@dataclass(frozen=True)
class ImageEntry:
    """One image to score: its file, caption, stored size and mode, and where it was listed."""

    path: Path
    caption: str
    size: tuple[int, int]  # (width, height) as stored
    mode: str
    where: str  # FILE:LINE of its caption line, or its sidecar caption file
    index: int | None = None  # the reference test image its caption came from, if given


@dataclass
class ImageFolder:
    """The readable images of a folder with their captions, and what was skipped."""

    root: Path
    captions: Path | None  # the JSONL file; None: sidecar .txt captions
    entries: list[ImageEntry]
    considered: int  # caption lines or image files looked at
    bad: BadData
    limit: int | None = None

    def __len__(self) -> int:
        return len(self.entries)

    def protocol(self) -> dict[str, Any]:
        """How many images were read and skipped (the first skipped named), their sizes and modes."""
        sizes = Counter(f"{w}x{h}" for w, h in (e.size for e in self.entries))
        return {
            "folder": str(self.root),
            "captions": (
                str(self.captions)
                if self.captions is not None
                else "sidecar .txt files (first non-empty line)"
            ),
            "considered": self.considered,
            "read": len(self.entries),
            "skipped": len(self.bad),
            "skipped_files": [{"file": p, "reason": r} for p, r in self.bad.problems[:20]],
            "limit": self.limit,
            "sizes": dict(sizes.most_common()),
            "modes": dict(Counter(e.mode for e in self.entries).most_common()),
        }


def image_problem(path: Path) -> tuple[str | None, tuple[int, int], str]:
    """Why the file cannot be scored (None when it can), its (width, height) and its mode."""
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        return "image file missing", (0, 0), ""
    except OSError as exc:
        return f"image unreadable ({exc.strerror or exc})", (0, 0), ""
    with fh:
        try:
            if path.stat().st_size == 0:
                return "image file is empty (0 bytes)", (0, 0), ""
            with Image.open(fh) as img:
                img.load()
                size, mode = (int(img.width), int(img.height)), str(img.mode)
        except _DECODE_ERRORS as exc:
            return f"image cannot be decoded ({type(exc).__name__}: {exc})", (0, 0), ""
    if size[0] < 1 or size[1] < 1:
        return f"zero-size image ({size[0]}x{size[1]})", size, mode
    if mode not in MODES:
        return f"mode {mode} holds no 8-bit colour or grey (16-bit or float pixels)", size, mode
    return None, size, mode


def load_image(entry: ImageEntry, resolution: int) -> np.ndarray:
    """The image as uint8 (resolution, resolution, 3) RGB: a non-square image is centre-cropped
    to a square, then any other size is resized with the metrics' resizer (clean-fid's PIL
    bicubic, in float) and rounded back to uint8, as a saved PNG holds it."""
    try:
        with Image.open(entry.path) as img:
            rgb = img.convert("RGB")
    except _DECODE_ERRORS as exc:
        raise T2IError(f"{entry.path}: cannot be read again while scoring ({exc})") from None
    w, h = rgb.size
    if w != h:
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        rgb = rgb.crop((left, top, left + side, top + side))
    arr = np.array(rgb, dtype=np.uint8)  # a writable copy (torch.from_numpy wants one)
    if arr.shape[0] != resolution:
        arr = np.rint(clean_resizer(resolution)(arr)).clip(0, 255).astype(np.uint8)
    return arr


RESIZER = (
    "a non-square image is centre-cropped to a square; any other size is resized with clean-fid's "
    "PIL bicubic (float, the metrics' resizer) and rounded to uint8"
)


def read_image_folder(
    images: str | Path,
    captions: str | Path | None = None,
    *,
    strict: bool = False,
    limit: int | None = None,
) -> ImageFolder:
    """Index the images under ``images`` with their captions (a JSONL file, else sidecar
    ``.txt`` files), skipping and reporting bad entries; at most ``limit`` images are kept.

    A missing or empty folder, a missing captions file, or no readable captioned image is a
    one-line ``T2IError``; so is fewer than 2 images (an evaluation needs 2).
    """
    root = Path(images).expanduser()
    if not root.exists():
        raise T2IError(f"{root}: no such folder (the images to evaluate)")
    if not root.is_dir():
        raise T2IError(f"{root}: not a folder (give the folder that holds the images)")
    if limit is not None and limit < 2:
        raise T2IError(f"an evaluation needs at least 2 images, not {limit}")
    bad = BadData("eval --images", strict=strict, hint=STRICT_HINT)
    if captions is not None:
        capfile = Path(captions).expanduser()
        entries, considered = _from_jsonl(root, capfile, bad, limit)
        source = f"{capfile} names"
    else:
        capfile = None
        entries, considered = _from_sidecars(root, bad, limit)
        source = f"{root} holds"
    if not entries:
        first = "; first problem: {}: {}".format(*bad.problems[0]) if len(bad) else ""
        raise T2IError(f"{source} no readable image with a caption ({considered} looked at{first})")
    if len(entries) < 2:
        raise T2IError(f"{source} only 1 readable image with a caption; an evaluation needs 2")
    bad.report(total=considered)
    return ImageFolder(root, capfile, entries, considered, bad, limit)


def _entry(
    path: Path, caption: str, where: str, bad: BadData, index: int | None = None
) -> ImageEntry | None:
    problem, size, mode = image_problem(path)
    if problem:
        bad.add(path, problem)
        return None
    return ImageEntry(path, caption, size, mode, where, index)


def _clean(caption: Any) -> str:
    return " ".join(caption.split()) if isinstance(caption, str) else ""


def _first(obj: dict, keys: tuple[str, ...]) -> Any:
    return next((obj[k] for k in keys if k in obj), None)


def _from_jsonl(
    root: Path, capfile: Path, bad: BadData, limit: int | None
) -> tuple[list[ImageEntry], int]:
    if not capfile.is_file():
        raise T2IError(f"{capfile}: no such captions file")
    try:
        raw = capfile.read_bytes()
    except OSError as exc:
        raise T2IError(f"{capfile}: cannot read the captions ({exc.strerror or exc})") from None
    lines = [(n, line) for n, line in enumerate(raw.splitlines(), start=1) if line.strip()]
    if not lines:
        raise T2IError(f"{capfile}: no caption lines (one JSON object per line)")
    entries, considered = [], 0
    for n, line in lines:
        if limit is not None and len(entries) >= limit:
            break
        considered += 1
        where = f"{capfile}:{n}"
        try:
            obj: Any = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError:
            bad.add(where, "caption line is not UTF-8")
            continue
        except json.JSONDecodeError as exc:
            bad.add(where, f"caption line is not JSON ({exc.msg})")
            continue
        image = _first(obj, IMAGE_KEYS) if isinstance(obj, dict) else None
        if not isinstance(image, str) or not image.strip():
            bad.add(where, 'caption line needs {"image": "path", "caption": "..."}')
            continue
        caption = _clean(_first(obj, CAPTION_KEYS))
        if not caption:
            bad.add(where, f"no caption for {image}")
            continue
        index = obj.get("index")
        if index is not None and (
            isinstance(index, bool) or not isinstance(index, int) or index < 0
        ):
            bad.add(where, f"index {index!r} is not a test-split image index (an integer >= 0)")
            continue
        entry = _entry(root / image, caption, where, bad, index)
        if entry is not None:
            entries.append(entry)
    return entries, considered


def _sidecar_caption(img: Path, bad: BadData) -> str | None:
    txt = img.with_suffix(".txt")
    try:
        text = txt.read_bytes().decode("utf-8")
    except FileNotFoundError:
        bad.add(img, f"no caption ({txt.name} missing)")
        return None
    except OSError as exc:
        bad.add(txt, f"caption file unreadable ({exc.strerror or exc})")
        return None
    except UnicodeDecodeError:
        bad.add(txt, "caption file is not UTF-8")
        return None
    caption = next((c for c in map(_clean, text.splitlines()) if c), "")
    if not caption:
        bad.add(txt, "caption file is empty")
        return None
    return caption


def _from_sidecars(root: Path, bad: BadData, limit: int | None) -> tuple[list[ImageEntry], int]:
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTS and p.is_file())
    if not files:
        raise T2IError(f"{root}: no images in the folder ({' '.join(IMAGE_EXTS)})")
    entries, considered = [], 0
    for img in files:
        if limit is not None and len(entries) >= limit:
            break
        considered += 1
        caption = _sidecar_caption(img, bad)
        if caption is None:
            continue
        entry = _entry(img, caption, str(img.with_suffix(".txt")), bad)
        if entry is not None:
            entries.append(entry)
    return entries, considered
