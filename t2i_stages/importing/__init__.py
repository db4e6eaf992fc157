"""Importing the papers' released files into ordinary run folders (``t2i-stages import``).

The core reads the files (``legacy``: ``torch.load(weights_only=True)`` only), asks an importer
plugin (kind ``importer``, one per family) to recognise them and to map their keys onto the
framework's components (``keymap``), then checks every tensor against the components the
recipe builds and writes a run folder that ``eval``, ``generate``, ``export`` and
``train.init_from`` accept (``api``). What an importer returns is ``release.ImportedRelease``.
"""

from .keymap import KeyMap, KeyMapError, fit_tensors
from .legacy import LegacyFileError, ReleaseFile, read_release_file
from .release import ImportedRelease, Importer

__all__ = [
    "ImportedRelease",
    "Importer",
    "KeyMap",
    "KeyMapError",
    "LegacyFileError",
    "ReleaseFile",
    "fit_tensors",
    "read_release_file",
]
