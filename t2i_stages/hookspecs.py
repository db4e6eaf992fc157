"""Hook specifications: one hook per kind of component.

Every hook has the same shape: it takes no arguments and returns ``{name: ComponentSpec}``.
Returning plain dicts keeps implementations pure and lets the registry report *both*
providers when two plugins claim one name, instead of letting pluggy's call order decide.
A plugin imports ``hookimpl``, ``ComponentSpec`` and every contract it needs from
``t2i_stages.plugin``, the public plugin API (docs/writing-a-plugin.md).
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
    "importer": "t2i_stages_importers",
}


class ComponentHooks:
    """The hook specifications; a plugin implements any subset of them."""

    @hookspec
    def t2i_stages_datasets(self) -> dict:
        """Datasets: factory(params, split=..., resolutions=...) -> torch Dataset (items with
        images, tokens, mask; ``WordVocab``, ``tokenize`` in ``t2i_stages.plugin``)."""

    @hookspec
    def t2i_stages_text_encoders(self) -> dict:
        """Text encoders: factory(params, **ctx) -> module whose ``encode_text(tokens, mask)``
        gives ``t2i_stages.plugin.TextFeatures``."""

    @hookspec
    def t2i_stages_conditioning(self) -> dict:
        """Conditioning levels: choose which text a stage or a discriminator sees; they map
        ``(TextFeatures, eps) -> Condition`` (``t2i_stages.plugin``)."""

    @hookspec
    def t2i_stages_fusion(self) -> dict:
        """Fusion blocks that mix text into image features: ``(h, Condition) -> FusionOutput``
        (``t2i_stages.plugin``; ``check_fit`` checks one against its conditioning)."""

    @hookspec
    def t2i_stages_stages(self) -> dict:
        """Generator stages (initial, refinement, to-image heads): ``(h, TextFeatures, z, eps) ->
        StageOutput`` (``t2i_stages.plugin``)."""

    @hookspec
    def t2i_stages_generators(self) -> dict:
        """Generators, assembled from stages or monolithic: ``(z, eps, TextFeatures) ->
        GeneratorOutput`` (``t2i_stages.plugin``)."""

    @hookspec
    def t2i_stages_discriminators(self) -> dict:
        """Discriminators, one per stage resolution, with optional (un)conditional heads: subclass
        ``t2i_stages.plugin.DiscriminatorBase``."""

    @hookspec
    def t2i_stages_matchers(self) -> dict:
        """Image-text matchers giving sentence/word and image/region features: subclass
        ``t2i_stages.plugin.Matcher``; a pretraining step is ``ComponentSpec(prepare=...)`` with
        ``PrepareContext`` / ``Prepared``."""

    @hookspec
    def t2i_stages_losses(self) -> dict:
        """Losses with a ``role``: adversarial, matching or kl (the protocols ``AdversarialLoss``,
        ``MatchingLoss``, ``KLLoss`` in ``t2i_stages.plugin``)."""

    @hookspec
    def t2i_stages_metrics(self) -> dict:
        """Evaluation metrics: subclass ``t2i_stages.plugin.StreamingMetric`` (``start(EvalContext)``,
        ``update(EvalBatch)``, ``finish() -> MetricResult``)."""

    @hookspec
    def t2i_stages_exporters(self) -> dict:
        """Exporters that turn a trained run into a deployment artefact (ONNX, ...): an object with
        ``export_run(run_dir, out=None, checkpoint=None)`` (names in ``t2i_stages.plugin``)."""

    @hookspec
    def t2i_stages_importers(self) -> dict:
        """Importers of a paper's released files (``t2i-stages import FAMILY FILES``): an object
        with ``identify(files) -> str | None`` and ``convert(files) -> ImportedRelease``
        (``Importer``, ``ReleaseFile``, ``KeyMap`` in ``t2i_stages.plugin``)."""
