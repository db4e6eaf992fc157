"""The one evaluation path: training's end-of-run evaluation and ``t2i-stages eval`` both use it.

``evaluate_stream`` feeds the generated batches to every metric plugin (each keeps features,
not images) and writes ``metrics.json`` (every number with its protocol) and ``metrics.md`` (a
table). ``evaluate_run_dir`` builds the context from a run folder (newest good checkpoint, EMA
generator); ``evaluate_trainer`` from a live ``Trainer``. Both draw the same samples
(``samples.stream_samples``) for the same seed and batch size. ``image_runner.evaluate_images``
scores given images through the same stream and report.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import torch

from ..errors import T2IError
from ..recipe import protocols
from ..recipe.slots import MetricSlot
from .context import EvalContext, MetricResult, is_streaming
from .report import log_to_tensorboard, params_of, table_rows, versions, write_metrics
from .samples import EvalBatch, stream_samples
from .slots import build_metrics, choose_slots

NOISE_SEED = 100


class _Running:
    """One metric's place in a streamed evaluation: its time so far and its error, if any."""

    def __init__(self, key: str, slot: MetricSlot, metric: Any):
        if not is_streaming(metric):
            raise T2IError(
                f"metric '{key}' ({type(metric).__name__}) has no start/update/finish; a metric "
                "streams (t2i_stages.evaluation.StreamingMetric)"
            )
        self.key, self.slot, self.metric = key, slot, metric
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

    Metrics (``start``/``update``/``finish``) keep only their own per-image features or sums,
    so no image outlives its batch. With ``strict=False`` a metric that fails with a user error is recorded as
    ``{"error": ...}`` and the others still run (training's end-of-run evaluation must not lose
    the run).
    """
    runs = [_Running(key, slot, metric) for key, slot, metric in metrics]
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
                _step(r, ctx, strict, lambda r=r: r.metric.start(ctx))
            started = True
        for r in runs:
            if r.error is None:
                _step(r, ctx, strict, lambda r=r, b=batch: r.metric.update(b))
        del batch
    if not started:
        raise T2IError("evaluation stream gave no images")
    protocol = dict(
        getattr(stream, "protocol", None) or (ctx.samples.protocol if ctx.samples else {})
    )
    for r in runs:
        if r.error is None:
            r.result = _step(r, ctx, strict, r.metric.finish)
    generation = float(getattr(stream, "seconds", 0.0) or 0.0)
    made = getattr(stream, "seconds_label", "generation")  # given images are read, not made
    seconds: dict[str, float] = {made: round(generation, 2)}
    results: dict[str, Any] = {}
    for r in runs:
        if r.error is not None or r.result is None:
            results[r.key] = {"error": r.error or "no result", "params": params_of(r.slot)}
            continue
        entry = r.result.as_dict()
        entry["params"] = params_of(r.slot)
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


def evaluation_folder(
    run_dir: Path, slots: list[MetricSlot], num_samples: int, seed: int | None
) -> Path:
    """Where ``t2i-stages eval`` writes: ``RUN/evals/<metrics>-n<N>-seed<S>-<time>/``, so that
    the training-time ``metrics.json`` and earlier evaluations stay as they were (``eval
    --images DIR``: ``DIR/evals/<metrics>-n<N>-<time>/``, no noise seed)."""
    names = "+".join(dict.fromkeys(s.type for s in slots))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    seeded = f"-seed{seed}" if seed is not None else ""
    base = run_dir / "evals" / f"{names}-n{num_samples}{seeded}-{stamp}"
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
    protocol: str | None = None,
) -> dict[str, Any]:
    """Evaluate a trained run folder (``t2i-stages eval``).

    Writes metrics.json/.md into ``out_dir``, by default a new folder under ``RUN/evals/``
    named by the metrics, sample count, seed and time (``report["folder"]``): the training-time
    ``metrics.json`` and earlier evaluations are kept. The headline numbers also go to the
    run's TensorBoard log under ``eval/<that folder>/``. ``protocol`` evaluates under that
    preset (``recipe.protocols``) instead of the run's ``eval`` section; ``metrics`` and
    ``num_samples`` still win over it.
    """
    from ..api import load_run
    from ..build import assemble
    from ..registry import load_registry

    run_dir = Path(run_dir)
    registry = load_registry()
    run = load_run(run_dir, device=device, registry=registry, checkpoint=checkpoint)
    metrics = list(metrics) if metrics is not None else None
    recipe = run.recipe
    if protocol is not None:
        recipe = protocols.with_protocol(recipe, protocol, registry)
    cfg = recipe.eval
    G = run.generator
    resolutions = list(getattr(G, "resolutions", []) or [])
    data = assemble(recipe, registry, parts=["data"], splits=["test"], resolutions=resolutions)
    test, matcher = data.test_data, run.matcher
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
    stream = stream_samples(
        test, generate, G.z_dim, G.eps_dim, n, bs, noise_seed, protocols.passes(cfg)
    )
    log(f"eval: generating {stream.num_samples} images from the test captions")
    ctx = EvalContext(
        registry=registry,
        device=run.device,
        recipe=recipe,
        test_data=test,
        matcher=matcher,
        vocab=run.vocab,
        train_data_fn=lambda: (
            assemble(
                recipe, registry, parts=["data"], splits=["train"], resolutions=resolutions
            ).train_data
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
    preset = protocols.preset_block(
        cfg,
        registry,
        {"metrics": metrics, "num_samples": num_samples},
        "eval --protocol" if protocol else "eval.protocol",
    )
    if preset is not None:
        header["protocol_preset"] = preset
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
        test, generate, G.z_dim, G.eps_dim, cfg.num_samples, cfg.batch_size, NOISE_SEED,
        protocols.passes(cfg),
    )  # fmt: skip
    preset = protocols.preset_block(cfg, registry)
    if preset is not None:
        header["protocol_preset"] = preset
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
