"""The oracle for a shapes configuration, trained once and kept as a content-keyed artefact
(``t2i_stages.artefacts``): ``oracle.safetensors`` plus ``config.json`` holding its held-out
accuracy and timings.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from t2i_stages.plugin import Artefact, T2IError, load_state, save_state, write_config

from ..params import ShapesParams
from .model import CellNet, ShapesOracle, default_cell_px, head_sizes
from .train import train_oracle

ORACLE_VERSION = 1
WEIGHTS = "oracle.safetensors"


def _params_of(source: Any) -> ShapesParams:
    if isinstance(source, ShapesParams):
        return source
    if hasattr(source, "params") and isinstance(source.params, ShapesParams):
        return source.params
    if isinstance(source, dict):
        return ShapesParams.model_validate(source)
    raise T2IError(f"load_oracle needs a shapes dataset or its params, got {type(source).__name__}")


def oracle_artefact(
    p: ShapesParams,
    resolution: int,
    cell_px: int,
    cache_dir: str | None = None,
    precision: str = "fp32",
) -> Artefact:
    """Where the oracle for these params, image size, cell size and training precision lives
    (trained in bf16 it is another oracle); ``cache_dir`` overrides the params' own."""
    key = {
        "params": p.content(),
        "resolution": int(resolution),
        "cell_px": int(cell_px),
        "version": ORACLE_VERSION,
        "precision": precision,
    }
    return Artefact("shapes-oracle", key, root=cache_dir if cache_dir is not None else p.cache_dir)


def load_oracle(
    source: Any,
    cache_dir: str | None = None,
    resolution: int | None = None,
    *,
    cell_px: int | None = None,
    train_images: int = 2500,
    epochs: int = 6,
    retrain: bool = False,
    log: Callable[[str], None] | None = None,
    precision: str = "fp32",
) -> ShapesOracle:
    """The oracle for a shapes dataset (or its params) at ``resolution`` (default: its highest).

    Loaded from the cache when present, else trained on fresh renders and saved; the artefact's
    lock makes concurrent callers (parallel tests, DDP ranks) train it once. ``precision`` is fp32
    by default, so that the judge comes out the same on every CPU kind: with ``auto`` (bf16 where
    the CPU runs it natively) an AMD EPYC with AVX512-BF16 trained a weaker oracle (shape 0.975
    against fp32's 0.993 on 300 held-out 128-px renders) than a Xeon did. ``train_images`` and
    ``epochs`` only shape a new training: they are not part of the cache key.
    """
    from t2i_stages.plugin import resolve_precision

    p = _params_of(source)
    if resolution is None:
        resolution = max(getattr(source, "resolutions", None) or p.resolutions)
    cell_px = cell_px or default_cell_px(resolution, p.grid)
    chosen = resolve_precision(precision, "cpu", what="oracle precision").chosen
    art = oracle_artefact(p, resolution, cell_px, cache_dir, chosen)
    with art.lock():
        if art.ready() and not retrain:
            try:
                net = CellNet(head_sizes(p))
                net.load_state_dict(load_state(art.path, WEIGHTS))
                info = (art.config() or {}).get("info", {})
                return ShapesOracle(p, resolution, cell_px, net, info)
            except Exception as exc:  # a damaged cache file is retrained, never trusted
                if log:
                    log(f"oracle cache {art.path} unreadable ({exc}); retraining")
        logger = log or (lambda m: print(m, file=sys.stderr, flush=True))
        logger(f"shapes: training the oracle for {resolution}px images (cached at {art.path})")
        oracle = train_oracle(
            p,
            resolution,
            cell_px=cell_px,
            train_images=train_images,
            epochs=epochs,
            log=log,
            precision=chosen,
        )
        with art.building() as tmp:
            save_state(tmp, oracle.state(), WEIGHTS)
            write_config(tmp, {"key": art.key, "info": oracle.info})
    return oracle
