"""The shapes oracle: reads the attributes of objects in (real or generated) shapes images.

It is the judge of whether a generator follows its captions: ``model`` (the cell CNN and its
reading of images), ``train`` (rendering its training set, training), ``score`` (pairing
predictions with the ground truth, accuracies) and ``cache`` (trained once, kept as a
content-keyed artefact)::

    oracle = load_oracle(dataset)          # or ShapesParams; trains on first use (~1 min CPU)
    attrs = oracle.predict(images)         # int64 (B, max_objects, 7), columns 0-6 of the layout
    oracle.score(images, batch["attributes"])
    # {"shape": acc, "color": acc, "size": acc, "fine": acc, "position": acc,
    #  "count": acc, "all_mentioned": acc, "n_images": B, "n_objects": n}
    score_objects(attrs, batch["attributes"], oracle.grid)  # every attribute of every object,
    # mentioned or not: {..., "all": per object, "all_correct": per image}
"""

from __future__ import annotations

from .cache import ORACLE_VERSION, load_oracle, oracle_artefact
from .model import CellNet, ShapesOracle, default_cell_px, head_sizes
from .score import (
    ATTR_COLUMNS,
    ATTRS,
    OBJECT_ATTRS,
    objects_right,
    score_objects,
    score_predictions,
)
from .train import ORACLE_HOLDOUT_SPLIT, ORACLE_TRAIN_SPLIT, render_set, train_oracle

__all__ = [
    "ATTRS",
    "ATTR_COLUMNS",
    "ORACLE_HOLDOUT_SPLIT",
    "ORACLE_TRAIN_SPLIT",
    "OBJECT_ATTRS",
    "ORACLE_VERSION",
    "CellNet",
    "ShapesOracle",
    "default_cell_px",
    "head_sizes",
    "load_oracle",
    "objects_right",
    "oracle_artefact",
    "render_set",
    "score_objects",
    "score_predictions",
    "train_oracle",
]
