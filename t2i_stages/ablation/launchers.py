"""Where a study's runs execute: one after another here, as N local processes, or on Ray.

A launcher is chosen by name (``--launcher local|processes|ray``) and given the runs that are
not finished; it yields each run's :class:`~.execute.RunOutcome` as the run ends. Every launcher
runs a run through the same function (``execute.execute_run``), so a run's folder, its resume
and its metrics do not depend on where it ran. ``local`` is the study's own process, as before
launchers existed; ``processes`` and ``ray`` run several at once, each run with the CPUs (torch
threads) and GPUs it claims.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import T2IError
from ..hardware import cpu_info
from ..registry import Registry
from .execute import RunOutcome, RunTask, execute_run, run_key, study_env
from .plan import AblationPlan, PlannedRun

LAUNCHERS = ("local", "processes", "ray")


@dataclass
class LaunchSettings:
    """How to launch a study's runs (the ``ablate`` flags; None = the study file's or default).

    ``cpus_per_run`` is each run's torch threads and, on Ray, its ``num_cpus`` claim;
    ``gpus_per_run`` its GPU claim, fractional to pack several runs onto one GPU (0.25: four
    runs share a GPU). ``jobs`` is how many runs the processes launcher keeps going at once;
    ``address`` the Ray cluster to join (None: start a local one).
    """

    launcher: str = "local"
    jobs: int | None = None
    address: str | None = None
    cpus_per_run: int | None = None
    gpus_per_run: float | None = None
    ray_init: dict[str, Any] = field(default_factory=dict)  # extra ray.init() arguments

    def check(self) -> None:
        """One-line errors for settings that do not fit the launcher."""
        if self.launcher not in LAUNCHERS:
            raise T2IError(f"--launcher {self.launcher}: choose one of {', '.join(LAUNCHERS)}")
        if self.jobs is not None and self.launcher != "processes":
            raise T2IError(f"--jobs applies to --launcher processes, not {self.launcher}")
        if self.jobs is not None and self.jobs < 1:
            raise T2IError(f"--jobs {self.jobs}: must be at least 1")
        if self.address is not None and self.launcher != "ray":
            raise T2IError(f"--address applies to --launcher ray, not {self.launcher}")
        claims = self.cpus_per_run is not None or self.gpus_per_run is not None
        if claims and self.launcher == "local":
            raise T2IError(
                "--cpus-per-run/--gpus-per-run apply to --launcher processes or ray; the local "
                "launcher runs one run at a time with the recipe's train.threads"
            )
        if self.cpus_per_run is not None and self.cpus_per_run < 1:
            raise T2IError(f"--cpus-per-run {self.cpus_per_run}: must be at least 1")
        if self.gpus_per_run is not None:
            check_gpu_share(self.gpus_per_run, "--gpus-per-run")
        if self.launcher == "ray":
            from .launch_ray import import_ray

            import_ray()  # not installed: one line now, before the study is planned


def check_gpu_share(gpus: float, what: str) -> float:
    """A GPU claim is a share of one GPU (0 < g < 1) or a whole number of GPUs."""
    if gpus < 0 or (gpus > 1 and gpus != int(gpus)):
        raise T2IError(f"{what} {gpus:g}: give a share of one GPU (0.25) or whole GPUs (1, 2)")
    return gpus


@dataclass
class Study:
    """What every launcher is handed: the plan, and how the study's process runs and logs."""

    plan: AblationPlan
    registry: Registry
    resume_command: str
    device: str | None = None
    log: Callable[..., None] = print
    train_log: Callable[..., None] | None = None
    total: int = 0
    index: dict[str, int] = field(default_factory=dict)  # run key -> its number in the plan

    def task(self, run: PlannedRun, launcher: str, threads: int | None, log_file: bool) -> RunTask:
        """The run as plain data for another process (absolute paths: it may run elsewhere)."""
        plan = self.plan
        return RunTask(
            ablation=str(Path(plan.path).resolve()),
            overrides=list(plan.overrides),
            study=str(Path(plan.out).resolve()),
            variant=run.variant.name,
            seed=run.seed,
            recipe_sha256=run.recipe_hash,
            resume_command=self.resume_command,
            launcher=launcher,
            device=self.device,
            threads=threads,
            cwd=os.getcwd(),
            env=study_env(),
            log_file=log_file,
        )


class Launcher:
    """Runs a study's unfinished runs and yields their outcomes as they end."""

    name = "base"
    concurrent = True  # several runs at once: the study goes on when one run stops or fails
    slots = 1  # runs at once, for the time estimate

    def __init__(self) -> None:
        self.stopped_by: str | None = None  # the signal that stopped the study, if any

    def describe(self) -> str:
        return self.name

    def launch(self, study: Study, runs: list[PlannedRun]) -> Iterator[RunOutcome]:
        raise NotImplementedError


class LocalLauncher(Launcher):
    """One run after another in this process: what ``ablate`` always did (the default). A
    failure propagates, and a signal stops the whole study."""

    name = "local"
    concurrent = False

    def launch(self, study: Study, runs: list[PlannedRun]) -> Iterator[RunOutcome]:
        for run in runs:
            k = study.index[run_key(run)]
            verb = "resuming" if run.status == "resume" else "training"
            study.log(f"ablate: [{k}/{study.total}] {run.label}: {verb} in {run.out}")
            outcome = execute_run(
                run,
                study.registry,
                study.device,
                study.train_log or study.log,
                study.resume_command,
            )
            if outcome.status == "stopped":
                self.stopped_by = outcome.signal
            yield outcome
            if self.stopped_by:
                return


def usable_cores() -> int:
    return cpu_info(with_torch=False).usable_cores


def make_launcher(
    settings: LaunchSettings, plan: AblationPlan, device: str | None = None
) -> Launcher:
    """The launcher the settings name, its claims filled in from the study file's
    ``resources``; ``ray`` is imported only here, and only for ``--launcher ray``.

    Under processes and Ray a run without a GPU claim sees no GPU (Ray's rule for
    ``num_gpus=0``), so ``--device cuda`` needs ``--gpus-per-run``."""
    settings.check()
    res = plan.spec.resources
    cpus = settings.cpus_per_run if settings.cpus_per_run is not None else res.cpus
    gpus = settings.gpus_per_run if settings.gpus_per_run is not None else res.gpus
    if settings.launcher == "local":
        return LocalLauncher()
    if device and device.startswith("cuda") and not gpus:
        raise T2IError(
            f"--device {device} with --launcher {settings.launcher}: give each run its GPU share "
            "with --gpus-per-run (or the study file's resources.gpus)"
        )
    if settings.launcher == "processes":
        from .launch_processes import ProcessLauncher

        return ProcessLauncher.for_machine(settings.jobs, cpus, gpus, usable_cores())
    from .launch_ray import RayLauncher

    return RayLauncher(settings.address, cpus or 1, gpus, settings.ray_init)
