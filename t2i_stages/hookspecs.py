"""Hook specifications: one hook per kind of component.

Every hook has the same shape: it takes no arguments and returns ``{name: ComponentSpec}``.
Returning plain dicts keeps implementations pure and lets the registry report *both*
providers when two plugins claim one name, instead of letting pluggy's call order decide.
"""

from __future__ import annotations

import pluggy

PROJECT = "t2i_stages"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

# kind name (as used in recipes, errors and `t2i-stages plugins --kind`) -> hook name
KIND_HOOKS: dict[str, str] = {
    "dataset": "t2i_stages_datasets",
    "text_encoder": "t2i_stages_text_encoders",
    "conditioning": "t2i_stages_conditioning",
    "fusion": "t2i_stages_fusion",
    "stage": "t2i_stages_stages",
    "generator": "t2i_stages_generators",
    "discriminator": "t2i_stages_discriminators",
    "matcher": "t2i_stages_matchers",
    "loss": "t2i_stages_losses",
    "metric": "t2i_stages_metrics",
    "exporter": "t2i_stages_exporters",
}


class ComponentHooks:
    """The hook specifications; a plugin implements any subset of them."""

    @hookspec
    def t2i_stages_datasets(self) -> dict:
        """Datasets: factory(params, split=..., resolutions=...) -> torch Dataset."""

    @hookspec
    def t2i_stages_text_encoders(self) -> dict:
        """Text encoders: factory(params, **ctx) -> module giving words, sentence, mask, lengths."""

    @hookspec
    def t2i_stages_conditioning(self) -> dict:
        """Conditioning levels: choose which text a stage or a discriminator sees."""

    @hookspec
    def t2i_stages_fusion(self) -> dict:
        """Fusion blocks that mix text into image features (word attention, dynamic memory, affine)."""

    @hookspec
    def t2i_stages_stages(self) -> dict:
        """Generator stages: the initial stage, refinement stages and to-image heads."""

    @hookspec
    def t2i_stages_generators(self) -> dict:
        """Generators assembled from stages (stage-wise) or monolithic (DF-GAN)."""

    @hookspec
    def t2i_stages_discriminators(self) -> dict:
        """Discriminators, one per stage resolution, with optional (un)conditional heads."""

    @hookspec
    def t2i_stages_matchers(self) -> dict:
        """Image-text matchers (DAMSM, CLIP-based ITM) giving sentence/word and image/region features."""

    @hookspec
    def t2i_stages_losses(self) -> dict:
        """Losses: adversarial, matching (sentence, word-region), KL and friends."""

    @hookspec
    def t2i_stages_metrics(self) -> dict:
        """Evaluation metrics (FID/KID, IS, R-precision, CMD, attribute accuracy, ...)."""

    @hookspec
    def t2i_stages_exporters(self) -> dict:
        """Exporters that turn a trained run into a deployment artefact (ONNX, ...)."""
