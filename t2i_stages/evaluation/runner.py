"""The one evaluation path: training's end-of-run evaluation and ``t2i-stages eval`` both use it.

``evaluate_stream`` feeds the generated batches to every metric plugin (each keeps features,
not images) and writes ``metrics.json`` (every number with its protocol) and ``metrics.md`` (a
table). ``evaluate_run_dir`` builds the context from a run folder (newest good checkpoint, EMA
generator); ``evaluate_trainer`` from a live ``Trainer``. Both draw the same samples
(``samples.stream_samples``) for the same seed and batch size.
"""

from __future__ import annotations

import json
import math
import platform
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
import yaml
from pydantic import ValidationError

from ..errors import T2IError
from ..recipe.slots import MetricSlot
from .context import EvalContext, MetricResult, is_streaming
from .samples import EvalBatch, EvalSamples, stream_samples

NOISE_SEED = 100
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
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in VERSION_PACKAGES:
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def parse_metric_spec(text: str, registry: Any) -> MetricSlot:
    """``name`` or ``name:key=value:key=value`` (values read as YAML) -> a validated slot."""
    name, *pairs = text.strip().split(":")
    params: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise T2IError(f"--metrics '{text}': '{pair}' is not key=value")
        k, v = pair.split("=", 1)
        params[k.strip()] = yaml.safe_load(v)
    return make_slot(name, params, registry, where=f"--metrics '{text}'")


def make_slot(name: str, params: dict[str, Any], registry: Any, where: str = "") -> MetricSlot:
    """A metric slot validated against the plugin's params (T2IError with the field otherwise)."""
    from ..recipe.validate import error_message, format_loc, resolve_slots
    from ..registry import unknown_name_message

    where = where or f"metric '{name}'"
    if name not in registry.components.get("metric", {}):
        raise T2IError(
            f"{where}: {unknown_name_message('metric', name, registry.names('metric'), registry.load_errors)}"
        )
    try:
        slot = MetricSlot(type=name, params=params)
        resolved = registry.validate_params("metric", name, params)
    except ValidationError as exc:
        err = exc.errors()[0]
        model = registry.get("metric", name).spec.params
        raise T2IError(f"{where}: {format_loc(err['loc'])}: {error_message(err, model)}") from None
    slot.resolve(resolved)
    problems = resolve_slots(resolved, registry, ("params",))
    if problems:
        loc, msg = problems[0]
        raise T2IError(f"{where}: {format_loc(loc)}: {msg}")
    return slot


def dataset_metrics(dataset: Any, registry: Any) -> list[MetricSlot]:
    """The metrics a dataset advertises as its own (``dataset.dataset_metrics``: the shapes
    dataset's oracle reads its attributes back), validated like any metric slot."""
    specs = getattr(dataset, "dataset_metrics", ()) or ()
    name = getattr(dataset, "name", type(dataset).__name__)
    return [
        make_slot(s["type"], dict(s.get("params", {})), registry, where=f"dataset '{name}'")
        for s in specs
    ]


def default_metric_slots(
    registry: Any, has_matcher: bool, own: list[MetricSlot], with_own: bool
) -> list[MetricSlot]:
    """What runs when a recipe lists no metrics: only what needs no downloaded asset."""
    slots = []
    if has_matcher:
        slots.append(make_slot("fid", {"extractor": "matcher"}, registry))
        slots.append(make_slot("r_precision", {"encoder": "run"}, registry))
    return slots + (own if with_own else [])


def choose_slots(
    recipe: Any,
    registry: Any,
    names: Iterable[str] | None,
    has_matcher: bool,
    dataset: Any = None,
) -> list[MetricSlot]:
    """``--metrics`` if given, else the recipe's ``eval.metrics``, else the defaults.

    ``eval.attribute_accuracy: true`` adds the metrics the test ``dataset`` advertises as its
    own (``dataset_metrics``) that the list does not already name.
    """
    cfg = recipe.eval if recipe is not None else None
    if names:
        return [parse_metric_spec(n, registry) for n in names]
    own = dataset_metrics(dataset, registry) if dataset is not None else []
    with_own = bool(cfg.attribute_accuracy) if cfg is not None else True
    if cfg is None or not cfg.metrics:
        return default_metric_slots(registry, has_matcher, own, with_own)
    slots = list(cfg.metrics)
    if with_own:
        slots += [s for s in own if not any(x.type == s.type for x in slots)]
    return slots


def build_metrics(
    slots: list[MetricSlot], registry: Any, device: torch.device
) -> list[tuple[str, MetricSlot, Any]]:
    """Build every metric first, so a missing asset fails before any image is generated."""
    out, seen = [], {}
    for slot in slots:
        seen[slot.type] = seen.get(slot.type, 0) + 1
        key = slot.type if seen[slot.type] == 1 else f"{slot.type}#{seen[slot.type]}"
        out.append((key, slot, registry.build("metric", slot, device=device)))
    return out


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
    lines = [
        f"# Evaluation of {report.get('run', 'a run')} (step {report.get('step', '?')})",
        "",
        "| metric | value | ± | note |",
        "|---|---|---|---|",
    ]
    for r in report["table"]:
        std = _num(r["std"]) if r.get("std") is not None else ""
        lines.append(f"| {r['name']} | {_num(r['value'])} | {std} | {r['note']} |")
    lines += [
        "",
        f"{p['num_samples']} samples at {p['resolution']} px from the {p['split']} split "
        f"({p['images']}); noise seed {p['noise_seed']}; generator: {p.get('generator', '?')}.",
        "Every metric's extractor, weight hash, reference set and resizer are in metrics.json.",
        "",
    ]
    return "\n".join(lines)


class _Running:
    """One metric's place in a streamed evaluation: its time so far and its error, if any."""

    def __init__(self, key: str, slot: MetricSlot, metric: Any):
        self.key, self.slot, self.metric = key, slot, metric
        self.streaming = is_streaming(metric)
        self.seconds = 0.0
        self.error: str | None = None
        self.result: MetricResult | None = None


def _step(run: _Running, ctx: EvalContext, strict: bool, fn: Callable[[], Any]) -> Any:
    """Call one metric step, timed; a user error stops the evaluation or retires the metric."""
    t0 = time.time()
    try:
        return fn()
    except T2IError as exc:
        if strict:
            raise T2IError(f"metric '{run.key}': {exc}") from exc
        ctx.log(f"eval: metric '{run.key}' failed: {exc}")
        run.error = str(exc)
        return None
    finally:
        run.seconds += time.time() - t0


def evaluate_stream(
    ctx: EvalContext,
    metrics: list[tuple[str, MetricSlot, Any]],
    stream: Iterable[EvalBatch],
    out_dir: str | Path | None = None,
    header: dict[str, Any] | None = None,
    strict: bool = True,
    progress: bool = False,
) -> dict[str, Any]:
    """Feed each batch of ``stream`` to every metric, then write metrics.json and metrics.md.

    ``progress`` shows a progress bar over the generated images (on stderr).

    Streaming metrics (``start``/``update``/``finish``) keep only their own per-image features
    or sums, so no image outlives its batch. Metrics with only ``compute(ctx)`` get every image
    gathered into ``ctx.samples`` after the stream (memory grows with N for them alone).
    With ``strict=False`` a metric that fails with a user error is recorded as
    ``{"error": ...}`` and the others still run (training's end-of-run evaluation must not lose
    the run).
    """
    runs = [_Running(key, slot, metric) for key, slot, metric in metrics]
    legacy: list[EvalBatch] = []
    started = False
    if progress:
        from tqdm import tqdm

        total = int(getattr(stream, "num_samples", 0) or 0)
        bar = tqdm(total=total or None, desc="eval", unit="img", dynamic_ncols=True)
        stream = _Counted(stream, bar)
    for batch in stream:
        if not started:
            ctx.resolution = batch.resolution
            ctx.num_samples = int(getattr(stream, "num_samples", 0)) or ctx.num_samples
            for r in runs:
                if r.streaming:
                    _step(r, ctx, strict, lambda r=r: r.metric.start(ctx))
            started = True
        for r in runs:
            if r.streaming and r.error is None:
                _step(r, ctx, strict, lambda r=r, b=batch: r.metric.update(b))
        if any(not r.streaming for r in runs):
            legacy.append(EvalBatch(**{**batch.__dict__, "cache": {}}))
        del batch
    if not started:
        raise T2IError("evaluation stream gave no images")
    protocol = dict(
        getattr(stream, "protocol", None) or (ctx.samples.protocol if ctx.samples else {})
    )
    if legacy:
        if ctx.samples is None:
            seed = int(protocol.get("noise_seed", 0))
            gen_seconds = float(getattr(stream, "seconds", 0.0) or 0.0)
            ctx.samples = EvalSamples.from_batches(legacy, seed, gen_seconds, protocol)
        legacy.clear()
    for r in runs:
        if r.error is not None:
            continue
        fn = r.metric.finish if r.streaming else (lambda r=r: r.metric.compute(ctx))
        r.result = _step(r, ctx, strict, fn)
    generation = float(getattr(stream, "seconds", 0.0) or 0.0)
    seconds: dict[str, float] = {"generation": round(generation, 2)}
    results: dict[str, Any] = {}
    for r in runs:
        if r.error is not None or r.result is None:
            results[r.key] = {"error": r.error or "no result", "params": _params_of(r.slot)}
            continue
        entry = r.result.as_dict()
        entry["params"] = _params_of(r.slot)
        entry["protocol"]["seconds"] = round(r.seconds, 2)
        results[r.key] = entry
        seconds[r.key] = entry["protocol"]["seconds"]
    protocol.update((header or {}).pop("protocol", {}))
    protocol["batch_size"] = ctx.batch_size
    protocol["device"] = str(ctx.device)
    protocol["versions"] = versions()
    protocol["seconds"] = seconds
    report: dict[str, Any] = dict(header or {})
    report["results"] = results
    report["table"] = table_rows(results)
    report["protocol"] = protocol
    if ctx.registry is not None:
        from ..recipe.validate import plugin_versions

        report["plugins"] = plugin_versions(ctx.recipe, ctx.registry, [s for _, s, _ in metrics])
    if out_dir is not None:
        write_metrics(report, out_dir)
    return report


class _Counted:
    """A stream that advances a progress bar by each batch's images (and keeps its protocol)."""

    def __init__(self, stream: Iterable[EvalBatch], bar: Any):
        self._stream, self._bar = stream, bar

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def __iter__(self) -> Iterator[EvalBatch]:
        try:
            for batch in self._stream:
                self._bar.update(len(batch.captions) if hasattr(batch, "captions") else 1)
                yield batch
        finally:
            self._bar.close()


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


def evaluation_folder(run_dir: Path, slots: list[MetricSlot], num_samples: int, seed: int) -> Path:
    """Where ``t2i-stages eval`` writes: ``RUN/evals/<metrics>-n<N>-seed<S>-<time>/``, so that
    the training-time ``metrics.json`` and earlier evaluations stay as they were."""
    names = "+".join(dict.fromkeys(s.type for s in slots))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = run_dir / "evals" / f"{names}-n{num_samples}-seed{seed}-{stamp}"
    out, k = base, 1
    while out.exists():
        k += 1
        out = base.with_name(f"{base.name}-{k}")
    return out


def evaluate_samples(
    ctx: EvalContext,
    metrics: list[tuple[str, MetricSlot, Any]],
    out_dir: str | Path | None = None,
    header: dict[str, Any] | None = None,
    strict: bool = True,
) -> dict[str, Any]:
    """``evaluate_stream`` over ``ctx.samples`` (images already in memory), ``ctx.batch_size``
    at a time; kept for callers that gathered every image themselves."""
    samples = ctx.samples
    if samples is None:
        raise T2IError("evaluate_samples needs ctx.samples; use evaluate_stream")

    class _Stored:
        protocol, seconds, num_samples = samples.protocol, samples.seconds, len(samples)

        def __iter__(self) -> Iterator[EvalBatch]:
            return samples.batches(ctx.batch_size)

    return evaluate_stream(ctx, metrics, _Stored(), out_dir, header, strict)


def _params_of(slot: MetricSlot) -> dict[str, Any]:
    resolved = slot.resolved
    return json.loads(resolved.model_dump_json()) if resolved is not None else dict(slot.params)


def write_metrics(report: dict[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    js, md = out / "metrics.json", out / "metrics.md"
    tmp = js.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2, default=_json_default), encoding="utf-8")
    tmp.replace(js)
    md.write_text(format_table(report), encoding="utf-8")
    return js, md


def _json_default(v: Any) -> Any:
    if hasattr(v, "item"):
        return v.item()
    if hasattr(v, "tolist"):
        return v.tolist()
    return str(v)


# ---------------------------------------------------------------------------- entry points


def evaluate_run_dir(
    run_dir: str | Path,
    metrics: Iterable[str] | None = None,
    num_samples: int | None = None,
    batch_size: int | None = None,
    noise_seed: int = NOISE_SEED,
    device: str = "cpu",
    out_dir: str | Path | None = None,
    checkpoint: str | Path | None = None,
    log: Callable[[str], None] = print,
    progress: bool = False,
    tensorboard: bool = True,
) -> dict[str, Any]:
    """Evaluate a trained run folder (``t2i-stages eval``).

    Writes metrics.json/.md into ``out_dir``, by default a new folder under ``RUN/evals/``
    named by the metrics, sample count, seed and time (``report["folder"]``): the training-time
    ``metrics.json`` and earlier evaluations are kept. The headline numbers also go to the
    run's TensorBoard log under ``eval/<that folder>/``.
    """
    from ..api import load_run
    from ..checkpoint import latest_good_checkpoint, load_checkpoint
    from ..registry import load_registry

    run_dir = Path(run_dir)
    registry = load_registry()
    run = load_run(run_dir, device=device, registry=registry, checkpoint=checkpoint)
    recipe = run.recipe
    cfg = recipe.eval
    G = run.generator
    resolutions = list(getattr(G, "resolutions", []) or [])
    test = registry.build(
        "dataset", recipe.data.dataset, split="test", resolutions=resolutions or None
    )
    matcher = None
    if recipe.matcher is not None:
        if recipe.text_encoder is None:
            matcher = run.text_encoder
        else:
            ckpt = (
                load_checkpoint(Path(checkpoint))
                if checkpoint
                else latest_good_checkpoint(run_dir / "checkpoints")
            )
            vocab = run.vocab
            matcher = registry.build("matcher", recipe.matcher, vocab=vocab, vocab_size=len(vocab))
            if ckpt is not None and "matcher" in ckpt.components:
                matcher.load_state_dict(ckpt.components["matcher"], strict=False)
            matcher = matcher.to(run.device).eval().requires_grad_(False)
    slots = choose_slots(recipe, registry, metrics, matcher is not None, test)
    if not slots:
        raise T2IError(f"{run_dir}: no metrics to compute (give --metrics or eval.metrics)")
    built = build_metrics(slots, registry, run.device)

    from ..hardware import autocast, resolve_precision

    choice = resolve_precision(cfg.precision, run.device, what="eval.precision")

    @torch.no_grad()
    def generate(batch: dict, z: torch.Tensor, eps: torch.Tensor | None):
        tokens, mask = batch["tokens"].to(run.device), batch["mask"].to(run.device)
        with autocast(choice.chosen, run.device):
            text = run.text_encoder.encode_text(tokens, mask)
            return G(z.to(run.device), eps.to(run.device) if eps is not None else None, text)

    n = num_samples or cfg.num_samples
    bs = batch_size or cfg.batch_size
    log(f"eval: generating {min(n, len(test))} images from the test captions")
    stream = stream_samples(test, generate, G.z_dim, G.eps_dim, n, bs, noise_seed)
    ctx = EvalContext(
        registry=registry,
        device=run.device,
        recipe=recipe,
        test_data=test,
        matcher=matcher,
        vocab=run.vocab,
        train_data_fn=lambda: registry.build(
            "dataset", recipe.data.dataset, split="train", resolutions=resolutions or None
        ),
        batch_size=bs,
        log=log,
        num_samples=stream.num_samples,
    )
    header = {
        "run": str(run_dir),
        "step": run.step,
        "protocol": {
            "generator": "ema (the raw generator when the checkpoint has no EMA copy)",
            "source": "t2i-stages eval",
            "precision": choice.to_dict(),
        },
    }
    folder = (
        Path(out_dir)
        if out_dir
        else evaluation_folder(run_dir, slots, stream.num_samples, noise_seed)
    )
    report = evaluate_stream(ctx, built, stream, folder, header, strict=True, progress=progress)
    report["folder"] = str(folder)
    if tensorboard:
        log_to_tensorboard(report, run_dir / "tb", int(run.step or 0), prefix=f"eval/{folder.name}")
    return report


def evaluate_trainer(trainer: Any, out_dir: str | Path, strict: bool = False) -> dict[str, Any]:
    """End-of-training evaluation of a live ``Trainer`` through the same path."""
    recipe, registry = trainer.recipe, trainer.registry
    cfg = recipe.eval
    test = trainer.assembly.test_data
    slots = choose_slots(recipe, registry, None, trainer.assembly.matcher is not None, test)
    header: dict[str, Any] = {
        "run": str(out_dir),
        "step": trainer.step,
        "protocol": {
            "generator": "ema" if trainer.ema is not None else "raw",
            "source": "end of training",
        },
    }
    if trainer.assembly.matcher_report:
        header["matcher"] = trainer.assembly.matcher_report
    header["runtime"] = trainer.runtime.choices()
    if getattr(trainer, "stop", None) is not None:
        header["stopped_by"] = trainer.stop.text()
        header["training"] = trainer.stop.to_dict()
    if not slots:  # nothing to score: record the protocol only
        report = {k: v for k, v in header.items() if k != "protocol"}
        report.update(results={}, table=[])
        report["protocol"] = {
            "num_samples": min(cfg.num_samples, len(test)),
            "split": "test",
            "noise_seed": NOISE_SEED,
            **header["protocol"],
            "versions": versions(),
        }
        from ..recipe.validate import plugin_versions

        report["plugins"] = plugin_versions(recipe, registry)
        write_metrics(
            report | {"protocol": report["protocol"] | {"resolution": "-", "images": "none"}},
            out_dir,
        )
        return report
    built = build_metrics(slots, registry, trainer.runtime.device)
    G = trainer.sampler_generator
    from ..hardware import autocast, resolve_precision

    choice = resolve_precision(cfg.precision, trainer.runtime.device, what="eval.precision")
    header["protocol"]["precision"] = choice.to_dict()

    def generate(batch: dict, z: torch.Tensor, eps: torch.Tensor | None):
        with autocast(choice.chosen, trainer.runtime.device):
            return trainer.generate(batch, z, eps)

    stream = stream_samples(
        test, generate, G.z_dim, G.eps_dim, cfg.num_samples, cfg.batch_size, NOISE_SEED
    )
    train = trainer.assembly.train_data
    ctx = EvalContext(
        registry=registry,
        device=trainer.runtime.device,
        recipe=recipe,
        test_data=test,
        matcher=trainer.assembly.matcher,
        vocab=getattr(train, "vocab", None),
        train_data_fn=lambda: train,
        batch_size=cfg.batch_size,
        log=trainer.log,
        num_samples=stream.num_samples,
    )
    report = evaluate_stream(ctx, built, stream, out_dir, header, strict=strict)
    log_to_tensorboard(report, Path(out_dir) / "tb", trainer.step)
    return report
