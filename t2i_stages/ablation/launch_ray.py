"""``--launcher ray``: one Ray task per run, each claiming ``num_cpus``/``num_gpus``.

``ray`` is an optional extra (``pip install 't2i-stages[ray]'``) and is imported only here, when
this launcher runs. Without ``--address`` a local Ray instance is started for the study and
shut down after it; with one (``auto``, ``HOST:6379``) the study joins that cluster, whose nodes
must see the ablation file and the study folder at the same paths (shared storage) and have
t2i-stages installed. A process already connected to Ray (``ray.init`` beforehand) is used as
it is. Each task runs in a fresh worker process (``max_calls=1``: a run's memory, GPU memory
included, is freed with it), with the study's ``T2I_STAGES_*`` variables, torch threads equal to
its CPU claim and its console in the run folder's ``launch.log``.

Ctrl-C stops the study: queued runs are cancelled and running ones get Ray's cancel, a
KeyboardInterrupt raised as SIGINT in the task, which the training loop takes as a stop
request (finish the step, checkpoint, return); the next launch resumes them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..errors import T2IError
from ..signals import StopRequests
from .execute import RunOutcome, run_key, run_task
from .launchers import Launcher, Study, check_gpu_share
from .plan import PlannedRun


def import_ray() -> Any:
    """The ``ray`` module, or a one-line error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise T2IError(
            "--launcher ray needs Ray: pip install 't2i-stages[ray]' (or pip install ray)"
        ) from None
    return ray


def ray_entry(task: dict[str, Any]) -> dict[str, Any]:
    """What a Ray worker runs: the task, with what Ray assigned it recorded."""
    import ray

    return run_task(task, dict(ray.get_runtime_context().get_assigned_resources()))


def fitting_nodes(nodes: list[dict[str, Any]], cpus: float, gpus: float) -> list[str]:
    """The alive nodes (``ray.nodes()`` entries) with room for one run's claim."""
    fit = []
    for node in nodes:
        have = node.get("Resources", {})
        if node.get("Alive") and have.get("CPU", 0) >= cpus and have.get("GPU", 0) >= gpus:
            fit.append(node.get("NodeManagerAddress", "?"))
    return fit


class RayLauncher(Launcher):
    """Every unfinished run as a Ray task; Ray places them where their claims fit."""

    name = "ray"
    poll_seconds = 0.5

    def __init__(
        self,
        address: str | None,
        cpus: int,
        gpus: float,
        init: dict[str, Any] | None = None,
    ):
        super().__init__()
        self.address, self.cpus, self.gpus = address, int(cpus), check_gpu_share(gpus, "gpus")
        self.init = dict(init or {})
        self.slots = 1

    def describe(self) -> str:
        where = self.address or "a local Ray instance"
        gpus = f", {self.gpus:g} GPU" if self.gpus else ""
        return f"ray ({where}; {self.cpus} CPU{gpus} per run)"

    def _connect(self, ray: Any) -> bool:
        """Connect (or start a local instance); True when this study started it."""
        if ray.is_initialized():
            return False
        kwargs = {"include_dashboard": False, "log_to_driver": False, "logging_level": "WARNING"}
        kwargs.update(self.init)
        if self.address:
            kwargs["address"] = self.address
        try:
            ray.init(**kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise T2IError(f"--address {self.address or '(local)'}: Ray: {first}") from None
        return True

    def _check_fits(self, ray: Any) -> None:
        """Refuse a claim no node can hold (Ray would otherwise queue it forever)."""
        nodes = ray.nodes()
        if fitting_nodes(nodes, self.cpus, self.gpus):
            total = ray.cluster_resources()
            self.slots = max(1, int(total.get("CPU", 1) // self.cpus))
            if self.gpus:
                self.slots = min(self.slots, max(1, int(total.get("GPU", 0) // self.gpus)))
            return
        seen = [
            f"{n.get('NodeManagerAddress', '?')}: {n.get('Resources', {}).get('CPU', 0):g} CPU, "
            f"{n.get('Resources', {}).get('GPU', 0):g} GPU"
            for n in nodes
            if n.get("Alive")
        ]
        raise T2IError(
            f"--cpus-per-run {self.cpus} --gpus-per-run {self.gpus:g}: no node of the Ray "
            f"cluster has that much ({'; '.join(seen) or 'no alive node'})"
        )

    def _outcome(self, ray: Any, ref: Any, run: PlannedRun) -> RunOutcome:
        try:
            return RunOutcome.from_dict(ray.get(ref))
        except ray.exceptions.TaskCancelledError:
            return RunOutcome(run_key(run), "cancelled")
        except ray.exceptions.RayError as exc:
            lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
            return RunOutcome(run_key(run), "failed", error=lines[-1] if lines else repr(exc))

    def launch(self, study: Study, runs: list[PlannedRun]) -> Iterator[RunOutcome]:
        ray = import_ray()
        started = self._connect(ray)
        try:
            self._check_fits(ray)
            remote = ray.remote(max_calls=1)(ray_entry)  # a fresh worker process per run
            refs: dict[Any, PlannedRun] = {}
            for run in runs:
                task = study.task(run, self.name, self.cpus, log_file=True)
                options = {"num_cpus": self.cpus, "num_gpus": self.gpus, "max_retries": 0}
                ref = remote.options(**options, name=f"ablate {run_key(run)}").remote(
                    task.to_dict()
                )
                refs[ref] = run
            pending, cancelled = list(refs), False
            with StopRequests() as stops:
                try:
                    while pending:
                        done, pending = ray.wait(pending, num_returns=1, timeout=self.poll_seconds)
                        for ref in done:
                            yield self._outcome(ray, ref, refs[ref])
                        if stops.signal is not None and not cancelled:
                            self.stopped_by = stops.signal
                            for ref in pending:  # queued: dropped; running: stop at a step
                                ray.cancel(ref)
                            cancelled = True
                except KeyboardInterrupt:  # a second Ctrl-C: stop the tasks now
                    for ref in pending:
                        ray.cancel(ref, force=True)
                    raise
        finally:
            if started:
                ray.shutdown()
