"""What a bug report needs to know about this machine (``t2i-stages env``).

In the spirit of ``python -m torch.utils.collect_env``: the CPU and the ISA flags that decide
bf16's speed, thread counts, torch / ONNX Runtime / CUDA versions and GPUs, what ``precision:
auto`` resolves to here, and where ``$T2I_STAGES_HOME`` and its caches are. Nothing in it
needs CUDA, onnxruntime-gpu or even torch (a serving machine with only ONNX Runtime): what is
absent is reported as absent, and what only torch can tell (ATen's kernels, oneDNN's bf16,
CUDA) is then unknown.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import platform
import sys
from pathlib import Path
from typing import Any

from .assets import ENV_HOME, assets_home, cache_dir

PACKAGES = (
    "t2i-stages",
    "torch",
    "torchvision",
    "onnx",
    "onnxruntime",
    "onnxruntime-gpu",
    "transformers",
    "clean-fid",
    "pluggy",
    "pydantic",
    "numpy",
)


def _version(name: str) -> str | None:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


def package_versions(names: tuple[str, ...] | list[str]) -> dict[str, str]:
    """Python's version and those of the installed ``names`` (absent ones are left out): what
    a metrics file or an export records about the software its numbers came from."""
    out = {"python": platform.python_version()}
    out.update({name: v for name in names if (v := _version(name)) is not None})
    return out


def _folder_size(path: Path) -> int:
    total = 0
    for p in path.rglob("*"):
        try:
            if p.is_file():
                total += p.stat().st_size
        except OSError:
            continue
    return total


def _onnxruntime() -> dict[str, Any]:
    try:
        import onnxruntime as ort
    except Exception as exc:  # noqa: BLE001 - any import failure is a fact for the report
        return {"available": False, "error": f"{type(exc).__name__}: {exc}"[:200]}
    return {
        "available": True,
        "version": getattr(ort, "__version__", None),
        "providers": list(ort.get_available_providers()),
    }


def _torch() -> tuple[Any, str | None]:
    """torch, or None and why it cannot be imported."""
    try:
        import torch
    except Exception as exc:  # noqa: BLE001 - any import failure is a fact for the report
        return None, f"{type(exc).__name__}: {exc}"[:200]
    return torch, None


def _cuda(torch: Any) -> dict[str, Any]:
    if torch is None:
        return {"torch_built_with": None, "available": False, "gpus": []}
    out: dict[str, Any] = {
        "torch_built_with": torch.version.cuda,
        "available": bool(torch.cuda.is_available()),
        "gpus": [],
    }
    if out["available"]:
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            out["gpus"].append(
                {
                    "index": i,
                    "name": props.name,
                    "memory_gb": round(props.total_memory / 2**30, 1),
                    "capability": f"{props.major}.{props.minor}",
                    "bf16": bool(torch.cuda.is_bf16_supported()),
                }
            )
    return out


def collect_environment(measure_busy: bool = True) -> dict[str, Any]:
    """Everything ``t2i-stages env`` prints, as plain data (``--json`` prints this)."""
    from .hardware import choose_threads, cpu_info, resolve_precision

    torch, torch_error = _torch()
    cpu = cpu_info() if torch is not None else cpu_info(with_torch=False)
    threads = choose_threads(None, cpu.usable_cores, None if measure_busy else 0.0)
    cuda = _cuda(torch)
    home = assets_home()
    caches = {}
    folders = [p for p in (home.iterdir() if home.is_dir() else []) if p.is_dir()]
    folders += [p for p in (cache_dir().iterdir() if cache_dir().is_dir() else []) if p.is_dir()]
    for sub in sorted(folders):
        if sub == cache_dir():
            continue
        caches[str(sub.relative_to(home))] = {
            "path": str(sub),
            "entries": sum(1 for _ in sub.iterdir()),
            "bytes": _folder_size(sub),
        }
    # what `precision: auto` picks depends on what torch sees: nothing to say without it
    auto = {} if torch is None else {"cpu": resolve_precision("auto", "cpu", cpu).to_dict()}
    if cuda["available"]:
        auto["cuda"] = resolve_precision("auto", "cuda").to_dict()
    return {
        "python": {"version": platform.python_version(), "executable": sys.executable},
        "platform": platform.platform(),
        "cpu": {
            **cpu.to_dict(),
            "native_bf16": cpu.native_bf16()[0],
            "torch_threads": None if torch is None else torch.get_num_threads(),
            "torch_interop_threads": None if torch is None else torch.get_num_interop_threads(),
            "env": {
                k: os.environ[k]
                for k in (
                    "OMP_NUM_THREADS",
                    "MKL_NUM_THREADS",
                    "ATEN_CPU_CAPABILITY",
                    "ONEDNN_MAX_CPU_ISA",
                    "T2I_STAGES_THREADS",
                )
                if k in os.environ
            },
        },
        "threads_auto": threads.to_dict(),
        "precision_auto": auto,
        "packages": {name: _version(name) for name in PACKAGES},
        "torch": (
            {"available": False, "error": torch_error}
            if torch is None
            else {"available": True, "version": torch.__version__, "debug": torch.version.debug}
        ),
        "cuda": cuda,
        "onnxruntime": _onnxruntime(),
        "home": {
            "variable": ENV_HOME,
            "set": ENV_HOME in os.environ,
            "path": str(home),
            "exists": home.is_dir(),
            "caches": caches,
        },
    }


def format_environment(env: dict[str, Any]) -> str:
    """The human-readable form: one ``key: value`` line per fact, grouped."""
    cpu = env["cpu"]
    flags = ", ".join(f"{k.upper()} {'yes' if v else 'no'}" for k, v in cpu["flags"].items())
    lines = [
        f"python:        {env['python']['version']} ({env['python']['executable']})",
        f"platform:      {env['platform']}",
        f"CPU:           {cpu['model'] or 'unknown'}",
        f"  ISA flags:   {flags}",
    ]
    if env["torch"]["available"]:
        lines += [
            f"  torch sees:  ATen {cpu['aten_capability']}, oneDNN bf16 "
            f"{'yes' if cpu['onednn_bf16'] else 'no'}"
            + (f", ONEDNN_MAX_CPU_ISA={cpu['onednn_max_isa']}" if cpu["onednn_max_isa"] else ""),
            f"  cores:       {cpu['usable_cores']} usable of {cpu['logical_cores']} logical; "
            f"torch threads {cpu['torch_threads']} (inter-op {cpu['torch_interop_threads']})",
        ]
    else:
        lines += [
            f"  torch sees:  unknown: torch is not importable ({env['torch']['error']})",
            f"  cores:       {cpu['usable_cores']} usable of {cpu['logical_cores']} logical",
        ]
    if cpu["env"]:
        lines.append("  variables:   " + " ".join(f"{k}={v}" for k, v in cpu["env"].items()))
    t = env["threads_auto"]
    lines.append(f"threads auto:  {t['chosen']} ({t['reason']}; {t['busy_cores']} cores busy now)")
    for dev, choice in env["precision_auto"].items():
        lines.append(f"precision auto on {dev}: {choice['chosen']} ({choice['reason']})")
    if not env["precision_auto"]:
        lines.append("precision auto: unknown (it depends on what torch sees)")
    pk = env["packages"]
    lines.append("packages:      " + ", ".join(f"{k} {v}" for k, v in pk.items() if v is not None))
    missing = [k for k, v in pk.items() if v is None]
    if missing:
        lines.append("  not installed: " + ", ".join(missing))
    cuda = env["cuda"]
    lines.append(
        f"CUDA:          torch built with {cuda['torch_built_with'] or 'none'}; "
        + ("available" if cuda["available"] else "not available on this machine")
    )
    for g in cuda["gpus"]:
        lines.append(
            f"  GPU {g['index']}:       {g['name']}, {g['memory_gb']} GiB, sm {g['capability']}, "
            f"bf16 {'yes' if g['bf16'] else 'no'}"
        )
    ort = env["onnxruntime"]
    if ort["available"]:
        lines.append(f"ONNX Runtime:  {ort['version']}; providers {', '.join(ort['providers'])}")
    else:
        lines.append(f"ONNX Runtime:  not importable ({ort['error']})")
    home = env["home"]
    lines.append(
        f"{home['variable']}: {home['path']}"
        + ("" if home["set"] else " (default; the variable is not set)")
        + ("" if home["exists"] else " (does not exist yet)")
    )
    for name, c in home["caches"].items():
        lines.append(
            f"  cache {name}: {c['entries']} entries, {c['bytes'] / 2**20:.1f} MiB ({c['path']})"
        )
    return "\n".join(lines)
