"""Layers and contracts shared by the built-in model plugins (conditioning, fusion, stages, G, D).

Not a plugin module itself: it registers nothing. Third-party plugins may import from it
(``t2i_stages.plugins.common``) to build blocks that fit the built-in ones.
"""

from .condition import Condition, FusionOutput, StageOutput
from .init import apply_init
from .layers import GLU, DownBlock, ResBlock, UpBlock, conv1x1, conv3x3
from .masking import masked_mean, masked_softmax

__all__ = [
    "GLU",
    "Condition",
    "DownBlock",
    "FusionOutput",
    "ResBlock",
    "StageOutput",
    "UpBlock",
    "apply_init",
    "conv1x1",
    "conv3x3",
    "masked_mean",
    "masked_softmax",
]
