"""The run folder: created once, its recipe guarded across resumes, every file read by name.

A fresh run refuses a folder with checkpoints; a resumed run refuses a recipe that differs from
the one it started with unless the change is allowed and recorded. Whatever reads a run
folder's YAML goes through ``run_files.read_yaml``, so a damaged file is a one-line error naming it.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import yaml

from ..checkpoint import list_checkpoints
from ..errors import T2IError
from ..recipe import Recipe, resolved_recipe
from ..recipe.diff import changed_fields
from ..recipe.validate import RECORD_FIELDS, resolve_as_today
from ..registry import Registry
from ..run_files import read_yaml

# Settings a resume may change without --allow-changes: how long the run goes on and how often
# it reports, and the speed switches that give the same weights bit for bit (the text cache, one
# optimizer over the Ds), not what it trains.
RESUME_FREE_FIELDS = (
    "train.max_steps",
    "train.max_minutes",
    "train.log_every",
    "train.sample_every",
    "train.ckpt_every",
    "train.keep_checkpoints",
    "train.text_cache",
    "train.text_cache_max_mb",
    "train.merge_d_optimizers",
)


def prepare_run_folder(
    recipe: Recipe,
    registry: Registry,
    out: Path,
    resume: bool,
    runtime: dict | None = None,
    allow_changes: bool = False,
    log=print,
) -> list[str]:
    """Create the run folder and write the resolved recipe (with ``runtime``'s decisions).

    A fresh run refuses a folder with checkpoints. A resumed run refuses a recipe that differs
    from the one the run started with, listing the fields; ``allow_changes`` accepts them, keeps
    the earlier resolved recipe beside the new one and records the change in
    ``recipe.changes.yaml``. Returns the changed fields (``path: old -> new``).
    """
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise T2IError(
            f"{out}: cannot create the run folder ({exc.strerror or exc}); choose another --out"
        ) from None
    if not resume and list_checkpoints(out / "checkpoints"):
        raise T2IError(
            f"{out}: holds the checkpoints of an earlier run; continue it with --resume, "
            "or choose another --out (nothing was overwritten)"
        )
    existing = out / "recipe.resolved.yaml"
    new = json.loads(json.dumps(resolved_recipe(recipe, registry)))
    changes: list[str] = []
    if resume and existing.exists():
        old = read_yaml(existing)
        strip = lambda d: {k: v for k, v in d.items() if k not in RECORD_FIELDS}  # noqa: E731
        fields = changed_fields(strip(old), strip(new))
        if fields:  # a field the schema or a plugin grew since, at its default, is no change
            today = resolve_as_today(old, registry)
            if today is not None:
                fields = changed_fields(strip(today), strip(new))
        changes = [line for _, line in fields]
        guarded = [line for path, line in fields if path not in RESUME_FREE_FIELDS]
        if guarded and not allow_changes:
            shown = "; ".join(guarded[:8]) + (
                f"; ... {len(guarded) - 8} more" if len(guarded) > 8 else ""
            )
            raise T2IError(
                f"{existing}: the recipe differs from the one this run was started with: {shown}. "
                "Resume with the run's own recipe (t2i-stages run --resume RUN), or pass "
                "--allow-changes to continue with the changes recorded"
            )
        if changes:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            shutil.copyfile(existing, out / f"recipe.resolved.before-{stamp}.yaml")
            record = out / "recipe.changes.yaml"
            entries = read_yaml(record) if record.is_file() else []
            entries = entries if isinstance(entries, list) else []
            entries.append({"time": stamp, "allowed": bool(guarded), "changes": changes})
            record.write_text(yaml.safe_dump(entries, sort_keys=False), encoding="utf-8")
            log(f"resume: the recipe changed ({len(changes)} field(s)), recorded in {record}:")
            for line in changes:
                log(f"  {line}")
    write_resolved_recipe(recipe, registry, out, runtime)
    return changes


def write_resolved_recipe(
    recipe: Recipe,
    registry: Registry,
    out_dir: str | Path,
    runtime: dict[str, Any] | None = None,
    header: str = "",
) -> Path:
    """Write ``recipe.resolved.yaml`` (every default filled in, plugin versions, the run's
    ``auto`` decisions) into ``out_dir``; ``header`` lines go on top as YAML comments."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "recipe.resolved.yaml"
        data = json.loads(json.dumps(resolved_recipe(recipe, registry, runtime)))  # plain types
        tmp = path.with_suffix(".yaml.tmp")
        comments = "".join(f"# {line}\n" for line in header.splitlines())
        tmp.write_text(comments + yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        raise T2IError(f"{out_dir}: cannot write the run folder: {exc.strerror or exc}") from None
    return path
