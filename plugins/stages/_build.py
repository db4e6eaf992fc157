"""Helpers for stages: check that a conditioning level and a fusion block fit together."""

from __future__ import annotations

from torch import nn

from t2i_stages.errors import PluginError


def check_fit(
    cond: nn.Module, fusion: nn.Module, cond_name: str, fusion_name: str, where: str
) -> None:
    """Refuse a fusion block whose input kind the conditioning level does not give."""
    need = getattr(fusion, "requires", None)
    have = getattr(cond, "provides", None)
    if need is not None and have is not None and need != have:
        what = {"sequence": "a word sequence", "vector": "a vector", "none": "no text"}
        raise PluginError(
            f"{where}: fusion '{fusion_name}' needs {what.get(need, need)} but conditioning "
            f"'{cond_name}' gives {what.get(have, have)}; pick a matching conditioning level"
        )
