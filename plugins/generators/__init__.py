"""Built-in generators: ``stagewise`` (AttnGAN, DM-GAN, GR-GAN) and ``dfgan`` (single stage).

Both follow one forward contract, ``G(z, eps, text: TextFeatures) -> GeneratorOutput``, and
expose ``z_dim``, ``eps_dim``, ``text_dim`` and ``resolutions``.
"""

from __future__ import annotations

from t2i_stages.plugin import ComponentSpec, hookimpl

from . import dfgan, stagewise


@hookimpl
def t2i_stages_generators() -> dict[str, ComponentSpec]:
    return {
        "stagewise": ComponentSpec(
            stagewise.build_stagewise,
            stagewise.StagewiseGeneratorParams,
            "stages from the recipe, one image per stage, attention maps and CA statistics",
        ),
        "dfgan": ComponentSpec(
            dfgan.build_dfgan,
            dfgan.DFGANGeneratorParams,
            "DF-GAN single-stage generator with deep text-image fusion blocks",
        ),
    }
