"""Matcher pretraining (DAMSM / ITM): the built-in matchers' ``prepare`` step.

``pretrain_matcher`` trains a matcher on a train split with the DAMSM objective
(W0 + W1 + S0 + S1, §5.1/§6.1), reports R-precision on the test split (1 true caption among 100,
§9.3) and caches the result as a content-keyed artefact under
``$T2I_STAGES_HOME/cache/matchers/<key>/`` (``cache.py``); a second call with the same inputs
loads it. An entry that a time cap or a signal stopped short of its steps is cached as
incomplete and continued by the next call, never handed back as finished. Frozen pretrained
weights are never copied into the cache: they are read again from their local files.

Modules: ``params`` (the recipe's ``pretrain`` block), ``loop`` (the training loop), ``cache``
(key, save, load), ``prepare`` (``pretrain_matcher`` and the ``prepare`` hook).
"""

from t2i_stages.plugin import lazy_exports

from .params import PretrainParams

# The rest import numpy or torch: on first use, so registering the plugin imports neither.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "dataset_fingerprint": ".cache",
        "load_matcher_weights": ".cache",
        "matcher_cache_payload": ".cache",
        "lr_factor": ".loop",
        "train_matcher": ".loop",
        "PretrainingStopped": ".prepare",
        "PretrainResult": ".prepare",
        "prepare_matcher": ".prepare",
        "pretrain_matcher": ".prepare",
    },
    globals(),
)

__all__ = [
    "PretrainParams",
    "PretrainResult",
    "PretrainingStopped",
    "dataset_fingerprint",
    "load_matcher_weights",
    "lr_factor",
    "matcher_cache_payload",
    "prepare_matcher",
    "pretrain_matcher",
    "train_matcher",
]
