"""The server's settings: where it runs the model, how it batches, and what it refuses.

One frozen pydantic model, so that the CLI, the Python API and the worker processes of
``--workers N`` (which receive it as JSON in an environment variable) agree on every default and
on every check. A bad value is a :class:`~t2i_stages.errors.T2IError` naming the setting.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from t2i_stages.errors import T2IError


class ServeConfigError(T2IError):
    """A server setting is out of range or inconsistent with another one."""


class ServeConfig(BaseModel):
    """Every setting of ``t2i-stages serve`` (the CLI flag is the field name with dashes)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # where the model runs
    provider: Literal["auto", "cpu", "cuda", "tensorrt"] = "auto"
    allow_cpu_fallback: bool = False
    precision: Literal["fp32", "fp16"] = "fp32"
    threads: int | None = Field(None, ge=1, description="ONNX Runtime intra-op threads")
    spinning: bool = Field(
        False,
        description="let ONNX Runtime's idle intra-op threads busy-wait for work (ONNX Runtime's "
        "own default); off here, since busy-waiting threads take the cores the event loop needs "
        "(docs/deployment.md, Load: off doubled the demo's requests/s at concurrency 1 on 2 cores)",
    )
    # batching
    max_batch: int = Field(16, ge=1, le=4096, description="rows (images) per ONNX Runtime call")
    max_delay_ms: float = Field(10.0, ge=0, le=60_000, description="wait for batch-mates")
    max_queue: int = Field(256, ge=1, description="rows waiting before 503 + Retry-After")
    padding: Literal["auto", "pair", "full", "none"] = "auto"
    # what one request may ask
    max_n: int = Field(16, ge=1, description="samples per caption")
    max_captions: int = Field(16, ge=1)
    max_images: int = Field(64, ge=1, description="captions x n of one request")
    max_caption_chars: int = Field(1000, ge=1)
    # the HTTP side
    max_body_bytes: int = Field(65_536, ge=64)
    body_timeout_s: float = Field(10.0, gt=0, description="a slower request body gets 408")
    header_timeout_s: float = Field(
        10.0, gt=0, description="a slower request line and headers get 408 (header_deadline.py)"
    )

    @model_validator(mode="after")
    def _consistent(self) -> ServeConfig:
        if self.max_images > self.max_queue:
            raise ValueError(
                f"--max-images {self.max_images} is larger than --max-queue {self.max_queue}: "
                "such a request could never be queued"
            )
        return self

    def padding_for(self, device: str) -> tuple[str, str | None]:
        """The padding to start with and the one the warm-up falls back to if the first is not
        batch-invariant. ``auto``: on the CPU ``none`` (every call at its own size), falling back
        to ``pair`` for an export whose graph sums a batch of one in another order (exports older
        than the MatMul pooling); on a GPU ``full`` (cuBLAS/cuDNN pick kernels per shape)."""
        if self.padding != "auto":
            return self.padding, None
        return ("none", "pair") if device == "cpu" else ("full", None)


def make_config(**settings: Any) -> ServeConfig:
    """A :class:`ServeConfig` from keyword settings (None = default), one-line errors."""
    given = {k: v for k, v in settings.items() if v is not None}
    try:
        return ServeConfig(**given)
    except ValidationError as exc:
        err = exc.errors()[0]
        msg = err["msg"].removeprefix("Value error, ")
        if not err["loc"]:  # a check across settings names them itself
            raise ServeConfigError(msg) from None
        flag = "--" + ".".join(str(p) for p in err["loc"]).replace("_", "-")
        raise ServeConfigError(f"{flag}: {msg} (got {err['input']!r})") from None
