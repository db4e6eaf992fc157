"""The DAMSM text side of a DM-GAN or DF-GAN import, from whichever source the files give.

Both releases are trained on AttnGAN's DAMSM and publish it as other files. A user gives it
either as the released files themselves (``text_encoder*.pth``, ``captions.pickle``, optionally
``image_encoder*.pth``: ``damsm_side``, as the ``attngan`` importer takes them) or as the
``recipe.resolved.yaml`` of a t2i-stages run whose text side is a DAMSM (``text_side``: the
output of ``t2i-stages import damsm``, or a run that trained one). This module picks the
source, refuses both at once, and gives the importer one shape of answer: the recipe slots, the
components and their files, the vocabulary, the notes, and whether the run has the DAMSM
matcher (and so, where the family trains with them, the matching losses).

The reference's resize before the image encoder is the family's (``align_corners``), whichever
source: a run's ``damsm`` matcher is set to it, with a note when that changes the run's value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from t2i_stages.plugin import ReleaseFile, T2IError

from .captions import is_captions_file
from .damsm_side import DamsmSide, damsm_files, read_damsm_side
from .text_side import DAMSM_TEXT, read_text_side, run_recipes

FID_IS = {"metrics": [{"type": "fid"}, {"type": "inception_score"}]}


@dataclass
class ReleaseText:
    """A release's DAMSM text side: recipe slots, components and their files, vocabulary."""

    slots: dict[str, Any]  # matcher / text_encoder (and eval without a matcher)
    vocab: Any
    notes: list[str]
    files: set[str]  # the files it was read from, so they are part of the release
    describe: str  # for the release line
    side: DamsmSide | None = None  # the released files' DAMSM, mapped when asked
    run_components: tuple[dict[str, dict[str, Any]], dict[str, str]] | None = None

    @property
    def matching(self) -> bool:
        """Whether the run has the DAMSM matcher (its matching losses, R-precision)."""
        return self.slots.get("matcher") is not None

    def components(self, release: str) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
        """The text side's checkpoint components and their files (a key that does not fit
        the released file is a one-line error naming ``release``)."""
        if self.side is not None:
            return self.side.components(release)
        assert self.run_components is not None
        return self.run_components


def read_release_text(
    files: list[ReleaseFile],
    family: str,
    generator: str,
    nef: int,
    hint: str,
    align_corners: bool,
    missing: str,
    registry: Any,
    matching_losses: bool = True,
) -> ReleaseText:
    """The DAMSM among ``files`` for the generator named ``generator`` (text size ``nef``):
    the released files if any is there, else a text-side run's ``recipe.resolved.yaml``, else
    the one-line ``missing``. ``matching_losses`` False for a family trained without them
    (DF-GAN), which only changes a note."""
    direct = damsm_files(files) + [f for f in files if is_captions_file(f)]
    runs = run_recipes(files)
    if direct and runs:
        raise T2IError(
            f"import {family}: give one text side, the DAMSM files ({direct[0].path}) or a "
            f"text-side run ({runs[0].path}), not both"
        )
    if direct:
        side = read_damsm_side(files, family, generator, nef, hint, align_corners)
        used = {str(f.path) for f in direct}
        notes = side.notes(matching_losses)
        return ReleaseText(side.slots(), side.vocab, notes, used, side.text.describe(), side)
    run = read_text_side(files, family, DAMSM_TEXT, nef, missing, registry)
    slots: dict[str, Any] = dict(run.slots)
    notes = list(run.notes)
    matcher = slots.get("matcher")
    if matcher is not None:
        params = dict(matcher["params"])
        if params.get("resize_align_corners") != align_corners:
            notes.append(
                f"DAMSM resize: the text-side run's matcher set to resize_align_corners "
                f"{str(align_corners).lower()}, as {family}'s reference resizes"
            )
        slots["matcher"] = {**matcher, "params": {**params, "resize_align_corners": align_corners}}
    else:
        slots["eval"] = FID_IS  # R-precision ranks with the matcher: FID and IS only
    used = {str(f.path) for f in runs}
    what = f"text side {run.kind} of {run.run}"
    return ReleaseText(slots, run.vocab, notes, used, what, None, (run.components, run.sources))
