"""Dynamic micro-batching: concurrent requests merged into one ONNX Runtime call, split back.

A request is a :class:`Job` of rows (its captions x n samples, with its own noise). One worker
task takes rows from the front of a bounded queue until it has ``max_batch`` of them or
``max_delay`` has passed since the oldest waiting job arrived, runs them as ONE call in a thread
(so the event loop keeps answering ``/healthz`` and reading other requests), and hands each job
its rows back. A job larger than the room left in a call is split across calls; rows never
influence each other (see :mod:`.model`), so where a row ran does not change its image.

The queue is bounded in rows: a job that does not fit is refused at once with
:class:`QueueFull`, which the app answers with ``503`` and ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from t2i_stages.export.runtime import RunOutputs

from .metrics import ServeMetrics
from .model import concat, rows_of

RunFn = Callable[[np.ndarray, np.ndarray, np.ndarray, "np.ndarray | None"], RunOutputs]


class QueueFull(Exception):
    """No room for the job's rows; ``retry_after`` is a guess, in whole seconds."""

    def __init__(self, waiting: int, capacity: int, retry_after: int):
        super().__init__(f"the queue holds {waiting} of {capacity} images; try again later")
        self.retry_after = retry_after


class ShuttingDown(Exception):
    """The server stops; the job was not run."""


@dataclass
class Job:
    """One request's rows and, once run, its outputs (``future`` gets a RunOutputs)."""

    ids: np.ndarray
    mask: np.ndarray
    z: np.ndarray
    eps: np.ndarray | None
    future: asyncio.Future
    enqueued: float = field(default_factory=time.perf_counter)
    taken: int = 0  # rows handed to a call so far
    parts: list[RunOutputs] = field(default_factory=list)
    calls: list[int] = field(default_factory=list)  # rows of each call this job ran in
    started: float | None = None  # when its first rows went into a call
    run_s: float = 0.0

    @property
    def rows(self) -> int:
        return int(self.ids.shape[0])


class MicroBatcher:
    """The queue and its worker; ``start()`` inside the event loop, ``close()`` at shutdown."""

    def __init__(
        self,
        run: RunFn,
        max_batch: int,
        max_delay_s: float,
        max_queue: int,
        metrics: ServeMetrics,
    ):
        self._run = run
        self.max_batch = max_batch
        self.max_delay_s = max_delay_s
        self.max_queue = max_queue
        self._metrics = metrics
        self._jobs: deque[Job] = deque()
        self._waiting_rows = 0
        self._arrived = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._closed = False
        self._call_s = 0.05  # running mean of one call's time, for Retry-After

    @property
    def waiting_rows(self) -> int:
        """Rows queued and not yet handed to a call."""
        return self._waiting_rows

    def start(self, call_s: float | None = None) -> None:
        """Start the worker; ``call_s``: a measured call time, for the first Retry-After."""
        if call_s:
            self._call_s = call_s
        self._task = asyncio.get_running_loop().create_task(self._worker(), name="t2i-batcher")

    async def close(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        while self._jobs:
            job = self._jobs.popleft()
            if not job.future.done():
                job.future.set_exception(ShuttingDown("the server is shutting down"))
        self._waiting_rows = 0

    def submit(self, ids, mask, z, eps) -> Job:
        """Queue a request's rows; await ``job.future`` for its outputs."""
        if self._closed:
            raise ShuttingDown("the server is shutting down")
        rows = int(ids.shape[0])
        if self._waiting_rows + rows > self.max_queue:
            raise QueueFull(self._waiting_rows, self.max_queue, self.retry_after())
        job = Job(ids, mask, z, eps, asyncio.get_running_loop().create_future())
        self._jobs.append(job)
        self._waiting_rows += rows
        self._metrics.queue_rows.set(self._waiting_rows)
        self._arrived.set()
        return job

    def retry_after(self) -> int:
        """Seconds until the rows waiting now have likely been run (at least 1)."""
        calls = math.ceil((self._waiting_rows + 1) / self.max_batch)
        return max(1, math.ceil(calls * self._call_s))

    # ------------------------------------------------------------------------ the worker

    async def _worker(self) -> None:
        while True:
            while not self._jobs:
                self._arrived.clear()
                await self._arrived.wait()
            deadline = self._jobs[0].enqueued + self.max_delay_s
            while self._waiting_rows < self.max_batch:
                left = deadline - time.perf_counter()
                if left <= 0:
                    break
                self._arrived.clear()
                try:
                    await asyncio.wait_for(self._arrived.wait(), left)
                except asyncio.TimeoutError:
                    break
            await self._run_one_call()

    def _take(self) -> list[tuple[Job, int, int]]:
        """(job, first row, last row + 1) slices of up to ``max_batch`` rows from the front."""
        room, taken = self.max_batch, []
        while self._jobs and room:
            job = self._jobs[0]
            n = min(room, job.rows - job.taken)
            taken.append((job, job.taken, job.taken + n))
            job.taken += n
            room -= n
            if job.taken == job.rows:
                self._jobs.popleft()
        self._waiting_rows -= self.max_batch - room
        self._metrics.queue_rows.set(self._waiting_rows)
        return taken

    async def _run_one_call(self) -> None:
        taken = self._take()
        rows = sum(b - a for _, a, b in taken)
        now = time.perf_counter()
        for job, start, _ in taken:
            if start == 0:
                job.started = now
                self._metrics.queue_seconds.observe(now - job.enqueued)
        ids = np.concatenate([j.ids[a:b] for j, a, b in taken])
        mask = np.concatenate([j.mask[a:b] for j, a, b in taken])
        z = np.concatenate([j.z[a:b] for j, a, b in taken])
        has_eps = taken[0][0].eps is not None
        eps = np.concatenate([j.eps[a:b] for j, a, b in taken]) if has_eps else None
        self._metrics.batch_rows.observe(rows)
        self._metrics.batch_requests.observe(len(taken))
        try:
            out = await asyncio.to_thread(self._run, ids, mask, z, eps)
        except asyncio.CancelledError:  # close(): these jobs left the queue, fail them here
            for job, _, _ in taken:
                if not job.future.done():
                    job.future.set_exception(ShuttingDown("the server is shutting down"))
            raise
        except Exception as exc:  # noqa: BLE001 - the jobs get it; the worker goes on
            self._metrics.run_errors.inc()
            for job, _, _ in taken:
                if not job.future.done():
                    job.future.set_exception(exc)
                if job in self._jobs:  # its other rows cannot complete it any more
                    self._jobs.remove(job)
                    self._waiting_rows -= job.rows - job.taken
            self._metrics.queue_rows.set(self._waiting_rows)
            return
        took = time.perf_counter() - now
        self._call_s = 0.8 * self._call_s + 0.2 * took
        self._metrics.run_seconds.observe(took)
        offset = 0
        for job, start, stop in taken:
            job.parts.append(rows_of(out, offset, offset + stop - start))
            job.calls.append(rows)
            job.run_s += took
            offset += stop - start
            if stop == job.rows and not job.future.done():
                job.future.set_result(concat(job.parts))
