"""Param types the built-in model plugins share. No torch here (see ``t2i_stages.plugins``)."""

from __future__ import annotations

from typing import Literal

InitName = Literal["orthogonal", "pytorch"]
