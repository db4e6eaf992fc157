"""Layers and helpers shared by the built-in model plugins (conditioning, fusion, stages, G, D).

Not a plugin module itself: it registers nothing, and it is not the plugin API. The contracts
between components (``Condition``, ``FusionOutput``, ``StageOutput``, ``masked_softmax``, ...)
are in ``t2i_stages.plugin``; these reference building blocks are the built-ins' own
implementation, pinned to the reference models (and to their trained weights).
"""

from .init import apply_init
from .layers import GLU, DownBlock, ResBlock, UpBlock, conv1x1, conv3x3

__all__ = [
    "GLU",
    "DownBlock",
    "ResBlock",
    "UpBlock",
    "apply_init",
    "conv1x1",
    "conv3x3",
]
