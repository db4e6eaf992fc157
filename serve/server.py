"""``serve(export_dir, ...)``: the app under uvicorn, the Python API of ``t2i-stages serve``.

The deployment is loaded here, before uvicorn starts, so a wrong folder or an unusable provider
is a one-line error (exit code 2 from the CLI), not a server that never gets ready or workers
that uvicorn restarts forever. With one worker that model is the one served; with
``workers > 1`` it is released again and uvicorn starts that many processes, each loading the
model and batching its own requests (so ``/metrics`` is per process), with the settings as JSON
in ``T2I_SERVE_SETTINGS`` read by :func:`app_from_env`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from t2i_stages.errors import T2IError

from .config import ServeConfig, make_config

ENV = "T2I_SERVE_SETTINGS"


def serve(
    export_dir: str | Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    provider: str = "auto",
    max_batch: int = 16,
    max_delay_ms: float = 10.0,
    workers: int = 1,
    log_level: str = "info",
    **settings: Any,
) -> None:
    """Serve a deployment folder over HTTP until interrupted (other settings: ServeConfig)."""
    try:
        import uvicorn
    except ImportError as exc:
        raise T2IError(
            f"serving needs the serve extra ({exc}): pip install 't2i-stages[serve]'"
        ) from None
    config = make_config(
        provider=provider, max_batch=max_batch, max_delay_ms=max_delay_ms, **settings
    )
    if workers < 1:
        raise T2IError(f"--workers must be at least 1, not {workers}")
    if not 0 <= port <= 65535:
        raise T2IError(f"--port must be between 0 and 65535, not {port}")
    from .app import create_app
    from .header_deadline import HeaderDeadlineProtocol
    from .model import ServedModel

    export_dir = Path(export_dir).resolve()
    model = ServedModel.load(export_dir, config)
    common = dict(host=host, port=port, log_level=log_level, timeout_keep_alive=5)
    if workers == 1:
        protocol = HeaderDeadlineProtocol.with_timeout(config.header_timeout_s)
        uvicorn.run(create_app(export_dir, config, model=model), http=protocol, **common)
        return
    del model  # checked; each worker process loads its own
    os.environ[ENV] = json.dumps({"export_dir": str(export_dir), "config": config.model_dump()})
    # the workers' protocol reads header_timeout_s from the same variable (header_deadline.py)
    uvicorn.run(
        f"{__name__}:app_from_env",
        factory=True,
        workers=workers,
        http=HeaderDeadlineProtocol,
        **common,
    )


def settings_from_env() -> tuple[str, ServeConfig] | None:
    """The export folder and settings ``serve(workers=N)`` hands its worker processes in
    ``T2I_SERVE_SETTINGS`` (None outside them)."""
    raw = os.environ.get(ENV)
    if raw is None:
        return None
    data = json.loads(raw)
    return data["export_dir"], ServeConfig(**data["config"])


def app_from_env():
    """The app of one worker process of ``serve(workers=N)``."""
    from .app import create_app

    export_dir, config = settings_from_env()
    return create_app(export_dir, config)
