"""One resolver for pretrained assets (CLIP folders, Inception weights, cached matchers).

Nothing in t2i-stages downloads at run time. Every pretrained file is expected at a known
local path, by default under ``$T2I_STAGES_HOME`` (``~/.cache/t2i-stages``), and a missing one
fails at construction time, before any training, with a one-line message that names the
expected path and how to obtain the file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import T2IError

ENV_HOME = "T2I_STAGES_HOME"
DEFAULT_HOME = "~/.cache/t2i-stages"


class MissingAssetError(T2IError):
    """A pretrained asset that a recipe asks for is not on this machine."""


@dataclass(frozen=True)
class KnownAsset:
    """A pretrained file or folder the project knows how to use, and how a user obtains it."""

    relpath: str  # relative to the assets home
    how: str  # one sentence: where the file comes from and how to place it
    folder: bool = False


# Assets other modules ask for by name. Paths are relative to ``assets_home()``.
KNOWN_ASSETS: dict[str, KnownAsset] = {
    "inception_v3_imagenet": KnownAsset(
        "torchvision/inception_v3_google-0cc3c7bd.pth",
        "torchvision's ImageNet Inception-v3 weights (Inception_V3_Weights.IMAGENET1K_V1); copy the "
        ".pth from a machine with internet (torch hub cache, ~/.cache/torch/hub/checkpoints/)",
    ),
    "pytorch_fid_inception": KnownAsset(
        "pytorch-fid/pt_inception-2015-12-05-6726825d.pth",
        "pytorch-fid's FID Inception weights (the TF graph inception-2015-12-05 ported to torch), "
        "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
        "pt_inception-2015-12-05-6726825d.pth, downloaded on a machine with internet",
    ),
    "clip-rn101": KnownAsset(
        "clip/RN101.pt",
        "OpenAI's CLIP RN101.pt (the file `clip.load('RN101')` keeps in ~/.cache/clip/; only its "
        "tensors are read, its code is never run)",
    ),
    "clip-vit-base-patch16": KnownAsset(
        "hf/clip-vit-base-patch16",
        "a Hugging Face CLIP folder (config.json, model.safetensors, tokenizer files), e.g. "
        "`huggingface-cli download openai/clip-vit-base-patch16 --local-dir <path>` on a machine "
        "with internet",
        folder=True,
    ),
    "clip-vit-base-patch32": KnownAsset(
        "hf/clip-vit-base-patch32",
        "a Hugging Face CLIP folder (config.json, model.safetensors, tokenizer files), e.g. "
        "`huggingface-cli download openai/clip-vit-base-patch32 --local-dir <path>` on a machine "
        "with internet",
        folder=True,
    ),
}


def assets_home() -> Path:
    """The folder pretrained assets and caches live in (``$T2I_STAGES_HOME`` or the default)."""
    return Path(os.environ.get(ENV_HOME) or DEFAULT_HOME).expanduser()


def resolve_path(path: str | os.PathLike[str]) -> Path:
    """An absolute path as given; a relative path is taken relative to ``assets_home()``.

    A leading ``./`` or ``../`` keeps the path relative to the current directory instead, so a
    recipe can still point next to itself explicitly.
    """
    text = os.fspath(path)
    p = Path(text).expanduser()
    if p.is_absolute() or text.startswith(("./", "../")):
        return p
    return assets_home() / p


def missing_message(
    path: Path, how: str, what: str = "pretrained asset", folder: bool = False
) -> str:
    kind = "folder" if folder else "file"
    return (
        f"{what} not found: expected the {kind} {path}; obtain it as {how}, place it there "
        f"(or set ${ENV_HOME} to the folder holding it); nothing is downloaded at run time"
    )


def require_path(
    path: str | os.PathLike[str],
    how: str,
    what: str = "pretrained asset",
    folder: bool = False,
    must_contain: tuple[str, ...] = (),
) -> Path:
    """Resolve ``path`` and raise MissingAssetError unless it exists (with ``must_contain`` files)."""
    p = resolve_path(path)
    ok = p.is_dir() if folder else p.is_file()
    if not ok:
        raise MissingAssetError(missing_message(p, how, what, folder))
    for name in must_contain:
        if not (p / name).exists():
            raise MissingAssetError(
                f"{what} at {p} is incomplete: {name} is missing; obtain it as {how}"
            )
    return p


def require_asset(name: str, path: str | os.PathLike[str] | None = None) -> Path:
    """Resolve a known asset (optionally at a user-chosen ``path``) or raise MissingAssetError."""
    try:
        known = KNOWN_ASSETS[name]
    except KeyError:
        raise T2IError(
            f"unknown asset '{name}'; known assets: {', '.join(sorted(KNOWN_ASSETS))}"
        ) from None
    return require_path(
        path or known.relpath, known.how, what=f"asset '{name}'", folder=known.folder
    )


def require_hf_folder(
    path: str | os.PathLike[str], what: str = "Hugging Face model folder"
) -> Path:
    """A local Hugging Face model folder (must hold config.json); never a hub id to download."""
    return require_path(
        path,
        "a Hugging Face model folder saved with `save_pretrained` (config.json + weights "
        "[+ tokenizer files]); download it on a machine with internet, e.g. "
        "`huggingface-cli download <model id> --local-dir <path>`",
        what=what,
        folder=True,
        must_contain=("config.json",),
    )


def cache_dir(*parts: str, root: str | os.PathLike[str] | None = None) -> Path:
    """The one rule for where caches this project writes live (matchers, shapes data, oracles).

    ``$T2I_STAGES_HOME/cache/<parts>`` by default; ``root`` (a user's override, e.g. the shapes
    dataset's ``cache_dir`` param) replaces ``$T2I_STAGES_HOME/cache``, so every cache kind sits
    in the same place relative to whichever root is in force.
    """
    base = Path(root).expanduser() if root else assets_home() / "cache"
    return base.joinpath(*parts)
