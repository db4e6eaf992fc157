"""`t2i-stages export RUN_DIR`: write a parity-checked ONNX deployment folder.

A thin layer over :func:`t2i_stages.export.api.export_run`; the exporter plugin and its params
come from the run's recipe (``export:`` slot, default ``onnx``), then from these flags.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a trained run's generator and text encoder to ONNX (parity-checked)",
        description="Export the EMA generator (eval mode) and the text encoder of a run folder "
        "as ONNX graphs with dynamic batch and caption-length axes, plus vocab.json, "
        "model.json (interface, value ranges, recipe hash, versions, parity) and a torch-free "
        "runtime script. ONNX Runtime is checked against PyTorch on several batch sizes and "
        "caption lengths; a parity failure fails the export (exit 2).",
    )
    p.add_argument("run_dir", type=Path, help="run folder written by `t2i-stages run`")
    p.add_argument("--out", type=Path, default=None, help="deployment folder (RUN_DIR/onnx)")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (exporter default)")
    p.add_argument("--fp16", action="store_true", default=None, help="also write fp16 graphs")
    p.add_argument(
        "--fused",
        action="store_true",
        default=None,
        help="one graph (token ids -> images) instead of text encoder + generator",
    )
    p.add_argument(
        "--exporter",
        choices=("dynamo", "torchscript"),
        default=None,
        help="torch.onnx path (default dynamo; torchscript = legacy, opset <= 17)",
    )
    p.add_argument(
        "--no-parity",
        dest="parity",
        action="store_false",
        default=None,
        help="skip the ONNX Runtime vs PyTorch check (recorded in model.json)",
    )
    p.add_argument(
        "--attention",
        action="store_true",
        default=None,
        help="also output each refinement stage's word-attention map (attention_s), "
        "parity-checked; a generator without word attention (DF-GAN) is an error",
    )
    p.add_argument(
        "--triton",
        action="store_true",
        default=None,
        help="also write a Triton model repository: OUT/triton/<name>/config.pbtxt and "
        "1/model.onnx (onnxruntime backend, dynamic batching)",
    )
    p.add_argument("--checkpoint", type=Path, default=None, help="a checkpoint folder to export")
    p.add_argument("--plugin", default=None, help="exporter plugin (default: recipe's, or onnx)")
    p.set_defaults(func=_export)


def _export(args: argparse.Namespace) -> int:
    from ..export.api import export_run

    res = export_run(
        args.run_dir,
        args.out,
        plugin=args.plugin,
        checkpoint=args.checkpoint,
        opset=args.opset,
        fp16=args.fp16,
        fused=args.fused,
        exporter=args.exporter,
        parity=args.parity,
        attention=args.attention,
        triton=args.triton,
    )
    manifest = getattr(res, "manifest", None)
    if manifest is None:
        print(res)
        return 0
    print(f"{res.folder}: {manifest['layout']} ONNX opset {manifest['opset']}")
    for name in res.files:
        print(f"  {name}")
    parity = manifest.get("parity", {})
    for precision, rep in parity.items():
        if isinstance(rep, dict) and "cases" in rep:
            cases = ", ".join(f"b{c['batch']}xT{c['length']}" for c in rep["cases"])
            print(
                f"parity {precision}: {'ok' if rep['passed'] else 'FAILED'}, max |diff| "
                f"{rep['max_abs_diff']:.2e} (rtol {rep['rtol']:g}, atol {rep['atol']:g}; {cases})"
            )
    for entry in manifest.get("attention", []):
        print(f"  {entry['output']}: stage {entry['stage']}, {entry['resolution']} px")
    if "triton" in manifest:
        tri = manifest["triton"]
        print(f"triton: {res.folder / tri['repository'] / tri['model']} (config.pbtxt, 1/)")
    if parity.get("checked") is False:
        print(f"parity: not checked ({parity.get('reason')})")
    return 0
