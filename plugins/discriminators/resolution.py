"""The image side a built-in discriminator judges: from its params or its builder's context."""

from __future__ import annotations

from typing import Any


def resolve_resolution(name: str, params_res: int | None, ctx: dict[str, Any]) -> int:
    """The resolution from params, else from the builder's context; a clear error otherwise."""
    res = params_res if params_res is not None else ctx.get("resolution")
    if res is None:
        raise ValueError(
            f"discriminator '{name}' needs a resolution: set params.resolution or build it with "
            "resolution=<the generator stage's size>"
        )
    res = int(res)
    if res < 8 or res & (res - 1):
        raise ValueError(f"discriminator '{name}': resolution {res} is not a power of two >= 8")
    return res
