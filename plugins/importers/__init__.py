"""Built-in importers of the papers' released files (``t2i-stages import FAMILY FILES``).

One module per family maps its release's keys onto the built-in components (a ``KeyMap``),
tells its files by their keys and shapes (``identify``), reads the release's config from the
tensor shapes and writes the recipe that rebuilds it, with the reference's quirks switched on
where reproducing the release needs them. The key maps are written out in docs/importing.md.
"""

from __future__ import annotations

from t2i_stages.plugin import ComponentSpec, NoParams, hookimpl


@hookimpl
def t2i_stages_importers() -> dict[str, ComponentSpec]:
    return {
        "attngan": ComponentSpec(
            "t2i_stages.plugins.importers.attngan:build_attngan_importer",
            NoParams,
            "AttnGAN's netG with its DAMSM text encoder and captions.pickle (+ image encoder, Ds)",
        ),
        "damsm": ComponentSpec(
            "t2i_stages.plugins.importers.damsm:build_damsm_importer",
            NoParams,
            "AttnGAN's DAMSM text and image encoders with captions.pickle, as a damsm matcher",
        ),
    }
