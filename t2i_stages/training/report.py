"""A self-contained ``report.html`` for a run: metrics, loss curves, samples over time, attention."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path


def _img(path: Path, width: str = "100%") -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img src="data:image/png;base64,{data}" style="max-width:{width}">'


def _flatten(prefix: str, value, out: list[tuple[str, str]]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(value, float):
        out.append((prefix, f"{value:.4f}"))
    else:
        out.append(
            (prefix, html.escape(json.dumps(value) if not isinstance(value, str) else value))
        )


def write_report(run_dir: Path, title: str) -> Path:
    """Collect what the run folder holds into one HTML file with the images embedded."""
    run_dir = Path(run_dir)
    parts = [
        "<!doctype html><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;"
        "font-size:13px;text-align:left}h2{border-bottom:1px solid #ddd}</style>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    metrics_path = run_dir / "metrics.json"
    if metrics_path.exists():
        rows: list[tuple[str, str]] = []
        _flatten("", json.loads(metrics_path.read_text()), rows)
        parts.append("<h2>Metrics</h2><table><tr><th>metric</th><th>value</th></tr>")
        parts += [f"<tr><td>{html.escape(k)}</td><td>{v}</td></tr>" for k, v in rows]
        parts.append("</table>")
    curves = run_dir / "loss_curves.png"
    if curves.exists():
        parts += ["<h2>Loss curves</h2>", _img(curves)]
    samples = sorted((run_dir / "samples").glob("step_*.png"))
    if samples:
        parts.append("<h2>Samples over training (fixed test captions, EMA generator)</h2>")
        for p in samples[-1:] + samples[:-1][::-1][:5]:
            parts += [f"<h3>{p.stem}</h3>", _img(p)]
    attention = sorted((run_dir / "attention").glob("*.png"))
    if attention:
        parts.append("<h2>Attention maps (latest)</h2>")
        latest = attention[-1].stem.rsplit("_stage", 1)[0]
        for p in attention:
            if p.stem.startswith(latest):
                parts += [f"<h3>{p.stem}</h3>", _img(p)]
    recipe = run_dir / "recipe.resolved.yaml"
    if recipe.exists():
        parts += ["<h2>Resolved recipe</h2><pre>", html.escape(recipe.read_text()), "</pre>"]
    out = run_dir / "report.html"
    out.write_text("\n".join(parts), encoding="utf-8")
    return out
