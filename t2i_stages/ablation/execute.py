"""One run of a study, executed the same way whatever launched it: train or resume, then mark it.

The local launcher calls :func:`execute_run` in the study's own process. The processes and Ray
launchers send a :class:`RunTask` (plain data) to another process, where :func:`run_task`
rebuilds the run from the ablation file, checks that it is the run the study planned (the same
recipe hash), takes the run's lock (two launchers never train one folder at once), re-reads the
folder (a run finished meanwhile is skipped) and calls :func:`execute_run`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..registry import Registry
from .plan import MARKER, PlannedRun
from .spec import AblationError

LAUNCH_RECORD = "launch.json"  # in a run folder: where and how its last attempt ran
LAUNCH_LOG = "launch.log"  # in a run folder: its console under a concurrent launcher
LAUNCH_DIR = ".launch"  # in the study folder: run locks, the processes launcher's task files
ENV_PREFIX = "T2I_STAGES_"  # the study's settings that travel with every task


def run_key(run: PlannedRun) -> str:
    return f"{run.variant.name}/seed-{run.seed}"


@dataclass
class RunOutcome:
    """How one run's attempt ended.

    ``status``: ``done`` (trained and marked finished), ``stopped`` (a signal stopped it after a
    checkpoint; the next launch resumes it), ``failed`` (``error`` says why), ``skipped``
    (finished before this attempt), ``busy`` (another process holds its lock), ``cancelled``
    (never started: the study stopped first).
    """

    key: str
    status: str
    step: int | None = None
    signal: str | None = None
    seconds: float = 0.0
    error: str | None = None
    advice: str | None = None  # the stop banner's advice (e.g. max_minutes cut the run short)
    claimed: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunOutcome:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def write_marker(run: PlannedRun, summary: dict[str, Any]) -> None:
    """``ablation-run.json``: the run finished with this recipe (what skipping relies on)."""
    info = {
        "variant": run.variant.name,
        "seed": run.seed,
        "recipe_sha256": run.recipe_hash,
        "step": summary.get("step"),
        "train_seconds": round(float(summary.get("seconds", 0.0)), 2),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    tmp = run.out / (MARKER + ".tmp")
    tmp.write_text(json.dumps(info, indent=2), encoding="utf-8")
    tmp.replace(run.out / MARKER)


def execute_run(
    run: PlannedRun,
    registry: Registry,
    device: str | None = None,
    log: Callable[..., None] = print,
    resume_command: str | None = None,
    resume: bool | None = None,
) -> RunOutcome:
    """Train (or resume: default when its folder exists) and evaluate one run, then mark it
    finished. A run a signal stops is ``stopped``, with its checkpoint, and not marked."""
    from ..training import train

    summary = train(
        run.recipe,
        registry,
        out_dir=run.out,
        resume=run.out.exists() if resume is None else resume,
        device=device,
        evaluate=True,
        log=log,
        resume_command=resume_command,
    )
    key, step = run_key(run), summary.get("step")
    if summary.get("signal"):
        return RunOutcome(key, "stopped", step=step, signal=summary["signal"])
    write_marker(run, summary)
    run.status = "done"
    advice = summary.get("stop", {}).get("advice")
    return RunOutcome(
        key, "done", step=step, seconds=float(summary.get("seconds", 0.0)), advice=advice
    )


# ----------------------------------------------------------------------------- other processes


@dataclass
class RunTask:
    """Everything another process needs to run one run of a study, as plain data (JSON)."""

    ablation: str  # the ablation file, absolute
    overrides: list[str]
    study: str  # the study folder, absolute
    variant: str
    seed: int
    recipe_sha256: str  # what the study planned; a worker that rebuilds another recipe refuses
    resume_command: str
    launcher: str
    device: str | None = None
    threads: int | None = None  # torch threads (T2I_STAGES_THREADS) when the recipe sets none
    cwd: str = "."  # the study's working folder (relative paths in --set values)
    env: dict[str, str] = field(default_factory=dict)  # the study's T2I_STAGES_* variables
    log_file: bool = False  # send the console to the run folder's launch.log (Ray)
    resume: bool | None = None  # None: resume when the run folder exists

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunTask:
        return cls(**data)

    @property
    def key(self) -> str:
        return f"{self.variant}/seed-{self.seed}"

    @property
    def out(self) -> Path:
        return Path(self.study) / self.variant / f"seed-{self.seed}"


def study_env() -> dict[str, str]:
    """The study process's ``T2I_STAGES_*`` variables (cache home, plugin selection): a worker
    must see the plugins the plan was validated with."""
    return {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIX)}


def thread_env(threads: int) -> dict[str, str]:
    """What pins a process to ``threads`` CPU threads (torch, OpenMP, MKL)."""
    n = str(max(1, int(threads)))
    return {"T2I_STAGES_THREADS": n, "OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n}


@contextlib.contextmanager
def run_lock(study: Path, key: str) -> Iterator[bool]:
    """Hold the run's lock (``flock`` in the study's .launch/ folder); yields False when another
    process holds it."""
    folder = Path(study) / LAUNCH_DIR / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / (key.replace("/", ".") + ".lock"), "a+b") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextlib.contextmanager
def _console(path: Path | None) -> Iterator[None]:
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8", buffering=1) as fh:
        with contextlib.redirect_stdout(fh), contextlib.redirect_stderr(fh):
            yield


def _record(out: Path, data: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / (LAUNCH_RECORD + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    tmp.replace(out / LAUNCH_RECORD)


def _error_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def run_task(task_data: dict[str, Any], claimed: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run one task in this process and return its :class:`RunOutcome` as a dict.

    ``claimed`` is what the launcher gave the run (CPUs, GPUs), recorded in launch.json.
    A failure is returned as ``failed`` with its first line (the traceback goes to the log),
    so one broken run does not take the study's other runs down.
    """
    from ..registry import load_registry
    from .plan import replan_run

    task = RunTask.from_dict(task_data)
    os.environ.update(task.env)
    if task.threads:
        os.environ.update(thread_env(task.threads))
    if os.path.isdir(task.cwd):
        os.chdir(task.cwd)
    out, started = task.out, time.time()
    resume = out.exists() if task.resume is None else task.resume  # before anything is written
    claimed = dict(claimed or {})
    with run_lock(Path(task.study), task.key) as held:
        if not held:
            return RunOutcome(task.key, "busy", claimed=claimed).to_dict()
        with _console(out / LAUNCH_LOG if task.log_file else None):
            record = {
                "launcher": task.launcher,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "claimed": claimed,
                "threads": task.threads,
                "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "started_at": started,  # seconds since the epoch: when runs overlapped
            }
            try:
                registry = load_registry()
                run = replan_run(
                    task.ablation, task.overrides, task.study, task.variant, task.seed, registry
                )
                if run.recipe_hash != task.recipe_sha256:
                    raise AblationError(
                        f"{task.ablation}: {task.key} resolves to another recipe than the study "
                        "planned (a file changed since); start the study again"
                    )
                if run.status == "done":
                    return RunOutcome(task.key, "skipped", claimed=claimed).to_dict()
                _record(out, record)
                print(f"ablate: {task.key} on {record['host']} (pid {record['pid']}), {claimed}")
                outcome = execute_run(
                    run, registry, task.device, print, task.resume_command, resume
                )
            except Exception as exc:  # reported to the study; the traceback stays in the log
                traceback.print_exc(file=sys.stderr)
                outcome = RunOutcome(task.key, "failed", error=_error_line(exc))
            outcome.claimed = claimed
            outcome.seconds = outcome.seconds or time.time() - started
            record.update(
                finished=time.strftime("%Y-%m-%dT%H:%M:%S"),
                finished_at=time.time(),
                outcome=outcome.status,
            )
            if out.exists():
                _record(out, record)
            return outcome.to_dict()
