"""The Python API behind ``t2i-stages export`` and ``t2i-stages generate``.

::

    from t2i_stages.export import export_run, generate
    res = export_run("runs/grgan", out="deploy/", fp16=True)     # parity-checked ONNX folder
    res.manifest["parity"]["fp32"]["max_abs_diff"]
    export_run("runs/attngan", out="deploy/", attention=True, triton=True)  # + attention_s
    generate(["a red circle"], "grid.png", onnx="deploy/", provider="cpu")   # torch-free path
    generate(["a red circle"], "grid.png", model="runs/grgan", provider="cpu")  # PyTorch

An exporter plugin's factory returns an object with ``export_run(run_dir, out=None,
checkpoint=None)``; the run's recipe may choose one and its params in its ``export:`` slot, and
keyword arguments here override those params. This module imports torch only where a PyTorch
path needs it, so ``generate(onnx=...)`` runs where torch is not installed.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from t2i_stages.errors import T2IError

from .runtime import (
    AUTO,
    PROVIDER_CHOICES,
    ProviderError,
    caption_warnings,
    draw_noise,
    load_deployment,
    save_grid,
)


def _run_export_slot(run_dir: Path) -> dict[str, Any]:
    """The ``export:`` slot of a run's resolved recipe, or ``{}``."""
    from t2i_stages.api import read_run_recipe

    slot = read_run_recipe(run_dir).data.get("export")
    return slot if isinstance(slot, dict) else {}


def get_exporter(
    name: str = "onnx", params: dict[str, Any] | None = None, registry: Any = None
) -> Any:
    """Build the exporter plugin ``name`` with ``params`` (validated by its own model)."""
    from pydantic import ValidationError

    from t2i_stages.recipe import ExporterSlot
    from t2i_stages.registry import load_registry

    registry = registry or load_registry()
    slot = ExporterSlot(type=name, params=dict(params or {}))
    try:
        return registry.build("exporter", slot)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(x) for x in e['loc']) or name}: {e['msg']}" for e in exc.errors()
        )
        raise T2IError(f"exporter '{name}': {problems}") from None


def export_run(
    run_dir: str | Path,
    out: str | Path | None = None,
    plugin: str | None = None,
    checkpoint: str | Path | None = None,
    registry: Any = None,
    attention: bool | None = None,
    triton: bool | None = None,
    **params: Any,
) -> Any:
    """Export a run folder; the exporter plugin and its params come from the recipe's
    ``export:`` slot (default ``onnx``), then ``params`` (None values are ignored).

    ``attention``: also output each refinement stage's word-attention map (``attention_s``);
    ``triton``: also write a Triton model repository under ``<out>/triton/`` (both None: the
    recipe's slot, else off; both are ``onnx`` exporter params).

    With the built-in ``onnx`` exporter the result is an :class:`~.exporter.ExportResult`
    (``folder``, ``manifest``); a parity failure raises :class:`~.parity.ParityError`.
    """
    run_dir = Path(run_dir)
    slot = _run_export_slot(run_dir)
    name = plugin or slot.get("type") or "onnx"
    merged = dict(slot.get("params") or {}) if name == slot.get("type", name) else {}
    params.update(attention=attention, triton=triton)
    merged.update({k: v for k, v in params.items() if v is not None})
    exp = get_exporter(name, merged, registry)
    return exp.export_run(run_dir, out, checkpoint=checkpoint)


def export_models(
    generator: Any,
    text_encoder: Any,
    vocab: Any,
    out: str | Path,
    max_words: int,
    source: dict[str, Any] | None = None,
    attention: bool = False,
    **params: Any,
) -> Any:
    """Export modules that were not trained by a run (e.g. built from recipe slots);
    ``attention`` adds the word-attention outputs, ``params`` are the ``onnx`` exporter's."""
    from .exporter import OnnxExporter
    from .params import OnnxExportParams

    try:
        p = OnnxExportParams(attention=attention, **params)
    except Exception as exc:  # pydantic ValidationError -> one line
        raise T2IError(f"exporter 'onnx': {exc}".splitlines()[0]) from None
    return OnnxExporter(p).export_models(generator, text_encoder, vocab, out, max_words, source)


@dataclass
class GenerateResult:
    """What ``generate`` made: the grid file and every stage's images (numpy, [-1, 1])."""

    path: Path
    images: list[np.ndarray]
    backend: str
    providers: dict[str, list[str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # captions not read as written


def _generate_torch(
    run_dir: str | Path,
    captions: list[str],
    seed: int,
    provider: str,
    allow_cpu_fallback: bool,
    precision: str = "auto",
) -> tuple[list[np.ndarray], dict[str, list[str]], list[str]]:
    import torch

    from t2i_stages.api import load_run
    from t2i_stages.hardware import autocast, resolve_precision

    if provider == "tensorrt":
        raise ProviderError(
            "tensorrt is an ONNX Runtime provider; the PyTorch backend (--model) runs on cuda "
            "or cpu (export the run and use --onnx for TensorRT)"
        )
    device = "cpu"
    if provider == AUTO:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    elif provider == "cuda":
        if torch.cuda.is_available():
            device = "cuda"
        else:
            why = "provider 'cuda' was requested but torch sees no CUDA device"
            if not allow_cpu_fallback:
                raise ProviderError(why + "; pass --provider cpu, or allow the fallback")
            warnings.warn(why + "; continuing on the CPU as allowed", RuntimeWarning, stacklevel=3)
    run = load_run(run_dir, device)
    notes = _vocab_warnings(run.vocab, list(dict.fromkeys(captions)), run.max_words)
    g = run.generator
    z, eps = draw_noise(len(captions), int(g.z_dim), int(getattr(g, "eps_dim", 0)), seed)
    choice = resolve_precision(precision, device, what="--precision")
    if choice.warning:
        notes.append(choice.warning)
    with autocast(choice.chosen, device):
        out = run.generate(
            captions,
            seed,
            z=torch.from_numpy(z),
            eps=torch.from_numpy(eps) if eps is not None else None,
        )
    images = [im.detach().float().cpu().numpy() for im in out.images]
    return images, {"torch": [f"{device} ({choice.chosen})"]}, notes


def _vocab_warnings(vocab: Any, captions: list[str], max_words: int) -> list[str]:
    """Out-of-vocabulary and truncated words for a run's tokenizer (word-level; a subword
    tokenizer knows every word, so only the word count is checked)."""
    stoi = getattr(vocab, "stoi", None)
    if isinstance(stoi, dict):
        unk = getattr(vocab, "unk_index", None) is not None
        return caption_warnings(captions, max_words, stoi.__contains__, unknown_kept=unk)
    return caption_warnings(captions, max_words)


def generate(
    texts: Sequence[str],
    out: str | Path,
    model: str | Path | None = None,
    onnx: str | Path | None = None,
    n: int = 8,
    seed: int = 0,
    provider: str = AUTO,
    allow_cpu_fallback: bool = False,
    stage: int = -1,
    threads: int | None = None,
    precision: str = "auto",
) -> GenerateResult:
    """``n`` images per caption from a run (PyTorch) or a deployment (ONNX Runtime), as a grid.

    Both backends draw the same noise for a seed, so they give the same images up to the
    export's parity tolerance. One row of the grid per caption, with the caption above it.
    ``provider`` auto runs on CUDA where it can, else on the CPU. ``precision``: for ONNX the
    graphs (auto = fp32, or fp16 from an export made with --fp16); for PyTorch the autocast
    (auto = bf16 only where the device runs it natively). Captions with words the model does
    not know, or more words than it reads, are warned about (``warnings`` and ``.warnings``).
    """
    if (model is None) == (onnx is None):
        raise T2IError("give exactly one of --model RUN_DIR and --onnx DIR")
    if provider not in PROVIDER_CHOICES:
        raise ProviderError(
            f"unknown provider '{provider}'; choose one of {', '.join(PROVIDER_CHOICES)}"
        )
    texts = [t for t in texts if t is not None]
    if not texts:
        raise T2IError("no caption given (--text)")
    if n < 1:
        raise T2IError("--n must be at least 1")
    captions = [t for t in texts for _ in range(n)]
    if onnx is not None:
        if precision not in ("auto", "fp32", "fp16"):
            raise T2IError(f"--precision {precision}: ONNX deployments have fp32 or fp16 graphs")
        graphs = "fp32" if precision == "auto" else precision
        dep = load_deployment(onnx, provider, allow_cpu_fallback, threads, graphs)
        notes = dep.caption_warnings(texts)
        images = dep.generate(captions, seed=seed)
        backend, providers = "onnxruntime", dep.providers
    else:
        if precision not in ("auto", "fp32", "bf16"):
            raise T2IError(
                f"--precision {precision}: the PyTorch backend runs auto, fp32 or bf16 (fp16 "
                "is for --onnx deployments exported with --fp16)"
            )
        images, providers, notes = _generate_torch(
            model, captions, seed, provider, allow_cpu_fallback, precision
        )
        backend = "torch"
    for line in notes:
        warnings.warn(line, UserWarning, stacklevel=2)
    if not -len(images) <= stage < len(images):
        raise T2IError(f"--stage {stage}: the generator has {len(images)} stages")
    path = save_grid(images[stage], out, ncol=n, captions=texts)
    return GenerateResult(path, images, backend, providers, notes)
