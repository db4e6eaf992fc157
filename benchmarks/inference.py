"""Inference benchmark: PyTorch eager against ONNX Runtime for a recipe's generator.

    python benchmarks/inference.py [--recipe recipes/grgan.yaml] [--threads 1] [--batches 1 16]
                                   [--device cpu|cuda] [--write-docs]

The models are built from the recipe's generator and text-encoder (or matcher) slots with random
weights (speed does not depend on training), exported with the built-in ``onnx`` exporter (parity
checked), and timed on the deployment contract: token ids -> text encoder -> generator -> every
stage's images. PyTorch and ONNX Runtime alternate within one process (warm-up first), with the
same thread count, and the medians are compared, so machine load affects both alike.
On CUDA it also times the fp16 graphs (ONNX Runtime, IO binding) and torch autocast fp16.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
from bench_common import cpu_model  # noqa: E402

DOCS = REPO / "docs" / "benchmarks.md"
HEADING = "## Inference (issue 8)"


def build_models(
    recipe_path: Path, vocab_size: int = 64, text_from: Path | None = None
) -> tuple[Any, Any, Any, int, str]:
    """Generator, text encoder, vocabulary and max_words from a recipe's slots (random init).

    ``text_from`` takes the text side from another recipe instead (its ``text_dim`` set to the
    generator's): a pretrained CLIP text tower re-tokenizes inside its forward pass and cannot
    be exported, so the 256-px paper generator is timed behind a word-level encoder.
    """
    from t2i_stages.build import assemble
    from t2i_stages.recipe import read_recipe, validate_recipe
    from t2i_stages.registry import load_registry
    from t2i_stages.text import WordVocab

    rs = read_recipe(recipe_path, [])  # with `extends:` resolved
    data = rs.data
    reg = load_registry()
    words = [f"w{i}" for i in range(vocab_size - 2)]
    vocab = WordVocab(["<end>", "<unk>", *words])
    max_words = int(data.get("data", {}).get("dataset", {}).get("params", {}).get("max_words", 18))
    if text_from is not None:
        text_dim = data["generator"]["params"]["text_dim"]
        other = read_recipe(text_from, []).data
        data = {**data, "text_encoder": other.get("text_encoder"), "matcher": other.get("matcher")}
        for key in ("text_encoder", "matcher"):
            if data[key]:
                data[key] = {**data[key], "params": {**data[key]["params"], "text_dim": text_dim}}
        rs.data = data
    recipe = validate_recipe(rs, reg)
    # the text side as a run builds it (the matcher's when there is no text encoder), with a
    # stand-in vocabulary instead of a dataset's; nothing rendered, nothing pretrained
    parts = ["generator", "text_encoder"] + ([] if recipe.text_encoder else ["matcher"])
    a = assemble(recipe, reg, parts=parts, vocab=vocab)
    return a.generator.eval(), a.text_encoder.eval(), vocab, max_words, recipe.name


def _inputs(batch: int, max_words: int, vocab_size: int, z_dim: int, eps_dim: int, seed: int):
    import numpy as np

    rng = np.random.default_rng(seed)
    lengths = rng.integers(max(1, max_words // 2), max_words + 1, size=batch)
    mask = np.arange(max_words)[None, :] < lengths[:, None]
    ids = rng.integers(2, vocab_size, size=(batch, max_words)) * mask
    z = rng.standard_normal((batch, z_dim), dtype=np.float32)
    eps = rng.standard_normal((batch, eps_dim), dtype=np.float32) if eps_dim else None
    return ids.astype(np.int64), mask, z, eps


def measure(
    gen: Any,
    enc: Any,
    dep: Any,
    batch: int,
    max_words: int,
    vocab_size: int,
    reps: int,
    warmup: int,
    device: str = "cpu",
    torch_fp16: bool = False,
    torch_bf16: bool = False,
) -> dict[str, float]:
    """Median seconds per batch of eager PyTorch and ONNX Runtime, interleaved.

    ``torch_fp16`` / ``torch_bf16``: the eager side under that autocast (ORT keeps its graph)."""
    import torch

    eps_dim = int(getattr(gen, "eps_dim", 0))
    ids, mask, z, eps = _inputs(batch, max_words, vocab_size, gen.z_dim, eps_dim, batch)
    dev = torch.device(device)
    t_ids, t_mask = torch.from_numpy(ids).to(dev), torch.from_numpy(mask).to(dev)
    t_z = torch.from_numpy(z).to(dev)
    t_eps = torch.from_numpy(eps).to(dev) if eps is not None else None

    def eager() -> None:
        dtype = torch.bfloat16 if torch_bf16 else torch.float16
        with (
            torch.inference_mode(),
            torch.autocast(dev.type, dtype, enabled=torch_fp16 or torch_bf16),
        ):
            text = enc.encode_text(t_ids, t_mask)
            out = gen(t_z, t_eps, text)
            out.images[-1].float().cpu()
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def onnx() -> None:
        dep.run(ids, mask, z, eps)

    for _ in range(warmup):
        eager()
        onnx()
    te, to = [], []
    for r in range(reps):
        order = (eager, onnx) if r % 2 == 0 else (onnx, eager)
        for fn in order:
            t0 = time.perf_counter()
            fn()
            (te if fn is eager else to).append(time.perf_counter() - t0)
    me, mo = statistics.median(te), statistics.median(to)
    return {
        "batch": batch,
        "eager_ms": me * 1e3,
        "onnx_ms": mo * 1e3,
        "eager_img_per_s": batch / me,
        "onnx_img_per_s": batch / mo,
        "speedup": me / mo,
        "reps": reps,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from t2i_stages.export.api import export_models
    from t2i_stages.export.runtime import load_deployment

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    gen, enc, vocab, max_words, name = build_models(args.recipe, text_from=args.text_from)
    params = sum(p.numel() for p in gen.parameters())
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        res = export_models(
            gen,
            enc,
            vocab,
            Path(tmp) / "deploy",
            max_words,
            fp16=args.device == "cuda",
            optimize=not args.no_rewrites,
        )
        export_s = time.perf_counter() - t0
        parity = res.manifest["parity"]["fp32"]
        rows = []
        provider = "cuda" if args.device == "cuda" else "cpu"
        dep = load_deployment(res.folder, provider, threads=args.threads)
        if args.device == "cuda":
            gen.cuda(), enc.cuda()
        for b in args.batches:
            row = measure(
                gen, enc, dep, b, max_words, len(vocab), args.reps, args.warmup, args.device
            )
            row["precision"] = "fp32"
            rows.append(row)
        if args.device == "cpu" and args.eager_bf16:
            for b in args.batches:
                row = measure(
                    gen, enc, dep, b, max_words, len(vocab), args.reps, args.warmup, "cpu",
                    torch_bf16=True,
                )  # fmt: skip
                row["precision"] = "bf16 eager / fp32 ORT"
                rows.append(row)
        if args.device == "cuda":
            dep16 = load_deployment(res.folder, provider, threads=args.threads, precision="fp16")
            for b in args.batches:
                row = measure(
                    gen,
                    enc,
                    dep16,
                    b,
                    max_words,
                    len(vocab),
                    args.reps,
                    args.warmup,
                    args.device,
                    torch_fp16=True,
                )
                row["precision"] = "fp16"
                rows.append(row)
        providers = sorted({p[0] for p in dep.providers.values()})
    device = torch.cuda.get_device_name(0) if args.device == "cuda" else f"CPU: {cpu_model()}"
    if args.device == "cpu":
        device += f" (ATen {torch.backends.cpu.get_cpu_capability()})"
    return {
        "recipe": str(
            args.recipe.relative_to(REPO) if args.recipe.is_relative_to(REPO) else args.recipe
        ),
        "name": name,
        "text_from": str(args.text_from) if args.text_from else None,
        "generator_params": params,
        "resolutions": list(gen.resolutions),
        "max_words": max_words,
        "device": device,
        "threads": args.threads,
        "providers": providers,
        "export_s": export_s,
        "graph_rewrites": res.manifest["graph_rewrites"],
        "parity_max_abs_diff": parity["max_abs_diff"],
        "rows": rows,
        "versions": res.manifest["versions"],
    }


def to_markdown(result: dict[str, Any], note: str = "") -> str:
    lines = [
        f"Recipe `{result['recipe']}` ({result['name']}): generator "
        f"{result['generator_params']:,} parameters, stages {result['resolutions']} px, "
        f"captions padded to {result['max_words']} words; random weights (speed does not "
        f"depend on training). Device: {result['device']}, {result['threads']} thread(s) for "
        f"both PyTorch and ONNX Runtime ({', '.join(result['providers'])}). Versions: "
        + ", ".join(f"{k} {v}" for k, v in result["versions"].items())
        + ".",
        "",
        "| precision | batch | PyTorch eager ms | ONNX Runtime ms | eager img/s | ORT img/s | "
        "ORT speed-up |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['precision']} | {r['batch']} | {r['eager_ms']:.1f} | {r['onnx_ms']:.1f} | "
            f"{r['eager_img_per_s']:.1f} | {r['onnx_img_per_s']:.1f} | {r['speedup']:.2f}x |"
        )
    lines += [
        "",
        f"Medians of {result['rows'][0]['reps']} interleaved runs per batch size after warm-up, "
        "one process; each run is token ids -> text encoder -> generator -> all stage images. "
        f"Export (dynamo, graph rewrites: {', '.join(result['graph_rewrites']) or 'none'}; "
        f"with the parity check) took {result['export_s']:.0f} s; parity max "
        f"|diff| {result['parity_max_abs_diff']:.1e}.",
    ]
    if note:
        lines += ["", note]
    return "\n".join(lines)


def write_docs(sections: list[str]) -> None:
    """Replace (or append) the '## Inference (issue 8)' section of docs/benchmarks.md."""
    body = "\n\n".join([HEADING, *sections]) + "\n"
    text = DOCS.read_text(encoding="utf-8") if DOCS.is_file() else "# Benchmarks\n"
    start = text.find(HEADING)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + body
    else:
        nxt = text.find("\n## ", start + len(HEADING))
        text = text[:start] + body + (text[nxt + 1 :] if nxt >= 0 else "")
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    DOCS.write_text(text, encoding="utf-8")


GPU_NOTE = (
    "GPU (CUDA fp32 and fp16, ONNX Runtime with IO binding against PyTorch eager/autocast): "
    "not measured: no GPU. Run `python benchmarks/inference.py --device cuda --write-docs` on a "
    "CUDA machine to add those rows."
)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipe", type=Path, default=REPO / "recipes" / "grgan.yaml")
    p.add_argument("--threads", type=int, default=1, help="threads for both (default 1)")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    p.add_argument("--reps", type=int, default=25, help="interleaved runs per batch size")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument(
        "--text-from", type=Path, default=None, help="take the text encoder from this recipe"
    )
    p.add_argument("--json", type=Path, default=None, help="also write the result as JSON")
    p.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md")
    p.add_argument("--no-rewrites", action="store_true", help="export without the graph rewrites")
    p.add_argument("--note", action="append", default=[], help="a paragraph for the docs")
    p.add_argument(
        "--eager-bf16", action="store_true", help="CPU: also time PyTorch eager under bf16 autocast"
    )
    p.add_argument(
        "--cpu-kinds",
        nargs="+",
        default=None,
        choices=("native", "avx2"),
        help="measure once per CPU kind, one after the other (avx2: ATEN_CPU_CAPABILITY=avx2 "
        "ONEDNN_MAX_CPU_ISA=AVX2 stand in for an AVX2-only CPU); prints one table per kind",
    )
    args = p.parse_args(argv)
    if args.cpu_kinds:
        return _per_kind(args, list(argv if argv is not None else sys.argv[1:]))
    args.recipe = args.recipe.resolve()
    if not args.recipe.is_file():
        print(f"error: {args.recipe}: no such recipe", file=sys.stderr)
        return 2
    result = run(args)
    md = to_markdown(result)
    print(md)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")
    if args.write_docs:
        sections = [md, *args.note]
        if args.device == "cpu":
            sections.append(GPU_NOTE)
        sections.append(
            "Reproduce: `python benchmarks/inference.py --recipe "
            f"{result['recipe']} --threads {args.threads} --write-docs`."
        )
        write_docs(sections)
    return 0


KIND_ENV = {"native": {}, "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}}


def _per_kind(args: argparse.Namespace, argv: list[str]) -> int:
    """Rerun this script once per CPU kind (in a child with that kind's variables)."""
    import os
    import subprocess

    drop = {"--cpu-kinds", "--write-docs", "--json"}
    base, skip = [], False
    for a in argv:
        if skip and not a.startswith("--"):
            continue
        skip = a in drop
        if not skip:
            base.append(a)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.cpu_kinds:
            out = Path(tmp) / f"{kind}.json"
            env = dict(os.environ, **KIND_ENV[kind])
            subprocess.run(
                [sys.executable, __file__, *base, "--json", str(out)], env=env, check=True
            )
            result = json.loads(out.read_text())
            result["cpu_kind"] = kind
            results.append(result)
    sections = [
        f"**CPU kind: {'AVX2 (emulated)' if r['cpu_kind'] == 'avx2' else 'native'}.** "
        + to_markdown(r)
        for r in results
    ]
    print("\n\n".join(sections))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    if args.write_docs:  # its own block: the section's other (GPU) rows stay as they are
        from bench_common import write_docs_section

        body = "\n\n".join(
            [
                "### CPU kinds: native against AVX2-only (issue 17)",
                *sections,
                *args.note,
                "Reproduce: `python benchmarks/inference.py " + " ".join(argv) + "`.",
            ]
        )
        write_docs_section(DOCS, "inference_cpu_kinds", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
