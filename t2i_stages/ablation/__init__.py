"""Ablation studies: one base recipe, variants given as ``--set`` overrides, several seeds.

Python API::

    from t2i_stages.ablation import run_ablation, plan_ablation
    plan = plan_ablation("recipes/ablations/grgan-stages.yaml")   # validates every run
    result = run_ablation("recipes/ablations/grgan-stages.yaml", ["train.max_steps=200"])
    result.table_md, result.table_csv, result.chart
    run_ablation(path, launch=LaunchSettings("ray", address="auto", gpus_per_run=0.25))

``t2i-stages ablate`` is the command-line face of :func:`run_ablation`.
"""

from .execute import RunOutcome, RunTask, execute_run, run_task
from .launchers import LAUNCHERS, Launcher, LaunchSettings, LocalLauncher, make_launcher
from .plan import (
    AblationPlan,
    PlannedRun,
    diff_paths,
    override_roots,
    plan_ablation,
    remove_paths,
    unexplained_differences,
)
from .records import restore_records, save_records
from .report import Cell, ClaimResult, Row, RunResult, aggregate, claim_results, lookup
from .runner import AblationResult, ablate_command, run_ablation, write_comparison
from .spec import (
    Ablation,
    AblationError,
    Claim,
    MetricSpec,
    RunResources,
    Variant,
    read_ablation,
    variant_base,
)
from .stats import Comparison, bootstrap_mean_ci, compare

__all__ = [
    "Ablation",
    "AblationError",
    "AblationPlan",
    "AblationResult",
    "Cell",
    "Claim",
    "ClaimResult",
    "Comparison",
    "LAUNCHERS",
    "LaunchSettings",
    "Launcher",
    "LocalLauncher",
    "MetricSpec",
    "PlannedRun",
    "Row",
    "RunOutcome",
    "RunResources",
    "RunTask",
    "RunResult",
    "Variant",
    "ablate_command",
    "aggregate",
    "bootstrap_mean_ci",
    "claim_results",
    "compare",
    "diff_paths",
    "execute_run",
    "lookup",
    "make_launcher",
    "override_roots",
    "plan_ablation",
    "read_ablation",
    "remove_paths",
    "restore_records",
    "run_ablation",
    "run_task",
    "save_records",
    "unexplained_differences",
    "variant_base",
    "write_comparison",
]
