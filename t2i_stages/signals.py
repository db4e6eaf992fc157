"""SIGINT / SIGTERM as a request to stop at the next step boundary (training, pretraining)."""

from __future__ import annotations

import signal
from typing import Any


class StopRequests:
    """While installed, SIGINT and SIGTERM only record their name in ``signal``; the loop that
    installed them checks it after each step. A second SIGINT raises ``KeyboardInterrupt`` at
    once. Outside the main thread nothing is installed; ``restore`` puts the old handlers back.
    """

    def __init__(self) -> None:
        self.signal: str | None = None
        self._old: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        self.signal = signal.Signals(signum).name  # only a flag: printing could re-enter stdout

    def install(self) -> StopRequests:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: signals stay the caller's business
                pass
        return self

    def restore(self) -> None:
        for sig, previous in self._old.items():
            signal.signal(sig, previous)
        self._old = {}

    def __enter__(self) -> StopRequests:
        return self.install()

    def __exit__(self, *exc: Any) -> None:
        self.restore()
