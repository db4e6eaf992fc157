"""t2i-stages: a plugin framework for stage-wise text-to-image GANs.

Plugin packages import from ``t2i_stages.plugin``, the public plugin API.
"""

from .hookspecs import hookimpl
from .registry import Registry, load_registry
from .spec import ComponentSpec, NoParams, Params

__version__ = "0.1.0"

__all__ = [
    "ComponentSpec",
    "NoParams",
    "Params",
    "Registry",
    "__version__",
    "hookimpl",
    "load_registry",
]
