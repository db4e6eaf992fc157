"""Layers and helpers shared by the built-in model plugins (conditioning, fusion, stages, G, D).

Not a plugin module itself: it registers nothing, and it is not the plugin API. The contracts
between components (``Condition``, ``FusionOutput``, ``StageOutput``, ``masked_softmax``, ...)
are in ``t2i_stages.plugin``; these reference building blocks are the built-ins' own
implementation, pinned to the reference models (and to their trained weights): ``layers``
(up/down/res blocks, GLU, convs), ``init`` (weight init), ``params`` (shared param types),
``retrieval`` (R-precision). It re-exports nothing, so importing ``params`` imports no torch.
"""
