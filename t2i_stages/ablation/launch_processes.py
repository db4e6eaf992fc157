"""``--launcher processes``: a study's runs as N concurrent local processes.

Each run is a child ``python -m t2i_stages.ablation.worker TASK RESULT`` with its console in the
run folder's ``launch.log`` and its torch threads pinned (``T2I_STAGES_THREADS``, OpenMP, MKL) so
that N x threads stays within the cores: oversubscribed CPU threads made PyTorch up to 12x
slower here (docs/training.md, "Threads"). With ``gpus_per_run`` each child sees only its GPU
(``CUDA_VISIBLE_DEVICES``); a share below 1 packs several children onto one GPU.

Children run in their own session, so a Ctrl-C at the terminal reaches the study alone: it
stops starting runs and passes the signal on once (each running child finishes its step,
checkpoints and exits; the next launch resumes it). A second Ctrl-C stops the children at once.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ..errors import T2IError
from ..signals import StopRequests
from .execute import LAUNCH_DIR, LAUNCH_LOG, RunOutcome, RunTask, run_key, thread_env
from .launchers import Launcher, Study
from .plan import PlannedRun


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as CUDA_VISIBLE_DEVICES names them (or by index)."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [d.strip() for d in listed.split(",") if d.strip() and d.strip() != "-1"]
    try:
        import torch

        return [str(i) for i in range(torch.cuda.device_count())]
    except ImportError:
        return []


def gpu_slots(gpus: list[str], per_run: float) -> list[str]:
    """CUDA_VISIBLE_DEVICES for each concurrent run: ``per_run`` < 1 packs floor(1/per_run)
    runs onto every GPU (spread over the GPUs first), a whole number gives each run that many
    GPUs of its own."""
    if per_run <= 0:
        return []
    if not gpus:
        raise T2IError(f"--gpus-per-run {per_run:g}: no CUDA GPU is visible on this machine")
    if per_run < 1:
        per_gpu = math.floor(1 / per_run + 1e-9)
        return [g for _ in range(per_gpu) for g in gpus]
    whole = int(per_run)
    if whole > len(gpus):
        raise T2IError(f"--gpus-per-run {whole}: this machine has {len(gpus)} GPU(s)")
    return [",".join(gpus[i * whole : (i + 1) * whole]) for i in range(len(gpus) // whole)]


@dataclass
class _Child:
    run: PlannedRun
    proc: subprocess.Popen
    result: Path
    log: IO[bytes]
    slot: int


class ProcessLauncher(Launcher):
    """Up to ``jobs`` runs at once as child processes of this one."""

    name = "processes"
    poll_seconds = 0.2

    def __init__(self, jobs: int, threads: int, slots: list[str] | None = None, warning=None):
        super().__init__()
        self.jobs, self.threads, self.gpu_slots = jobs, threads, slots or []
        self.slots, self.warning = jobs, warning

    @classmethod
    def for_machine(
        cls, jobs: int | None, cpus: int | None, gpus: float, cores: int, gpus_seen=None
    ) -> ProcessLauncher:
        """Fill in what was not given: the jobs from the GPU slots or the cores, and each
        child's threads from its CPU claim or an equal share of the cores."""
        slots = gpu_slots(visible_gpus() if gpus_seen is None else gpus_seen, gpus)
        if slots and jobs is not None and jobs > len(slots):
            raise T2IError(
                f"--jobs {jobs} with --gpus-per-run {gpus:g}: {len(slots)} run(s) fit on the "
                "visible GPU(s)"
            )
        if jobs is None:
            jobs = len(slots) if slots else max(1, cores // (cpus or 1))
        threads = cpus or max(1, cores // jobs)
        warning = None
        if jobs * threads > cores:
            warning = (
                f"{jobs} runs x {threads} thread(s) on {cores} core(s): the runs will wait on "
                "each other (oversubscribed PyTorch ran up to 12x slower); lower --jobs"
            )
        return cls(jobs, threads, slots[:jobs], warning)

    def describe(self) -> str:
        gpus = f", GPU slots {self.gpu_slots}" if self.gpu_slots else ""
        return f"processes ({self.jobs} at a time, {self.threads} thread(s) each{gpus})"

    def _start(self, study: Study, run: PlannedRun, slot: int) -> _Child:
        task: RunTask = study.task(run, self.name, self.threads, log_file=False)
        folder = Path(task.study) / LAUNCH_DIR / "tasks"
        folder.mkdir(parents=True, exist_ok=True)
        stem = task.key.replace("/", ".")
        task_file, result = folder / f"{stem}.task.json", folder / f"{stem}.result.json"
        result.unlink(missing_ok=True)
        env = {**os.environ, **thread_env(self.threads)}
        # its GPU(s), or none at all without a GPU claim (as Ray does for num_gpus=0)
        env["CUDA_VISIBLE_DEVICES"] = self.gpu_slots[slot] if self.gpu_slots else ""
        task.resume = run.out.exists()  # decided before the log file makes the folder
        task_file.write_text(json.dumps(task.to_dict(), indent=2), encoding="utf-8")
        log_path = task.out / LAUNCH_LOG
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(log_path, "ab")  # noqa: SIM115 (closed when the child ends)
        cmd = [sys.executable, "-m", "t2i_stages.ablation.worker", str(task_file), str(result)]
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            start_new_session=True,
        )  # fmt: skip
        return _Child(run, proc, result, log, slot)

    def _outcome(self, child: _Child) -> RunOutcome:
        child.log.close()
        key = run_key(child.run)
        try:
            data = json.loads(child.result.read_text(encoding="utf-8"))
            return RunOutcome.from_dict(data)
        except (OSError, ValueError):
            code = child.proc.returncode
            why = f"signal {-code}" if code < 0 else f"exit code {code}"
            log = child.run.out / LAUNCH_LOG
            return RunOutcome(key, "failed", error=f"its process ended ({why}); see {log}")

    def launch(self, study: Study, runs: list[PlannedRun]) -> Iterator[RunOutcome]:
        if self.warning:
            study.log(f"ablate: warning: {self.warning}")
        queue, running = deque(runs), {}
        free = list(range(self.jobs))
        forwarded = False
        with StopRequests() as stops:
            try:
                while queue or running:
                    while queue and free and stops.signal is None:
                        slot = free.pop(0)
                        child = self._start(study, queue.popleft(), slot)
                        running[child.proc.pid] = child
                    ended = [c for c in running.values() if c.proc.poll() is not None]
                    for child in ended:
                        del running[child.proc.pid]
                        free.append(child.slot)
                        yield self._outcome(child)
                    if stops.signal is not None:
                        self.stopped_by = stops.signal
                        if not forwarded:  # once: each child stops after its current step
                            sig = signal.SIGTERM if stops.signal == "SIGTERM" else signal.SIGINT
                            for child in running.values():
                                child.proc.send_signal(sig)
                            forwarded = True
                        while queue:
                            yield RunOutcome(run_key(queue.popleft()), "cancelled")
                    if not ended:
                        time.sleep(self.poll_seconds)
            except KeyboardInterrupt:  # a second Ctrl-C: the children stop now, too
                for child in running.values():
                    child.proc.send_signal(signal.SIGINT)
                for child in running.values():
                    child.proc.wait()
                    child.log.close()
                raise
