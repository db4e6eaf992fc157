"""Evaluation shared by training and ``t2i-stages eval``: samples, extractors, distances, runner.

from t2i_stages.evaluation import evaluate_run_dir
report = evaluate_run_dir("runs/grgan", metrics=["fid:extractor=matcher", "r_precision"])
"""

from __future__ import annotations

from .context import EvalContext, Metric, MetricResult
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
from .runner import (
    evaluate_run_dir,
    evaluate_samples,
    evaluate_trainer,
    format_table,
    parse_metric_spec,
)
from .samples import EvalSamples, collect_samples, samples_from_real

__all__ = [
    "CMD_FORMS",
    "EvalContext",
    "EvalSamples",
    "GaussianStats",
    "Metric",
    "MetricResult",
    "cmd",
    "cmd_from_stats",
    "collect_samples",
    "evaluate_run_dir",
    "evaluate_samples",
    "evaluate_trainer",
    "format_table",
    "frechet_distance",
    "inception_score_from_probs",
    "itdis",
    "kernel_distance",
    "parse_metric_spec",
    "samples_from_real",
    "stats_distance",
]
