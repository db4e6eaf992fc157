"""What an evaluation writes: ``metrics.json`` (every number with its protocol and the library
versions), ``metrics.md`` (a table) and TensorBoard scalars."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..environment import package_versions
from ..recipe.slots import MetricSlot

VERSION_PACKAGES = (
    "t2i-stages",
    "torch",
    "torchvision",
    "clean-fid",
    "numpy",
    "scipy",
    "transformers",
    "pillow",
)


def versions() -> dict[str, str]:
    """Versions of the packages the numbers depend on."""
    return package_versions(VERSION_PACKAGES)


def _num(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.1f}"
    return str(v)


def table_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for metric, res in results.items():
        if "error" in res:
            rows.append({"metric": metric, "name": "error", "value": None, "note": res["error"]})
            continue
        for name, value in res["values"].items():
            rows.append(
                {
                    "metric": metric,
                    "name": name,
                    "value": value,
                    "std": res.get("std", {}).get(name),
                    "note": res.get("notes", {}).get(name, ""),
                }
            )
    return rows


def format_table(report: dict[str, Any]) -> str:
    """A Markdown table of every number, then the shared protocol."""
    p = report["protocol"]
    title = (
        f"# Evaluation of the images in {report['images']}"
        if "images" in report
        else f"# Evaluation of {report.get('run', 'a run')} (step {report.get('step', '?')})"
    )
    lines = [
        title,
        "",
        "| metric | value | ± | note |",
        "|---|---|---|---|",
    ]
    for r in report["table"]:
        std = _num(r["std"]) if r.get("std") is not None else ""
        lines.append(f"| {r['name']} | {_num(r['value'])} | {std} | {r['note']} |")
    if "input" in p:  # given images (eval --images)
        given = p["input"]
        sample = (
            f"{p['images']}, at {p['resolution']} px; read {given['read']} of "
            f"{given['considered']} (skipped {given['skipped']}), resized {given['resized']}."
        )
    else:
        sample = (
            f"{p['num_samples']} samples at {p['resolution']} px from the {p['split']} split "
            f"({p['images']}); noise seed {p['noise_seed']}; generator: {p.get('generator', '?')}."
        )
    lines += [
        "",
        sample,
        "Every metric's extractor, weight hash, reference set and resizer are in metrics.json.",
        "",
    ]
    preset = report.get("protocol_preset")
    if preset:
        changed = preset["overridden_by_recipe"] + preset["overridden_by_command_line"]
        lines[-1:-1] = [
            f"Protocol preset: {preset['name']} ({preset['paper']}); its fields and sources are "
            f"in metrics.json (protocol_preset); overridden: {', '.join(changed) or 'nothing'}."
        ]
    return "\n".join(lines)


def log_to_tensorboard(
    report: dict[str, Any], tb_dir: Path, step: int, prefix: str = "eval"
) -> bool:
    """Every headline number of ``report`` as a TensorBoard scalar ``prefix/NAME`` at ``step``."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # noqa: BLE001 - tensorboard missing: the numbers are in metrics.json
        return False
    writer = SummaryWriter(str(tb_dir))
    try:
        for row in report.get("table", []):
            value = row.get("value")
            if isinstance(value, (int, float)) and math.isfinite(value):
                writer.add_scalar(f"{prefix}/{row['name']}", value, step)
    finally:
        writer.close()
    return True


def params_of(slot: MetricSlot) -> dict[str, Any]:
    resolved = slot.resolved
    return json.loads(resolved.model_dump_json()) if resolved is not None else dict(slot.params)


def write_metrics(report: dict[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    js, md = out / "metrics.json", out / "metrics.md"
    tmp = js.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2, default=json_default), encoding="utf-8")
    tmp.replace(js)
    md.write_text(format_table(report), encoding="utf-8")
    return js, md


def json_default(v: Any) -> Any:
    """What ``json.dumps`` cannot write itself: tensor and numpy scalars/arrays, else str."""
    if hasattr(v, "item"):
        return v.item()
    if hasattr(v, "tolist"):
        return v.tolist()
    return str(v)


# ---------------------------------------------------------------------------- entry points
