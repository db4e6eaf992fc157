"""Evaluation shared by training and ``t2i-stages eval``: streamed samples, extractors,
distances, runner. Metrics consume batches (``start``/``update``/``finish``) and keep features.

from t2i_stages.evaluation import evaluate_run_dir
report = evaluate_run_dir("runs/grgan", metrics=["fid:extractor=matcher", "r_precision"])
report = evaluate_images("samples/", "samples/captions.jsonl", run="runs/grgan")  # given images
"""

from __future__ import annotations

from .context import EvalContext, Metric, MetricResult, StreamingMetric, is_streaming
from .distances import (
    CMD_FORMS,
    GaussianStats,
    cmd,
    cmd_from_stats,
    frechet_distance,
    inception_score_from_probs,
    itdis,
    kernel_distance,
    stats_distance,
)
from .image_runner import evaluate_images
from .image_stream import ImageStream
from .images import ImageFolder, read_image_folder
from .report import format_table
from .runner import (
    evaluate_run_dir,
    evaluate_samples,
    evaluate_stream,
    evaluate_trainer,
)
from .samples import (
    EvalBatch,
    EvalSamples,
    SampleStream,
    collect_samples,
    samples_from_real,
    stream_from_real,
    stream_samples,
)
from .slots import parse_metric_spec

__all__ = [
    "CMD_FORMS",
    "EvalBatch",
    "EvalContext",
    "EvalSamples",
    "GaussianStats",
    "ImageFolder",
    "ImageStream",
    "Metric",
    "MetricResult",
    "SampleStream",
    "StreamingMetric",
    "cmd",
    "cmd_from_stats",
    "collect_samples",
    "evaluate_images",
    "evaluate_run_dir",
    "evaluate_samples",
    "evaluate_stream",
    "evaluate_trainer",
    "format_table",
    "frechet_distance",
    "inception_score_from_probs",
    "is_streaming",
    "itdis",
    "kernel_distance",
    "parse_metric_spec",
    "read_image_folder",
    "samples_from_real",
    "stats_distance",
    "stream_from_real",
    "stream_samples",
]
