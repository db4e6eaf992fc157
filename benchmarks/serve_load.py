"""Load benchmark of ``t2i-stages serve``: requests per second and p50/p99 latency.

    python benchmarks/serve_load.py [--models demo coco] [--concurrency 1 8 32] [--requests 128]
                                    [--provider cpu|cuda] [--threads 2] [--write-docs]

Each model is built from its recipe's slots with random weights (speed does not depend on
training; ``benchmarks/inference.py``'s ``build_models``): ``demo`` is ``recipes/grgan.yaml``,
``coco`` the COCO-size GR-GAN generator of ``recipes/coco/grgan.yaml`` (256 px) behind the demo's
word-level text encoder (a pretrained CLIP text tower is not exported). Each is exported with the
``onnx`` exporter (parity checked) and served by a real ``t2i-stages serve`` subprocess, once with
batching (``--max-batch 32 --max-delay-ms 5``) and once without (``--max-batch 1``). Clients are
aiohttp clients on keep-alive connections; each concurrency level sends a fixed number of
requests (one caption, ``n`` 1, its own seed, JSON reply of the last stage) after a warm-up, and
the latency of every request is measured at the client. The baseline is a bare
``Deployment.generate`` call in this process on the same provider and thread count: the server's
p99 at concurrency 1 is compared with it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
from bench_common import (  # noqa: E402
    command_line,
    machine_info,
    machine_line,
    markdown_table,
    write_docs_section,
    write_json,
)

DOCS = REPO / "docs" / "deployment.md"
MODELS = {
    "demo": (REPO / "recipes" / "grgan.yaml", None),
    "coco": (REPO / "recipes" / "coco" / "grgan.yaml", REPO / "recipes" / "grgan.yaml"),
}
DESCRIPTIONS = {
    "demo": "`recipes/grgan.yaml`: 8/16/32 px",
    "coco": "the GR-GAN COCO generator of `recipes/coco/grgan.yaml`, 64/128/256 px, behind the "
    "demo's word-level text encoder",
}
MODES = {
    "batched": ["--max-batch", "32", "--max-delay-ms", "5"],
    "unbatched": ["--max-batch", "1"],
    # no wait for batch-mates: a call takes what queued while the previous one ran
    "greedy": ["--max-batch", "32", "--max-delay-ms", "0"],
    # not a default: every lone row run as two (`pair`, what older exports need on the CPU, see
    # docs/deployment.md "Micro-batching"), to show what that padding costs
    "paired": ["--max-batch", "1", "--padding", "pair"],
}
CAPTION = "w1 w2 w3 w4 w5 w6 w7 w8"  # words of the stand-in vocabulary (w0 .. w61)


# ------------------------------------------------------------------------------ the models


def export_model(name: str, out: Path, threads: int) -> Path:
    """The random-weight export of model ``name`` in ``out`` (reused when already there)."""
    if (out / "model.json").is_file():
        return out
    import torch
    from inference import build_models

    from t2i_stages.export.api import export_models

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    recipe, text_from = MODELS[name]
    gen, enc, vocab, max_words, _ = build_models(recipe, text_from=text_from)
    t0 = time.perf_counter()
    export_models(gen, enc, vocab, out, max_words)
    print(f"[{name}] exported in {time.perf_counter() - t0:.1f} s -> {out}", flush=True)
    return out


def bare_generate(
    folder: Path, provider: str, threads: int, reps: int, spinning: bool = True
) -> dict[str, float]:
    """Latency of ``Deployment.generate`` for one caption, in this process (the baseline)."""
    from t2i_stages.export.runtime import load_deployment

    dep = load_deployment(folder, provider, threads=threads, spinning=spinning)
    for seed in range(3):
        dep.generate([CAPTION], seed=seed)
    times = []
    for seed in range(reps):
        t0 = time.perf_counter()
        dep.generate([CAPTION], seed=seed)
        times.append(time.perf_counter() - t0)
    return {"p50_ms": percentile(times, 50) * 1e3, "p99_ms": percentile(times, 99) * 1e3}


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile, linear between order statistics (numpy's default)."""
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


# ------------------------------------------------------------------------------ the server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """``t2i-stages serve`` in a subprocess, until ``/readyz`` answers 200."""

    def __init__(self, folder: Path, provider: str, threads: int, flags: list[str]):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.cmd = [
            sys.executable,
            "-c",
            "import sys; from t2i_stages.cli.main import main; sys.exit(main())",
            "serve",
            str(folder),
            "--port",
            str(self.port),
            "--provider",
            provider,
            "--threads",
            str(threads),
            "--max-queue",
            "1024",
            "--log-level",
            "warning",
            *flags,
        ]

    def __enter__(self) -> ServerProcess:
        import httpx

        self.proc = subprocess.Popen(self.cmd)
        deadline = time.monotonic() + 300
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the server was not ready within 300 s")
            time.sleep(0.2)

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def load(url: str, concurrency: int, requests: int, warmup: int) -> dict[str, Any]:
    """``requests`` generate calls from ``concurrency`` clients; client-side latencies.

    The clients are aiohttp's, not httpx's: on two cores shared with the server, httpx's async
    client was the bottleneck (``/healthz`` at concurrency 32: 260 requests/s through httpx,
    3,750 through aiohttp), so it measured itself rather than the server.
    """
    import aiohttp

    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(url, connector=connector, timeout=timeout) as client:

        async def one(seed: int) -> tuple[float, list[int]]:
            body = {"captions": [CAPTION], "n": 1, "seed": seed, "format": "json"}
            t0 = time.perf_counter()
            async with client.post("/v1/generate", json=body) as r:
                payload = await r.read()
                status = r.status
            elapsed = time.perf_counter() - t0
            if status != 200:
                raise RuntimeError(f"HTTP {status}: {payload[:200]!r}")
            return elapsed, json.loads(payload)["batch"]["calls"]

        async def clients(count: int, first_seed: int) -> list[tuple[float, list[int]]]:
            todo = iter(range(first_seed, first_seed + count))
            out: list[tuple[float, list[int]]] = []

            async def worker() -> None:
                for seed in todo:
                    out.append(await one(seed))

            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return out

        await clients(warmup, 10**6)
        t0 = time.perf_counter()
        done = await clients(requests, 0)
        wall = time.perf_counter() - t0
    latencies = [d[0] for d in done]
    rows_per_call = [statistics.mean(d[1]) for d in done]
    return {
        "concurrency": concurrency,
        "requests": requests,
        "wall_s": wall,
        "rps": requests / wall,
        "p50_ms": percentile(latencies, 50) * 1e3,
        "p99_ms": percentile(latencies, 99) * 1e3,
        "rows_per_call": statistics.mean(rows_per_call),
    }


# ------------------------------------------------------------------------------ the report


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    info = machine_info()
    result: dict[str, Any] = {
        "machine": info,
        "provider": args.provider,
        "threads": args.threads,
        "spinning": bool(args.spinning),
        "models": {},
    }
    for name in args.models:
        folder = export_model(name, workdir / name, args.threads)
        spinning = bool(args.spinning)
        bare = bare_generate(folder, args.provider, args.threads, args.bare_reps, spinning)
        print(f"[{name}] bare Deployment.generate: {bare}", flush=True)
        rows = []
        for mode in args.modes:
            flags = MODES[mode] + (["--spinning"] if spinning else [])
            with ServerProcess(folder, args.provider, args.threads, flags) as server:
                for c in args.concurrency:
                    warm = args.warmup if args.warmup is not None else c
                    row = asyncio.run(load(server.url, c, args.requests, warm))
                    row["mode"] = mode
                    print(f"[{name}] {mode}: {row}", flush=True)
                    rows.append(row)
        result["models"][name] = {"description": DESCRIPTIONS[name], "bare": bare, "rows": rows}
    result["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    return result


def find(rows: list[dict[str, Any]], mode: str, concurrency: int) -> dict[str, Any] | None:
    return next((r for r in rows if r["mode"] == mode and r["concurrency"] == concurrency), None)


def to_markdown(name: str, result: dict[str, Any], argv: list[str]) -> str:
    """Model ``name``'s table, its findings against the goals, the machine and the command."""
    res = result["models"][name]
    rows, bare = res["rows"], res["bare"]
    header = ["batching", "concurrency", "requests", "req/s", "p50 ms", "p99 ms", "rows per call"]
    table = [
        [
            r["mode"],
            str(r["concurrency"]),
            str(r["requests"]),
            f"{r['rps']:.2f}",
            f"{r['p50_ms']:.1f}",
            f"{r['p99_ms']:.1f}",
            f"{r['rows_per_call']:.1f}",
        ]
        for r in rows
    ]
    findings = [
        f"Bare `Deployment.generate` (one caption, this process, same provider and threads): "
        f"p50 {bare['p50_ms']:.1f} ms, p99 {bare['p99_ms']:.1f} ms."
    ]
    top = max(r["concurrency"] for r in rows)
    off = find(rows, "unbatched", top)
    for mode in ("batched", "greedy"):
        on = find(rows, mode, top)
        if on and off:
            findings.append(
                f"{mode.capitalize()} at concurrency {top}: **{on['rps'] / off['rps']:.2f}x** the "
                "requests per second of unbatched serving (goal >= 3x)."
            )
    for mode in ("batched", "greedy", "unbatched"):
        one = find(rows, mode, 1)
        if one:
            findings.append(
                f"{mode.capitalize()} p99 at concurrency 1: **{one['p99_ms'] / bare['p99_ms']:.2f}x**"
                " the bare p99 (goal <= 1.5x)."
            )
    load_end = result.get("load_average_end")
    lines = [
        f"**{name}** ({res['description']}), provider **{result['provider']}**, "
        f"{result['threads']} ONNX Runtime thread(s) per server and for the bare call"
        + (" (`--spinning`: idle threads busy-wait)" if result.get("spinning") else "")
        + "; random weights; per request one caption, `n` 1, the JSON reply of the last stage.",
        "",
        markdown_table(header, table),
        "",
        *[f"- {f}" for f in findings],
        "",
        machine_line(result["machine"])
        + (f" Load average at the end {load_end[0]} (1 min)." if load_end else ""),
        "",
        f"Reproduce: `{command_line('serve_load.py', argv)}`.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", choices=sorted(MODELS), default=["demo", "coco"])
    p.add_argument(
        "--modes", nargs="+", choices=sorted(MODES), default=["batched", "greedy", "unbatched"]
    )
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--requests", type=int, default=128, help="timed requests per level")
    p.add_argument(
        "--warmup", type=int, default=None, help="untimed requests first (default: concurrency)"
    )
    p.add_argument("--bare-reps", type=int, default=50)
    p.add_argument("--provider", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument(
        "--spinning",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="ONNX Runtime's idle threads busy-wait in the servers and the bare call (off, the "
        "server's default; --spinning passes --spinning to every server)",
    )
    p.add_argument("--export-dir", type=Path, default=None, help="keep (and reuse) the exports")
    p.add_argument("--json", type=Path, default=None, help="also write the result as JSON")
    p.add_argument("--write-docs", action="store_true", help="update docs/deployment.md")
    args = p.parse_args(argv)
    argv = list(argv if argv is not None else sys.argv[1:])
    with tempfile.TemporaryDirectory() as tmp:
        result = run(args, args.export_dir or Path(tmp))
    if args.json:
        write_json(args.json, result)
    for name in args.models:
        md = to_markdown(name, result, argv)
        print(md + "\n")
        if args.write_docs:
            path = write_docs_section(DOCS, f"serve-load-{args.provider}-{name}", md)
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
