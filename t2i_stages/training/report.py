"""A self-contained ``report.html`` for a run, headline first.

The first screen answers "did it work?": why training stopped (loudly, when a time cap cut it
short), its speed and precision, the headline metrics beside the same metric on real images,
and the sample grids over training. Loss curves and attention maps follow; the protocol, the
full ``metrics.json`` and the resolved recipe are collapsed at the end.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from ..run_files import read_json

STYLE = (
    "body{font-family:sans-serif;max-width:1200px;margin:auto;padding:0 1em 2em}"
    "table{border-collapse:collapse;margin:.4em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
    "font-size:13px;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}"
    "h1{margin:.5em 0 .2em}h2{border-bottom:1px solid #ddd;margin-top:1.2em}"
    ".stop{background:#fdecea;border:2px solid #d93025;padding:.6em 1em;margin:.5em 0}"
    ".done{background:#e6f4ea;border:1px solid #34a853;padding:.4em 1em;margin:.5em 0}"
    ".facts{color:#444;font-size:13px;margin:.2em 0 .6em}"
    ".grids{display:flex;gap:10px;align-items:flex-start;overflow-x:auto}"
    ".grids figure{margin:0}.grids figcaption{font-size:12px;color:#555}"
    "details{margin:.6em 0}summary{cursor:pointer;font-weight:bold}"
)


def _img(path: Path, width: str = "100%") -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img src="data:image/png;base64,{data}" style="max-width:{width}" alt="{path.stem}">'


def _fmt(v: Any) -> str:
    if isinstance(v, float) and v != v:  # NaN: the metric had nothing to measure
        return "n/a"
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.1f}"
    return "" if v is None else html.escape(str(v))


def real_baseline(result: dict[str, Any], name: str) -> float | None:
    """The same metric on the real test images, where the metric measured it."""
    real = (result.get("details") or {}).get("real_images")
    if not isinstance(real, dict):
        return None
    if "mean" in real and len(result.get("values", {})) == 1:
        return real["mean"]
    if isinstance(real.get(name), (int, float)):  # the value's own name first
        return real[name]
    key = name[name.find("[") + 1 : -1] if name.endswith("]") and "[" in name else name
    value = real.get(key)
    return value if isinstance(value, (int, float)) else None


def _speed(run_dir: Path) -> float | None:
    """Median training images/s over the logged steps (history.jsonl)."""
    path = run_dir / "history.jsonl"
    if not path.is_file():
        return None
    values = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            v = json.loads(line).get("images_per_s")
        except json.JSONDecodeError:
            continue
        if isinstance(v, (int, float)):
            values.append(v)
    return sorted(values)[len(values) // 2] if values else None


def _status(metrics: dict[str, Any], speed: float | None) -> list[str]:
    training = metrics.get("training") or {}
    runtime = metrics.get("runtime") or {}
    parts = []
    if training.get("advice"):
        parts.append(
            f"<div class='stop'><b>Stopped early: {html.escape(training['text'])}.</b> "
            f"{html.escape(training['advice'])}.</div>"
        )
    elif training:
        parts.append(
            f"<div class='done'>Trained to the end: {html.escape(training['text'])}, "
            f"{training.get('minutes', 0):.1f} min.</div>"
        )
    facts = []
    if speed:
        facts.append(f"speed {speed:.1f} training images/s")
    prec = runtime.get("precision")
    if prec:
        facts.append(f"precision {prec['chosen']} ({html.escape(prec['reason'])})")
    threads = runtime.get("threads")
    if threads:
        facts.append(f"{threads['chosen']} torch thread(s) ({html.escape(threads['reason'])})")
    if metrics.get("step") is not None:
        facts.append(f"evaluated at step {metrics['step']}")
    if facts:
        parts.append(f"<p class='facts'>{'; '.join(facts)}</p>")
    return parts


def _headline(metrics: dict[str, Any]) -> list[str]:
    results = metrics.get("results") or {}
    if not results:
        return []
    rows = [
        "<h2>Headline metrics</h2><table><tr><th>metric</th><th>generated</th><th>±</th>"
        "<th>real images</th><th>note</th></tr>"
    ]
    for key, res in results.items():
        if "error" in res:
            rows.append(
                f"<tr><td>{html.escape(key)}</td><td colspan=4>failed: "
                f"{html.escape(str(res['error']))}</td></tr>"
            )
            continue
        for name, value in res.get("values", {}).items():
            std = (res.get("std") or {}).get(name)
            note = (res.get("notes") or {}).get(name, "")
            rows.append(
                f"<tr><td>{html.escape(name)}</td><td class=num>{_fmt(value)}</td>"
                f"<td class=num>{_fmt(std)}</td><td class=num>{_fmt(real_baseline(res, name))}"
                f"</td><td>{html.escape(note)}</td></tr>"
            )
    rows.append("</table>")
    return rows


def _grids(run_dir: Path) -> list[str]:
    samples = sorted((run_dir / "samples").glob("step_*.png"))
    if not samples:
        return []
    picked = samples if len(samples) <= 4 else [samples[0], *samples[-3:]]
    figures = [
        f"<figure>{_img(p, '100%')}<figcaption>{html.escape(p.stem.replace('_', ' '))}"
        "</figcaption></figure>"
        for p in reversed(picked)
    ]
    return [
        "<h2>Samples over training</h2>",
        "<p class='facts'>Fixed test captions and noise, EMA generator; newest first "
        "(captions in samples/captions.txt and under each image).</p>",
        f"<div class='grids'>{''.join(figures)}</div>",
    ]


def write_run_report(run_dir: Path, title: str) -> Path:
    """Collect what the run folder holds into one HTML file with the images embedded."""
    run_dir = Path(run_dir)
    metrics_path = run_dir / "metrics.json"
    metrics = read_json(metrics_path) if metrics_path.exists() else {}
    record = run_dir / "training.json"  # why training stopped, also for runs without evaluation
    if record.is_file():
        for key, value in read_json(record).items():
            metrics.setdefault(key, value)
    parts = [
        "<!doctype html><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{STYLE}</style>",
        f"<h1>{html.escape(title)}</h1>",
        *_status(metrics, _speed(run_dir)),
        *_headline(metrics),
        *_grids(run_dir),
    ]
    curves = run_dir / "loss_curves.png"
    if curves.exists():
        parts += ["<h2>Loss curves</h2>", _img(curves)]
    attention = sorted((run_dir / "attention").glob("*.png"))
    if attention:
        parts.append("<h2>Attention maps (latest)</h2>")
        latest = attention[-1].stem.rsplit("_stage", 1)[0]
        for p in attention:
            if p.stem.startswith(latest):
                parts += [f"<h3>{p.stem}</h3>", _img(p)]
    if metrics:
        parts += [
            "<details><summary>Protocol and every recorded number (metrics.json)</summary><pre>",
            html.escape(json.dumps(metrics, indent=2)),
            "</pre></details>",
        ]
    recipe = run_dir / "recipe.resolved.yaml"
    if recipe.exists():
        parts += [
            "<details><summary>Resolved recipe</summary><pre>",
            html.escape(recipe.read_text()),
            "</pre></details>",
        ]
    out = run_dir / "report.html"
    out.write_text("\n".join(parts), encoding="utf-8")
    return out
