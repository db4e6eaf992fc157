"""The ``onnx`` exporter: a run folder (or a generator and text encoder) -> a deployment folder.

The deployment folder::

    model.json            interface, value ranges, recipe hash, versions, parity results
    vocab.json            the word vocabulary (the tokenizer of the ONNX path)
    text_encoder.onnx     (token_ids, token_mask) -> words, sentence          [separate layout]
    generator.onnx        (z, [eps], words, sentence, token_mask) -> image_*  [separate layout]
    model.onnx            (token_ids, token_mask, z, [eps]) -> image_*        [fused layout]
    *.fp16.onnx           the same with an fp16 generator (with --fp16)
    t2i_onnx_runtime.py   the torch-free runtime (onnxruntime, numpy, PIL)
    triton/<name>/        a Triton model repository entry (with --triton, see .triton)

With ``--attention`` the generator (and fused) graphs also output ``attention_s``, each
refinement stage's word-attention map (see .attention), parity-checked like the images.

It is written to a temporary folder and renamed into place only when parity holds; when it does
not, the export fails with the measured difference and the artefacts are kept in
``<out>.failed/`` for inspection.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from t2i_stages.errors import T2IError
from t2i_stages.hashing import sha256_file
from t2i_stages.recipe.validate import plugin_versions

from . import runtime as rt
from . import triton
from .attention import AttentionMap, find_attention
from .graphs import (
    ExportError,
    TextEncoderGraph,
    attention_name,
    export_module,
    fuse_models,
    generator_graph,
    graph_spec,
    half_copy,
    opset_of,
)
from .manifest import build_manifest, package_versions, sha256_json
from .params import OnnxExportParams
from .parity import ParityError, ParityReport, run_parity

__all__ = ["ExportResult", "OnnxExporter", "build_onnx_exporter", "package_versions", "sha256_json"]


def _refuse_token_levels(generator: nn.Module) -> None:
    """The generator graph takes words, sentence and mask: a module that reads the token ids
    themselves (``reads_token_ids = True``, as the ``token_words`` level) cannot be fed, so say
    so before tracing."""
    for name, module in generator.named_modules():
        if getattr(module, "reads_token_ids", False):
            raise ExportError(
                f"generator module '{name}' ({type(module).__name__}) reads the token ids, "
                "which the ONNX generator graph does not take (words, sentence, token_mask); "
                "such a run cannot be exported yet"
            )


@dataclass
class ExportResult:
    """Where the deployment went and what ``model.json`` says about it."""

    folder: Path
    manifest: dict[str, Any]

    @property
    def parity(self) -> dict[str, Any]:
        return self.manifest.get("parity", {})

    @property
    def files(self) -> list[str]:
        return sorted(self.manifest.get("files", {}))


def _word_vocab(vocab: Any) -> Any:
    if not (hasattr(vocab, "itos") and hasattr(vocab, "save")):
        raise ExportError(
            f"only word vocabularies (vocab.json) are exportable for now, not {type(vocab).__name__}"
        )
    return vocab


def _place(tmp: Path, out: Path) -> None:
    """Move the finished ``tmp`` folder to ``out``, replacing an older deployment only."""
    if out.exists():
        is_deployment = (out / rt.MODEL_JSON).is_file()
        if not is_deployment and any(out.iterdir()):
            raise T2IError(f"{out}: exists and is not a deployment folder; choose another --out")
        shutil.rmtree(out)
    os.replace(tmp, out)


class OnnxExporter:
    """Export with the parameters of an ``onnx`` exporter slot (see :class:`OnnxExportParams`)."""

    name = "onnx"

    def __init__(self, params: OnnxExportParams | None = None, registry: Any = None):
        self.params = params or OnnxExportParams()
        self.registry = registry

    # -- run folders ----------------------------------------------------------------------
    def export_run(
        self,
        run_dir: str | Path,
        out: str | Path | None = None,
        checkpoint: str | Path | None = None,
    ) -> ExportResult:
        """Export a trained run's EMA generator (eval mode) and its text encoder."""
        from t2i_stages.api import load_run

        run_dir = Path(run_dir)
        run = load_run(run_dir, "cpu", self.registry, checkpoint, ema=True)
        recipe_file = run_dir / "recipe.resolved.yaml"
        ckpt_dir = (
            Path(checkpoint) if checkpoint else run_dir / "checkpoints" / f"step_{run.step:08d}"
        )
        weights = (
            "generator_ema" if (ckpt_dir / "generator_ema.safetensors").is_file() else "generator"
        )
        source = {
            "run": str(run_dir.resolve()),
            "recipe_name": run.recipe.name,
            "recipe_file": "recipe.resolved.yaml",
            "recipe_sha256": sha256_file(recipe_file),
            "checkpoint": str(ckpt_dir.resolve()),
            "step": run.step,
            "weights": weights,
        }
        out = Path(out) if out is not None else run_dir / "onnx"
        return self.export_models(
            run.generator,
            run.text_encoder,
            run.vocab,
            out,
            max_words=run.max_words,
            source=source,
            recipe_file=recipe_file,
            plugins=plugin_versions(run.recipe, run.registry),
            generator_type=run.recipe.generator.type,
        )

    # -- modules --------------------------------------------------------------------------
    def export_models(
        self,
        generator: nn.Module,
        text_encoder: nn.Module,
        vocab: Any,
        out: str | Path,
        max_words: int,
        source: dict[str, Any] | None = None,
        recipe_file: str | Path | None = None,
        plugins: dict[str, dict[str, str]] | None = None,
        generator_type: str | None = None,
    ) -> ExportResult:
        """Export ``generator`` and ``text_encoder`` (put in eval mode) into ``out``.

        ``source`` goes into ``model.json`` (recipe hash, checkpoint); ``recipe_file`` is
        copied next to it when given; ``plugins`` (the plugin, package and version of each
        component, as ``recipe.validate.plugin_versions`` gives them) is recorded as it is;
        ``generator_type`` (the recipe's generator plugin) names the model in error messages.
        """
        vocab = _word_vocab(vocab)
        if max_words < 1:
            raise ExportError("max_words must be at least 1")
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        modes = (generator.training, getattr(text_encoder, "training", False))
        generator.eval()
        if isinstance(text_encoder, nn.Module):
            text_encoder.eval()
        try:
            manifest, failed = self._export_into(
                tmp,
                generator,
                text_encoder,
                vocab,
                max_words,
                source or {},
                recipe_file,
                plugins,
                generator_type,
            )
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        finally:
            generator.train(modes[0])
            if isinstance(text_encoder, nn.Module):
                text_encoder.train(modes[1])
        if failed is not None:
            dest = out.parent / f"{out.name}.failed"
            if dest.exists():
                shutil.rmtree(dest)
            os.replace(tmp, dest)
            raise ParityError(f"{failed.failure_line()}; the artefacts are kept in {dest}")
        _place(tmp, out)
        return ExportResult(out, manifest)

    def _export_into(
        self,
        folder: Path,
        generator: nn.Module,
        encoder: Any,
        vocab: Any,
        max_words: int,
        source: dict[str, Any],
        recipe_file: str | Path | None,
        plugins: dict[str, dict[str, str]] | None = None,
        generator_type: str | None = None,
    ) -> tuple[dict[str, Any], ParityReport | None]:
        p = self.params
        _refuse_token_levels(generator)
        z_dim = int(generator.z_dim)
        eps_dim = int(getattr(generator, "eps_dim", 0) or 0)
        has_eps = eps_dim > 0
        resolutions = [int(r) for r in generator.resolutions]
        text_dim = int(getattr(generator, "text_dim", 0) or getattr(encoder, "text_dim", 0))
        vocab_size = len(vocab)
        n = len(resolutions)

        # example inputs: batch 2 and T >= 3 so that neither dim gets specialised
        t_ex = max(3, min(max_words, 7))
        feeds, _ = _example(2, t_ex, vocab_size, z_dim, eps_dim)
        with torch.no_grad():
            text = encoder.encode_text(feeds["token_ids"], feeds["token_mask"])
        dim = int(text.words.shape[1])
        if text_dim and dim != text_dim:
            raise ExportError(
                f"the text encoder gives {dim}-d features but the generator takes {text_dim}"
            )
        text_dim = dim
        attention: list[AttentionMap] = []
        if p.attention:
            attention = find_attention(
                generator, feeds["z"], feeds.get("eps"), text, generator_type
            )
        stages = [m.stage for m in attention]
        sizes = {m.stage: (m.height, m.width) for m in attention}

        graphs: dict[str, dict[str, dict[str, Any]]] = {}
        precisions = ["fp32", "fp16"] if p.fp16 else ["fp32"]
        enc_spec = graph_spec("text_encoder", has_eps, n)
        enc_path = self._export(
            TextEncoderGraph(encoder).eval(),
            [feeds["token_ids"], feeds["token_mask"]],
            enc_spec,
            folder / "text_encoder.onnx",
        )
        gen_spec = graph_spec("generator", has_eps, n, stages, sizes)
        gfeeds = {**feeds, "words": text.words, "sentence": text.sentence}
        for precision in precisions:
            dtype = torch.float16 if precision == "fp16" else torch.float32
            suffix = ".fp16" if precision == "fp16" else ""
            gen = half_copy(generator) if precision == "fp16" else generator
            gen_path = self._export(
                generator_graph(gen, dtype, stages),
                [gfeeds[k] for k in gen_spec.inputs],
                gen_spec,
                folder / f"generator{suffix}.onnx",
            )
            if p.fused:
                fused_path = folder / f"model{suffix}.onnx"
                onnx.save_model(fuse_models(onnx.load(enc_path), onnx.load(gen_path)), fused_path)
                gen_path.unlink()
                fused_spec = graph_spec("fused", has_eps, n, stages, sizes)
                graphs[precision] = {"fused": _entry(fused_path, fused_spec)}
            else:
                graphs[precision] = {
                    "text_encoder": _entry(enc_path, enc_spec),
                    "generator": _entry(gen_path, gen_spec),
                }
        if p.fused:
            enc_path.unlink()

        vocab.save(folder / "vocab.json")
        if recipe_file is not None and Path(recipe_file).is_file():
            shutil.copyfile(recipe_file, folder / "recipe.resolved.yaml")
        if p.copy_runtime:
            shutil.copyfile(rt.__file__, folder / rt.STANDALONE_NAME)

        lengths = p.parity_lengths or sorted({max_words, max(1, max_words // 2)}, reverse=True)

        def check(runner: Callable, label: str, fused: bool) -> ParityReport:
            half = label.endswith("fp16")
            return run_parity(
                _reference(encoder, generator, n, fused, stages),
                runner,
                p.parity_batches,
                lengths,
                vocab_size,
                z_dim,
                eps_dim,
                p.fp16_rtol if half else p.rtol,
                p.fp16_atol if half else p.atol,
                precision=label,
            )

        parity: dict[str, Any] = {}
        reports: list[ParityReport] = []
        if p.parity:
            for precision in precisions:
                reports.append(check(_onnx_runner(folder, graphs[precision]), precision, p.fused))
        else:
            parity = {"checked": False, "reason": "disabled (--no-parity)"}
        triton_graph = None
        if p.triton:
            tname = triton.model_name(source, p.triton_model_name)
            triton_graph = triton.place_graph(folder, graphs[p.triton_precision], tname)
            if p.parity and not p.fused:  # a new join of the two graphs: check it too
                runner = _onnx_runner(triton_graph.parent, {"fused": {"file": triton_graph.name}})
                reports.append(check(runner, f"triton/{p.triton_precision}", True))
        for report in reports:
            parity[report.precision.replace("/", "_")] = report.to_dict()
        failed = next((r for r in reports if not r.passed), None)

        manifest = build_manifest(
            p,
            graphs,
            z_dim=z_dim,
            eps_dim=eps_dim,
            text_dim=text_dim,
            resolutions=resolutions,
            vocab_size=vocab_size,
            max_words=max_words,
            source=source,
            plugins=plugins,
            parity=parity,
            attention=attention,
        )
        if triton_graph is not None:
            manifest["triton"] = triton.write_config(folder, tname, manifest, p)
        manifest["files"] = {
            f.name: sha256_file(f) for f in sorted(folder.iterdir()) if f.is_file()
        }
        (folder / rt.MODEL_JSON).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        return manifest, failed

    def _export(self, module: nn.Module, example: list[torch.Tensor], spec, path: Path) -> Path:
        p = self.params
        return export_module(module, example, spec, path, p.opset, p.exporter, p.optimize)


def _entry(path: Path, spec: Any) -> dict[str, Any]:
    return {
        "file": path.name,
        "inputs": spec.inputs,
        "outputs": spec.outputs,
        "opset": opset_of(path),
    }


def _example(
    batch: int, length: int, vocab_size: int, z_dim: int, eps_dim: int
) -> tuple[dict[str, torch.Tensor], list[int]]:
    from .parity import make_inputs

    feeds, lengths = make_inputs(batch, length, vocab_size, z_dim, eps_dim, seed=1234)
    feeds["token_mask"][:, 0] = True  # no fully padded row in the example
    return {k: torch.from_numpy(v) for k, v in feeds.items()}, lengths


def _reference(
    encoder: Any,
    generator: nn.Module,
    n: int,
    fused: bool,
    attention_stages: list[int] | tuple[int, ...] = (),
) -> Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]:
    """PyTorch's answer for the deployment inputs: text features (separate layout), images and
    the attention maps of ``attention_stages``."""

    def run(feeds: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        text = encoder.encode_text(feeds["token_ids"], feeds["token_mask"])
        out = generator(feeds["z"], feeds.get("eps"), text)
        named = {} if fused else {"words": text.words, "sentence": text.sentence}
        named.update({f"image_{i}": im for i, im in enumerate(out.images)})
        named.update({attention_name(s): out.attention[s - 1] for s in attention_stages})
        return named

    return run


def _onnx_runner(
    folder: Path, entries: dict[str, dict[str, Any]]
) -> Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]:
    threads = max(1, torch.get_num_threads())
    sessions = {
        role: rt.create_session(folder / e["file"], "cpu", threads=threads)
        for role, e in entries.items()
    }

    def run(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if "fused" in sessions:
            s = sessions["fused"]
            res = s.run(None, {i.name: feeds[i.name] for i in s.get_inputs()})
            return {o.name: r for o, r in zip(s.get_outputs(), res, strict=True)}
        enc, gen = sessions["text_encoder"], sessions["generator"]
        words, sentence = enc.run(
            ["words", "sentence"],
            {"token_ids": feeds["token_ids"], "token_mask": feeds["token_mask"]},
        )
        g_feeds = {**feeds, "words": words, "sentence": sentence}
        res = gen.run(None, {i.name: g_feeds[i.name] for i in gen.get_inputs()})
        named = {"words": words, "sentence": sentence}
        named.update({o.name: r for o, r in zip(gen.get_outputs(), res, strict=True)})
        return named

    return run


def build_onnx_exporter(params: OnnxExportParams, registry: Any = None, **ctx: Any) -> OnnxExporter:
    """Factory of the ``onnx`` exporter plugin."""
    return OnnxExporter(params, registry)
