"""Built-in generators: ``stagewise`` (AttnGAN, DM-GAN, GR-GAN) and ``dfgan`` (single stage).

Both follow one forward contract, ``G(z, eps, text: TextFeatures) -> GeneratorOutput``, and
expose ``z_dim``, ``eps_dim``, ``text_dim`` and ``resolutions``.
"""

from __future__ import annotations

from t2i_stages.plugin import ComponentSpec, hookimpl

from .params import (
    DFGANGeneratorParams,
    StagewiseGeneratorParams,
    dfgan_resolutions,
    stagewise_resolutions,
)


@hookimpl
def t2i_stages_generators() -> dict[str, ComponentSpec]:
    return {
        "stagewise": ComponentSpec(
            "t2i_stages.plugins.generators.stagewise:build_stagewise",
            StagewiseGeneratorParams,
            "stages from the recipe, one image per stage, attention maps and CA statistics",
            resolutions=stagewise_resolutions,
        ),
        "dfgan": ComponentSpec(
            "t2i_stages.plugins.generators.dfgan:build_dfgan",
            DFGANGeneratorParams,
            "DF-GAN single-stage generator with deep text-image fusion blocks",
            resolutions=dfgan_resolutions,
        ),
    }
