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
- report a user error: ``T2IError``, ``PluginError`` (one line, exit code 2 in the CLI);
- services the built-ins use too: local assets (``require_asset``, ``require_hf_folder``),
  content-keyed caches (``Artefact``, ``key_digest``, ``save_state``, ``load_state``,
  ``write_config``, ``sha256_file``), precision (``autocast``, ``resolve_precision``), stop
  signals (``StopRequests``), text (``WordVocab``, ``tokenize``, ``HFTokenizer``,
  ``load_tokenizer``), metric building blocks (extractors, encoders, distances);
- test a plugin: ``load_registry``, ``load_recipe``.

The factory context each kind is given is described in docs/writing-a-plugin.md.
"""

from __future__ import annotations

from .artefacts import Artefact, key_digest, load_state, save_state, write_config
from .assets import MissingAssetError, require_asset, require_hf_folder
from .bases import DiscriminatorBase, Matcher
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
from .errors import PluginError, T2IError
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
    resize_uint8,
)
from .evaluation.samples import EvalBatch, to_float
from .hardware import autocast, resolve_precision
from .hashing import sha256_file
from .hookspecs import hookimpl
from .lifecycle import PrepareContext, Prepared, PrepareStopped
from .masking import masked_mean, masked_softmax
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
from .types import (
    Condition,
    FusionOutput,
    GeneratorOutput,
    ImageFeatures,
    Provides,
    StageOutput,
    TextFeatures,
)

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
    "sha256_file",
    "autocast",
    "resolve_precision",
    "StopRequests",
    "WordVocab",
    "tokenize",
    "HFTokenizer",
    "load_tokenizer",
    "to_float",
    "resize_uint8",
    "l2_normalise",
    "inception_file",
    "ImageExtractor",
    "InceptionExtractor",
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
    # testing a plugin
    "load_registry",
    "load_recipe",
]
