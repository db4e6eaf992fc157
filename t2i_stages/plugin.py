"""The public plugin API: every name a plugin package imports from t2i-stages.

A plugin imports from here and nowhere else in ``t2i_stages`` (the built-in plugins in
``t2i_stages.plugins`` do the same, and ``tests/architecture`` checks it)::

    from t2i_stages.plugin import ComponentSpec, Condition, FusionOutput, Params, hookimpl

What is here, by what a plugin does with it:

- declare components: ``hookimpl`` (the hooks are ``t2i_stages.hookspecs.ComponentHooks``, one
  per kind, each returning ``{name: ComponentSpec}``), ``ComponentSpec``, ``Params``,
  ``NoParams`` and the ``MAX_*`` bounds for params fields;
- name other components in params: the slots (``ConditioningSlot``, ``FusionSlot``, ...),
  built with ``registry.build(kind, slot, **context)`` in a factory;
- pass data between components: ``TextFeatures``, ``ImageFeatures``, ``Condition``,
  ``FusionOutput``, ``StageOutput``, ``GeneratorOutput``; ``masked_softmax`` and
  ``masked_mean`` (finite for a fully padded caption); ``check_fit`` (does a fusion block take
  what its conditioning level gives);
- subclass: ``DiscriminatorBase``, ``Matcher``, ``StreamingMetric`` (the metric interface:
  ``start(EvalContext)``, ``update(EvalBatch)``, ``finish() -> MetricResult``); the loss
  protocols ``AdversarialLoss``, ``MatchingLoss``, ``KLLoss`` and the ``Critic`` a loss judges
  with;
- the contexts a component is given: its factory's keywords, one dataclass per kind
  (``DatasetContext``, ``TextContext``, ``ConditioningContext``, ``FusionContext``,
  ``StageContext``, ``DiscriminatorContext``, ``MetricContext``, ``NoContext``; a keyword that is
  not a field is an error), ``PrepareContext`` (its ``prepare`` step, returning
  ``Prepared`` or raising ``PrepareStopped``), ``EvalContext`` and ``EvalBatch`` (metrics);
- import a paper's released files (kind ``importer``): ``Importer``, ``ReleaseFile``,
  ``KeyMap``, ``KeyMapError``, ``fit_tensors``, ``ImportedRelease``, and
  ``latest_good_checkpoint`` (another run's weights, e.g. the text side a release lacks);
- report a user error: ``T2IError``, ``PluginError`` (one line, exit code 2 in the CLI);
- services the built-ins use too: lazy re-exports (``lazy_exports``), local assets (``require_asset``, ``require_hf_folder``),
  content-keyed caches (``Artefact``, ``key_digest``, ``save_state``, ``load_state``,
  ``write_config``, ``sha256_file``), precision (``autocast``, ``resolve_precision``), stop
  signals (``StopRequests``), text (``WordVocab``, ``tokenize``, ``HFTokenizer``,
  ``load_tokenizer``), metric building blocks (extractors, encoders, distances);
- report bad input files: ``BadData`` (one ``DataWarning`` with the count and the first names,
  or ``BadDataError`` in strict mode) and ``IMAGE_EXTS`` (the image suffixes the readers read);
- test a plugin: ``load_registry``, ``load_recipe``.

The factory context each kind is given is described in docs/writing-a-plugin.md. Importing
this module imports no torch: the names whose modules need it (the data types, the bases, the
metric building blocks, the caches) are imported on first use, so a plugin's registration and
params modules can import from here and stay torch-free.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .assets import MissingAssetError, require_asset, require_hf_folder
from .context import (
    ConditioningContext,
    DatasetContext,
    DiscriminatorContext,
    FusionContext,
    MetricContext,
    NoContext,
    StageContext,
    TextContext,
)
from .contracts import AdversarialLoss, Critic, KLLoss, MatchingLoss, check_fit
from .data_files import IMAGE_EXTS, BadData, BadDataError, DataWarning
from .errors import PluginError, T2IError
from .hardware import autocast, resolve_precision
from .hashing import sha256_file
from .hookspecs import hookimpl
from .importing import (
    ImportedRelease,
    Importer,
    KeyMap,
    KeyMapError,
    ReleaseFile,
    fit_tensors,
)
from .lazy import lazy_exports
from .lifecycle import PrepareContext, Prepared, PrepareStopped
from .recipe.schema import Beta
from .recipe.slots import (
    ConditioningSlot,
    DatasetSlot,
    DiscriminatorSlot,
    ExporterSlot,
    FusionSlot,
    GeneratorSlot,
    LossSlot,
    MatcherSlot,
    MetricSlot,
    Slot,
    StageSlot,
    TextEncoderSlot,
)
from .recipe.validate import load_recipe
from .registry import load_registry
from .signals import StopRequests
from .spec import (
    MAX_BATCH,
    MAX_CAPTIONS,
    MAX_CHANNELS,
    MAX_LAYERS,
    MAX_MINUTES,
    MAX_RESOLUTION,
    MAX_SAMPLES,
    MAX_STEPS,
    MAX_TOKENS,
    MAX_VOCAB,
    ComponentSpec,
    NoParams,
    Params,
)
from .text import HFTokenizer, WordVocab, load_tokenizer, tokenize

# Names whose modules import torch, imported on first use (PEP 562), so registering a plugin
# (and listing or validating with it) imports no torch.
_LAZY: dict[str, str] = {
    "Artefact": "t2i_stages.artefacts",
    "key_digest": "t2i_stages.artefacts",
    "load_state": "t2i_stages.artefacts",
    "save_state": "t2i_stages.artefacts",
    "write_config": "t2i_stages.artefacts",
    "latest_good_checkpoint": "t2i_stages.checkpoint",
    "DiscriminatorBase": "t2i_stages.bases",
    "Matcher": "t2i_stages.bases",
    "EvalContext": "t2i_stages.evaluation.context",
    "Metric": "t2i_stages.evaluation.context",
    "MetricResult": "t2i_stages.evaluation.context",
    "StreamingMetric": "t2i_stages.evaluation.context",
    "CMD_FORMS": "t2i_stages.evaluation.distances",
    "GaussianStats": "t2i_stages.evaluation.distances",
    "cmd_from_stats": "t2i_stages.evaluation.distances",
    "inception_score_from_probs": "t2i_stages.evaluation.distances",
    "kernel_distance": "t2i_stages.evaluation.distances",
    "stats_distance": "t2i_stages.evaluation.distances",
    "ClipEncoder": "t2i_stages.evaluation.extractors",
    "ImageExtractor": "t2i_stages.evaluation.extractors",
    "InceptionExtractor": "t2i_stages.evaluation.extractors",
    "FidInceptionExtractor": "t2i_stages.evaluation.inceptions",
    "ImageNetInceptionExtractor": "t2i_stages.evaluation.inceptions",
    "TFInceptionClassifier": "t2i_stages.evaluation.inceptions",
    "load_imagenet_inception": "t2i_stages.evaluation.inceptions",
    "resize_images": "t2i_stages.evaluation.extractors",
    "QUANTIZE": "t2i_stages.evaluation.samples",
    "JointEncoder": "t2i_stages.evaluation.extractors",
    "MatcherEncoder": "t2i_stages.evaluation.extractors",
    "inception_file": "t2i_stages.evaluation.extractors",
    "l2_normalise": "t2i_stages.evaluation.extractors",
    "matcher_extractor": "t2i_stages.evaluation.extractors",
    "oracle_extractor": "t2i_stages.evaluation.extractors",
    "random_extractor": "t2i_stages.evaluation.extractors",
    "resize_uint8": "t2i_stages.evaluation.extractors",
    "EvalBatch": "t2i_stages.evaluation.samples",
    "to_float": "t2i_stages.evaluation.samples",
    "to_uint8": "t2i_stages.evaluation.samples",
    "masked_mean": "t2i_stages.masking",
    "masked_softmax": "t2i_stages.masking",
    "Condition": "t2i_stages.types",
    "FusionOutput": "t2i_stages.types",
    "GeneratorOutput": "t2i_stages.types",
    "ImageFeatures": "t2i_stages.types",
    "Provides": "t2i_stages.types",
    "StageOutput": "t2i_stages.types",
    "TextFeatures": "t2i_stages.types",
}

if TYPE_CHECKING:
    from .artefacts import Artefact, key_digest, load_state, save_state, write_config
    from .bases import DiscriminatorBase, Matcher
    from .checkpoint import latest_good_checkpoint
    from .evaluation.context import EvalContext, Metric, MetricResult, StreamingMetric
    from .evaluation.distances import (
        CMD_FORMS,
        GaussianStats,
        cmd_from_stats,
        inception_score_from_probs,
        kernel_distance,
        stats_distance,
    )
    from .evaluation.extractors import (
        ClipEncoder,
        ImageExtractor,
        InceptionExtractor,
        JointEncoder,
        MatcherEncoder,
        inception_file,
        l2_normalise,
        matcher_extractor,
        oracle_extractor,
        random_extractor,
        resize_images,
        resize_uint8,
    )
    from .evaluation.inceptions import (
        FidInceptionExtractor,
        ImageNetInceptionExtractor,
        TFInceptionClassifier,
        load_imagenet_inception,
    )
    from .evaluation.samples import QUANTIZE, EvalBatch, to_float, to_uint8
    from .masking import masked_mean, masked_softmax
    from .types import (
        Condition,
        FusionOutput,
        GeneratorOutput,
        ImageFeatures,
        Provides,
        StageOutput,
        TextFeatures,
    )


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())

__all__ = [
    # declaring components
    "hookimpl",
    "ComponentSpec",
    "Params",
    "NoParams",
    "MAX_BATCH",
    "MAX_CAPTIONS",
    "MAX_CHANNELS",
    "MAX_LAYERS",
    "MAX_MINUTES",
    "MAX_RESOLUTION",
    "MAX_SAMPLES",
    "MAX_STEPS",
    "MAX_TOKENS",
    "MAX_VOCAB",
    "Beta",
    # slots
    "Slot",
    "DatasetSlot",
    "TextEncoderSlot",
    "ConditioningSlot",
    "FusionSlot",
    "StageSlot",
    "GeneratorSlot",
    "DiscriminatorSlot",
    "MatcherSlot",
    "LossSlot",
    "MetricSlot",
    "ExporterSlot",
    # data between components
    "TextFeatures",
    "ImageFeatures",
    "Condition",
    "FusionOutput",
    "StageOutput",
    "GeneratorOutput",
    "Provides",
    "masked_softmax",
    "masked_mean",
    "check_fit",
    # bases and protocols
    "DiscriminatorBase",
    "Matcher",
    "StreamingMetric",
    "Metric",
    "Critic",
    "AdversarialLoss",
    "MatchingLoss",
    "KLLoss",
    # contexts
    "DatasetContext",
    "TextContext",
    "ConditioningContext",
    "FusionContext",
    "StageContext",
    "DiscriminatorContext",
    "MetricContext",
    "NoContext",
    "PrepareContext",
    "Prepared",
    "PrepareStopped",
    "EvalContext",
    "EvalBatch",
    "MetricResult",
    # importing a paper's release
    "Importer",
    "ImportedRelease",
    "ReleaseFile",
    "KeyMap",
    "KeyMapError",
    "fit_tensors",
    "latest_good_checkpoint",
    # errors
    "T2IError",
    "PluginError",
    # services
    "require_asset",
    "require_hf_folder",
    "MissingAssetError",
    "Artefact",
    "key_digest",
    "save_state",
    "load_state",
    "write_config",
    "lazy_exports",
    "sha256_file",
    "autocast",
    "resolve_precision",
    "StopRequests",
    "WordVocab",
    "tokenize",
    "HFTokenizer",
    "load_tokenizer",
    "to_float",
    "to_uint8",
    "resize_uint8",
    "resize_images",
    "QUANTIZE",
    "l2_normalise",
    "inception_file",
    "ImageExtractor",
    "InceptionExtractor",
    "FidInceptionExtractor",
    "ImageNetInceptionExtractor",
    "TFInceptionClassifier",
    "load_imagenet_inception",
    "random_extractor",
    "matcher_extractor",
    "oracle_extractor",
    "JointEncoder",
    "ClipEncoder",
    "MatcherEncoder",
    "GaussianStats",
    "stats_distance",
    "kernel_distance",
    "cmd_from_stats",
    "CMD_FORMS",
    "inception_score_from_probs",
    # bad input files
    "BadData",
    "BadDataError",
    "DataWarning",
    "IMAGE_EXTS",
    # testing a plugin
    "load_registry",
    "load_recipe",
]
