"""Parity of ONNX Runtime against PyTorch, measured at export time.

A case is one (batch size, caption length) pair; its inputs are drawn from a fixed seed, and in a
batch of two or more the second caption is fully padded (its mask is all False) and the others
have varied lengths, so masking paths are exercised. An element passes when
``|ort - torch| <= atol + rtol * |torch|`` (numpy's ``allclose`` rule); a case passes when every
element of every compared output does. The report is what ``model.json`` stores under ``parity``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from t2i_stages.errors import T2IError


class ParityError(T2IError):
    """ONNX Runtime does not reproduce PyTorch within the tolerances."""


@dataclass
class OutputDiff:
    """How far one output of ONNX Runtime is from PyTorch's."""

    name: str
    max_abs_diff: float
    max_rel_diff: float
    worst_excess: float  # max(|d| - atol - rtol*|ref|); <= 0 means within tolerance
    finite: bool

    @property
    def passed(self) -> bool:
        return self.finite and self.worst_excess <= 0.0


@dataclass
class ParityCase:
    batch: int
    length: int
    lengths: list[int]
    outputs: list[OutputDiff]

    @property
    def passed(self) -> bool:
        return all(o.passed for o in self.outputs)

    @property
    def max_abs_diff(self) -> float:
        return max((o.max_abs_diff for o in self.outputs), default=0.0)


@dataclass
class ParityReport:
    """Every case of a parity check, with the tolerances and the provider used."""

    precision: str
    rtol: float
    atol: float
    provider: str
    cases: list[ParityCase] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.cases) and all(c.passed for c in self.cases)

    @property
    def max_abs_diff(self) -> float:
        return max((c.max_abs_diff for c in self.cases), default=0.0)

    def failure_line(self) -> str:
        """One line naming the worst failing output, for the error message."""
        bad = [(c, o) for c in self.cases for o in c.outputs if not o.passed]
        if not bad:
            return "parity passed"
        case, out = max(bad, key=lambda co: (not co[1].finite, co[1].worst_excess))
        what = "non-finite values" if not out.finite else f"max |diff| {out.max_abs_diff:.3g}"
        return (
            f"{self.precision} parity failed: {out.name} at batch {case.batch}, length "
            f"{case.length}: {what} (max rel {out.max_rel_diff:.3g}; allowed "
            f"atol {self.atol:g} + rtol {self.rtol:g}*|ref|); {len(bad)} output(s) in "
            f"{len({id(c) for c, _ in bad})} of {len(self.cases)} case(s) out of tolerance"
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["passed"] = self.passed
        d["max_abs_diff"] = self.max_abs_diff
        for case, raw in zip(self.cases, d["cases"], strict=True):
            raw["passed"] = case.passed
            for o, ro in zip(case.outputs, raw["outputs"], strict=True):
                ro["passed"] = o.passed
        return d


def compare(name: str, got: np.ndarray, want: np.ndarray, rtol: float, atol: float) -> OutputDiff:
    """Element-wise comparison of an ONNX Runtime output with the PyTorch reference."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return OutputDiff(name, float("inf"), float("inf"), float("inf"), False)
    finite = bool(np.isfinite(got).all() and np.isfinite(want).all())
    if got.size == 0:
        return OutputDiff(name, 0.0, 0.0, -atol, finite)
    diff = np.abs(got - want)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = diff / np.maximum(np.abs(want), 1e-12)
        excess = diff - (atol + rtol * np.abs(want))
    return OutputDiff(
        name,
        float(np.nanmax(diff)),
        float(np.nanmax(rel)),
        float(np.nanmax(excess)),
        finite,
    )


def case_lengths(batch: int, length: int, rng: np.random.Generator) -> list[int]:
    """Caption lengths of one case: full, fully padded (second row), then random."""
    lengths = [length]
    if batch >= 2:
        lengths.append(0)
    while len(lengths) < batch:
        lengths.append(int(rng.integers(1, length + 1)))
    return lengths[:batch]


def make_inputs(
    batch: int,
    length: int,
    vocab_size: int,
    z_dim: int,
    eps_dim: int,
    seed: int = 0,
) -> tuple[dict[str, np.ndarray], list[int]]:
    """Deployment inputs (token_ids, token_mask, z, eps) for one parity case."""
    rng = np.random.default_rng(seed)
    lengths = case_lengths(batch, length, rng)
    mask = np.arange(length)[None, :] < np.asarray(lengths)[:, None]
    ids = rng.integers(1, max(vocab_size, 2), size=(batch, length)).astype(np.int64) * mask
    feeds = {
        "token_ids": ids.astype(np.int64),
        "token_mask": mask.astype(bool),
        "z": rng.standard_normal((batch, z_dim)).astype(np.float32),
    }
    if eps_dim:
        feeds["eps"] = rng.standard_normal((batch, eps_dim)).astype(np.float32)
    return feeds, lengths


def run_parity(
    reference: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]],
    onnx_run: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]],
    batches: Sequence[int],
    lengths: Sequence[int],
    vocab_size: int,
    z_dim: int,
    eps_dim: int,
    rtol: float,
    atol: float,
    precision: str = "fp32",
    provider: str = "CPUExecutionProvider",
    seed: int = 0,
) -> ParityReport:
    """Run every (batch, length) case through PyTorch and ONNX Runtime and compare them.

    ``reference`` maps the deployment inputs (as tensors) to named outputs; ``onnx_run`` does
    the same with numpy arrays. Outputs are compared by name, in the reference's order.
    """
    report = ParityReport(precision, rtol, atol, provider)
    k = 0
    for b in batches:
        for t in lengths:
            feeds, lens = make_inputs(b, t, vocab_size, z_dim, eps_dim, seed + k)
            k += 1
            with torch.no_grad():
                want = reference({n: torch.from_numpy(v) for n, v in feeds.items()})
            got = onnx_run(feeds)
            diffs = [
                compare(name, got[name], ref.detach().float().cpu().numpy(), rtol, atol)
                for name, ref in want.items()
            ]
            report.cases.append(ParityCase(b, t, lens, diffs))
    return report
