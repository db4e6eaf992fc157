"""What ``model.json`` says: the interface (inputs, outputs, value ranges), the tokenizer and
noise rules, provenance (recipe hash, versions, plugins) and the parity results.

The keys a default export writes are fixed: options add keys (``attention`` with
``--attention``, ``fp16_note`` with ``--fp16``, ``triton`` with ``--triton``) and never change
the others, so a consumer of an older deployment reads a new one the same way.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from t2i_stages.environment import package_versions as installed_versions

from . import runtime as rt
from .attention import AttentionMap, describe_outputs, manifest_entries
from .graphs import graph_spec

_PACKAGES = ("t2i-stages", "torch", "onnx", "onnxscript", "onnxruntime-gpu", "onnxruntime", "numpy")


def package_versions() -> dict[str, str]:
    """Versions of the packages an export depends on (absent ones are left out)."""
    return installed_versions(_PACKAGES)


def sha256_json(data: Any) -> str:
    """Hash of a JSON-able object in canonical form (sorted keys, no spaces)."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def io_entry(name: str, dims: list[Any], dtype: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "dtype": dtype, "shape": dims, **extra}


def describe_inputs(
    role: str, has_eps: bool, vocab_size: int, text_dim: int, z_dim: int, eps_dim: int
) -> list[dict[str, Any]]:
    spec = graph_spec(role, has_eps, 0)
    table = {
        "token_ids": io_entry(
            "token_ids",
            ["batch", "T"],
            "int64",
            range=[0, vocab_size - 1],
            description="word ids from vocab.json (0 = padding, 1 = <unk>), zero-padded",
        ),
        "token_mask": io_entry(
            "token_mask",
            ["batch", "T"],
            "bool",
            description="True = real word, False = padding; a fully padded row is allowed",
        ),
        "z": io_entry("z", ["batch", z_dim], "float32", distribution="standard normal"),
        "eps": io_entry(
            "eps",
            ["batch", eps_dim],
            "float32",
            distribution="standard normal",
            description="conditioning-augmentation epsilon (c = mu + exp(logvar/2) * eps)",
        ),
        "words": io_entry("words", ["batch", text_dim, "T"], "float32"),
        "sentence": io_entry("sentence", ["batch", text_dim], "float32"),
    }
    return [table[n] for n in spec.inputs]


def describe_images(resolutions: list[int]) -> list[dict[str, Any]]:
    return [
        io_entry(
            f"image_{i}",
            ["batch", 3, r, r],
            "float32",
            range=[-1.0, 1.0],
            resolution=r,
            stage=i,
            description="RGB image of stage i (channels first); (x + 1) * 127.5 gives 0..255",
        )
        for i, r in enumerate(resolutions)
    ]


def build_manifest(
    params: Any,
    graphs: dict[str, dict[str, dict[str, Any]]],
    *,
    z_dim: int,
    eps_dim: int,
    text_dim: int,
    resolutions: list[int],
    vocab_size: int,
    max_words: int,
    source: dict[str, Any],
    plugins: dict[str, dict[str, str]] | None,
    parity: dict[str, Any],
    attention: list[AttentionMap],
) -> dict[str, Any]:
    """``model.json`` without its ``files`` (and ``triton``) entries; ``params`` are the
    exporter's :class:`~.params.OnnxExportParams`."""
    p = params
    first = next(iter(graphs["fp32"].values()))
    contract = "(token_ids, token_mask, z, eps) -> image_0..image_{S-1} in [-1, 1]"
    if attention:
        contract += ", then attention_s (B, T, h, w) for s in " + str([m.stage for m in attention])
    manifest: dict[str, Any] = {
        "format": rt.FORMAT,
        "format_version": rt.FORMAT_VERSION,
        "contract": contract,
        "layout": "fused" if p.fused else "separate",
        "exporter": p.exporter,
        "graph_rewrites": ["upsample_conv_to_conv_transpose"] if p.optimize else [],
        "opset": first["opset"],
        "precisions": list(graphs),
        "z_dim": z_dim,
        "eps_dim": eps_dim,
        "text_dim": text_dim,
        "resolutions": resolutions,
        "inputs": describe_inputs("fused", eps_dim > 0, vocab_size, text_dim, z_dim, eps_dim),
        "outputs": describe_images(resolutions) + describe_outputs(attention),
        "graphs": graphs,
        "tokenizer": {
            "type": "word_vocab",
            "file": "vocab.json",
            "max_words": int(max_words),
            "vocab_size": vocab_size,
            "rules": "lower-case, non-ASCII dropped, \\w+ words, unknown -> <unk>, "
            "truncated to max_words, zero-padded",
        },
        "noise": "z and eps ~ N(0, 1) drawn outside the graph; numpy default_rng(seed) "
        "draws z (B, z_dim) then eps (B, eps_dim) in the runtime",
        "source": {"recipe_sha256": None, **source},  # None: not exported from a run
        "versions": package_versions(),
        "plugins": plugins or {},  # the plugin (package, version) of each component
        "parity": parity,
    }
    if p.attention:  # only with --attention: the default model.json stays as it was
        manifest["attention"] = manifest_entries(attention)
    if p.fp16:
        manifest["fp16_note"] = (
            "fp16 graphs run the generator in half precision; the text encoder, inputs and "
            "outputs stay fp32"
        )
    return manifest
