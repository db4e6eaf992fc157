"""What this machine can do, and what the ``auto`` settings (precision, threads) resolve to.

bf16 autocast is fast only where the hardware computes in bf16: a CUDA GPU with bf16 support,
or a CPU with AVX512-BF16 or AMX whose instructions oneDNN and ATen are allowed to use. On an
AVX2-only CPU (AMD Zen 3, most laptops) oneDNN emulates bf16, and the demo's GAN step ran 14x
slower than in fp32 (docs/benchmarks.md), so ``auto`` picks fp32 there. Every decision comes
with the reason, which runs record in their log, ``recipe.resolved.yaml`` and ``metrics.json``.

The CPU facts are read once from ``/proc/cpuinfo`` (the model and its flags), from torch
(ATen's CPU capability, oneDNN's bf16 support) and from ``ONEDNN_MAX_CPU_ISA``, which caps the
instructions oneDNN uses (``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2`` reproduces an
AVX2-only machine on a newer one).
"""

from __future__ import annotations

import contextlib
import functools
import os
import platform
import time
from dataclasses import asdict, dataclass
from typing import Any

# ISA flags (as /proc/cpuinfo spells them) worth naming in a bug report.
REPORTED_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx512_fp16")
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
# ONEDNN_MAX_CPU_ISA values that still allow oneDNN's native bf16 kernels.
ONEDNN_BF16_ISAS = (
    "ALL",
    "AVX512_CORE_BF16",
    "AVX512_CORE_FP16",
    "AVX512_CORE_AMX",
    "AVX512_CORE_AMX_FP16",
    "AVX10_1_512",
    "AVX10_1_512_AMX",
    "AVX10_1_512_AMX_FP16",
    "AVX10_2_512",
    "AVX10_2_512_AMX_2",
)
# Measured on an AVX2-only CPU (issue 17): the demo's GAN step in bf16 against fp32.
EMULATED_BF16_SLOWDOWN = 14
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass(frozen=True)
class CpuInfo:
    """The CPU facts the precision rule reads (a test builds one by hand)."""

    model: str = ""
    flags: frozenset[str] = frozenset()
    aten_capability: str = ""  # torch.backends.cpu.get_cpu_capability(): AVX512, AVX2, ...
    onednn_bf16: bool = False  # torch.ops.mkldnn._is_mkldnn_bf16_supported()
    onednn_max_isa: str | None = None  # the ONEDNN_MAX_CPU_ISA cap, if set
    logical_cores: int = 1
    usable_cores: int = 1  # the cores this process may run on (affinity)

    def native_bf16(self) -> tuple[bool, str]:
        """Whether bf16 runs in hardware here, and why (or why not)."""
        have = [f for f in NATIVE_BF16_FLAGS if f in self.flags]
        if not have:
            isa = "AVX-512" if "avx512f" in self.flags else "AVX2" if "avx2" in self.flags else ""
            return False, f"the CPU has no AVX512-BF16 or AMX{f' (it has {isa})' if isa else ''}"
        if self.onednn_max_isa and self.onednn_max_isa.upper() not in ONEDNN_BF16_ISAS:
            return (
                False,
                f"ONEDNN_MAX_CPU_ISA={self.onednn_max_isa} keeps oneDNN off its bf16 kernels",
            )
        if not self.onednn_bf16:
            return False, "oneDNN reports no bf16 support in this torch build"
        if self.aten_capability and not self.aten_capability.upper().startswith("AVX512"):
            return False, f"ATen runs its {self.aten_capability} kernels (ATEN_CPU_CAPABILITY)"
        return True, f"the CPU has {' and '.join(f.upper() for f in have)}"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["flags"] = {f: f in self.flags for f in REPORTED_FLAGS}
        return out


def _proc_cpuinfo() -> tuple[str, frozenset[str]]:
    """The first CPU's model name and flags from /proc/cpuinfo (Linux; empty elsewhere)."""
    model, flags = "", frozenset()
    try:
        text = open("/proc/cpuinfo", encoding="utf-8", errors="replace").read()
    except OSError:
        return platform.processor(), flags
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and not model:
            model = value.strip()
        elif key.strip() == "flags" and not flags:
            flags = frozenset(value.split())
    return model or platform.processor(), flags


@functools.lru_cache(maxsize=1)
def cpu_info(with_torch: bool = True) -> CpuInfo:
    """This machine's CPU as torch and oneDNN see it (cached: it does not change in a process).

    ``with_torch=False`` (``env`` where torch cannot be imported) reads /proc/cpuinfo only:
    ATen's capability and oneDNN's bf16 support are then unknown (empty and false)."""
    model, flags = _proc_cpuinfo()
    aten, onednn = "", False
    if with_torch:
        import torch

        aten = str(torch.backends.cpu.get_cpu_capability())
        try:
            onednn = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            onednn = False
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 1
    return CpuInfo(
        model=model,
        flags=flags,
        aten_capability=aten,
        onednn_bf16=onednn,
        onednn_max_isa=os.environ.get("ONEDNN_MAX_CPU_ISA") or None,
        logical_cores=os.cpu_count() or 1,
        usable_cores=usable,
    )


class _Recorded:
    """A decision as a run records it: its fields, without the empty ones."""

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class PrecisionChoice(_Recorded):
    """What a ``precision`` setting became on a device, and why."""

    requested: str
    chosen: str
    device: str
    reason: str
    warning: str | None = None

    def describe(self, what: str = "precision") -> str:
        arrow = (
            f"{self.requested} -> {self.chosen}" if self.requested != self.chosen else self.chosen
        )
        return f"{what}: {arrow} on {self.device} ({self.reason})"


def _cuda_bf16(device_type: str) -> bool:
    import torch

    return device_type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def resolve_precision(
    requested: str,
    device: Any = "cpu",
    cpu: CpuInfo | None = None,
    cuda_bf16: bool | None = None,
    what: str = "precision",
) -> PrecisionChoice:
    """The rule behind ``precision: auto`` (and the warning for a bf16 that will be slow).

    auto: bf16 where the device runs it natively (CUDA with bf16, or a CPU with AVX512-BF16/AMX
    that oneDNN and ATen use), fp32 otherwise; fp16 (with a GradScaler) is never picked by auto.
    An explicit bf16 on a CPU without native bf16 runs, with a warning. ``cpu`` and
    ``cuda_bf16`` stand in for the machine in tests.
    """
    if requested not in PRECISIONS:
        raise ValueError(f"{what}: {requested!r} is not one of {', '.join(PRECISIONS)}")
    dev_type = getattr(device, "type", None) or str(device).split(":")[0]
    if dev_type == "cuda":
        native = _cuda_bf16(dev_type) if cuda_bf16 is None else cuda_bf16
        if requested != "auto":
            return PrecisionChoice(requested, requested, "cuda", "set in the recipe")
        if native:
            return PrecisionChoice("auto", "bf16", "cuda", "the GPU supports bf16")
        return PrecisionChoice("auto", "fp32", "cuda", "the GPU has no bf16 support")
    if dev_type != "cpu":
        chosen = "fp32" if requested == "auto" else requested
        return PrecisionChoice(requested, chosen, dev_type, f"no auto rule for {dev_type}")
    cpu = cpu or cpu_info()
    native, why = cpu.native_bf16()
    if requested == "auto":
        if native:
            return PrecisionChoice("auto", "bf16", "cpu", f"native bf16: {why}")
        return PrecisionChoice("auto", "fp32", "cpu", f"no native bf16: {why}")
    if requested == "bf16" and not native:
        warning = (
            f"{what} bf16 on a CPU without native bf16 ({why}): oneDNN emulates it, measured "
            f"{EMULATED_BF16_SLOWDOWN}x slower than fp32 for the demo's GAN step, and some "
            "kernels (oneDNN's LSTM) refuse it; use precision: auto (fp32 here)"
        )
        return PrecisionChoice("bf16", "bf16", "cpu", "set in the recipe (emulated)", warning)
    return PrecisionChoice(requested, requested, "cpu", "set in the recipe")


def autocast(precision: str, device: Any = "cpu"):
    """The autocast context for a resolved precision (fp32: a no-op)."""
    import torch

    if precision in ("fp32", "auto"):
        return contextlib.nullcontext()
    dev_type = getattr(device, "type", None) or str(device).split(":")[0]
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=dev_type, dtype=dtype)


# ------------------------------------------------------------------------------------ threads


def busy_cores(interval: float = 0.1) -> float:
    """How many cores other work keeps busy, from /proc/stat over ``interval`` seconds.

    This process sleeps while it measures, so what is busy is someone else's. Falls back to the
    one-minute load average where /proc/stat cannot be read.
    """

    def read() -> tuple[int, int] | None:
        try:
            with open("/proc/stat", encoding="ascii") as f:
                parts = [int(x) for x in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        idle = parts[3] + (parts[4] if len(parts) > 4 else 0)
        return sum(parts), idle

    a = read()
    if a is None:
        try:
            return float(os.getloadavg()[0])
        except OSError:
            return 0.0
    time.sleep(interval)
    b = read()
    if b is None or b[0] == a[0]:
        return 0.0
    total, idle = b[0] - a[0], b[1] - a[1]
    return max(0.0, (total - idle) / total) * (os.cpu_count() or 1)


@dataclass(frozen=True)
class ThreadChoice(_Recorded):
    """How many torch threads a run uses, and why."""

    requested: int | None
    chosen: int
    usable_cores: int
    busy_cores: float
    reason: str
    warning: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "busy_cores": round(self.busy_cores, 2)}

    def describe(self) -> str:
        return f"threads: {self.chosen} ({self.reason})"


def choose_threads(
    requested: int | None,
    usable_cores: int | None = None,
    busy: float | None = None,
    share: int = 1,
) -> ThreadChoice:
    """``threads: null`` -> one torch thread per core that other work leaves free.

    ``share`` processes of this run split the cores (torchrun's ranks on one machine).
    ``T2I_STAGES_THREADS`` pins the count for every run (a scheduler that hands out cores, or
    a test suite that needs the same count throughout).

    Two busy threads on two cores that something else also uses ran fp32 12x slower than one
    thread (7.45 against 0.61 s/it, issue 17): PyTorch's threads wait on each other at every
    op. A thread count set in the recipe is kept, with a warning when the cores are busy.
    """
    pinned = os.environ.get("T2I_STAGES_THREADS")
    if requested is None and pinned:
        try:
            count = max(1, int(pinned))
        except ValueError:
            raise ValueError(f"T2I_STAGES_THREADS={pinned!r}: not a whole number") from None
        return ThreadChoice(None, count, usable_cores or count, 0.0, "T2I_STAGES_THREADS")
    cores = max(1, (usable_cores or cpu_info().usable_cores) // max(share, 1))
    load = (busy_cores() if busy is None else busy) / max(share, 1)
    free = max(1, int(cores - load + 0.5))
    if requested is not None:
        warning = None
        if requested > free and load >= 0.5:
            warning = (
                f"train.threads {requested}: about {load:.1f} of {cores} cores are busy with "
                f"other work, so {requested} threads will wait on each other (measured up to "
                f"12x slower); set threads: null to pick {free}"
            )
        return ThreadChoice(requested, requested, cores, load, "set in the recipe", warning)
    if free < cores:
        warning = (
            f"about {load:.1f} of {cores} cores are busy with other work: using {free} torch "
            f"thread(s) instead of {cores} (oversubscribed threads ran up to 12x slower)"
        )
        return ThreadChoice(None, free, cores, load, f"{load:.1f} cores busy", warning)
    return ThreadChoice(None, cores, cores, load, "one per usable core")
