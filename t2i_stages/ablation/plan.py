"""Turn an ablation file into validated runs: one recipe per (variant, seed), checked up front.

Every variant is read, overridden, validated in both phases and its models built on the meta
device (a forward pass included) before anything trains, so a typo in the last variant fails in
seconds instead of after hours of training the first ones. The plan also knows which runs are
finished, which are half done (they resume) and which are new.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import RecipeError, T2IError
from ..recipe import Recipe, read_recipe
from ..recipe.diff import diff_paths, fmt
from ..recipe.sources import Loc, RecipeSources, parse_override
from ..recipe.validate import (
    plain_resolved,
    resolve_as_today,
    resolved_recipe,
    validate_recipe,
)
from ..registry import Registry, load_registry
from .spec import Ablation, AblationError, Variant, read_ablation, variant_base

MARKER = "ablation-run.json"


# ----------------------------------------------------------------------------- overrides


def _parse_path(text: str) -> Loc:
    return tuple(int(p) if p.isdigit() else p for p in text.split("."))


def remove_paths(data: dict[str, Any], paths: list[str], label: str) -> None:
    """Remove each dotted path (mapping key or list item) from ``data``.

    All paths are looked up before anything is removed, and list items go from the highest index
    down, so ``[losses.3, losses.4]`` removes the fourth and fifth losses of the original list.
    """
    found: list[tuple[Any, str | int, str]] = []
    for text in paths:
        loc = _parse_path(text)
        node: Any = data
        for i, seg in enumerate(loc):
            last = i == len(loc) - 1
            here = ".".join(map(str, loc[: i + 1]))
            if isinstance(node, dict) and str(seg) in node:
                if last:
                    found.append((node, str(seg), text))
                else:
                    node = node[str(seg)]
            elif isinstance(node, list) and isinstance(seg, int) and seg < len(node):
                if last:
                    found.append((node, seg, text))
                else:
                    node = node[seg]
            else:
                raise AblationError(f"{label}: unset {text}: {here} does not exist in the recipe")
    # highest list index first, so earlier removals never shift later ones
    found.sort(key=lambda f: f[1] if isinstance(f[1], int) else -1, reverse=True)
    seen: set[tuple[int, str | int]] = set()
    for container, key, text in found:
        if (id(container), key) in seen:
            raise AblationError(f"{label}: unset {text}: named twice")
        seen.add((id(container), key))
        del container[key]


def override_roots(variant: Variant) -> list[Loc]:
    """Where a variant's changes may show in the resolved recipe.

    A change of a slot's ``type`` also replaces that slot's (defaulted) params, so its root is
    the slot; removing a list item shifts the whole list, so its root is the list.
    """
    roots: list[Loc] = []
    for text in variant.set:
        loc, _ = parse_override(text)
        roots.append(loc[:-1] if loc and loc[-1] == "type" else loc)
    for text in variant.unset:
        loc = _parse_path(text)
        roots.append(loc[:-1] if isinstance(loc[-1], int) else loc)
    return roots


def unexplained_differences(reference: dict, variant: dict, roots: list[Loc]) -> list[Loc]:
    """Differences between two resolved recipes that lie outside every override root."""

    def under(path: Loc) -> bool:
        return any(
            tuple(map(str, path[: len(r)])) == tuple(map(str, r))
            for r in roots
            if len(r) <= len(path)
        )

    return [p for p in diff_paths(reference, variant) if not under(p)]


def get_path(data: Any, dotted: str) -> Any:
    node = data
    for seg in dotted.split("."):
        if isinstance(node, dict):
            node = node.get(seg)
        elif isinstance(node, list) and seg.isdigit() and int(seg) < len(node):
            node = node[int(seg)]
        else:
            return None
    return node


# ----------------------------------------------------------------------------- the plan


@dataclass
class PlannedRun:
    """One training run of the study: a variant at a seed, its recipe and its folder."""

    variant: Variant
    seed: int
    recipe: Recipe
    resolved: dict[str, Any]  # the resolved recipe as plain data, without plugin versions
    out: Path
    status: str = "new"  # new | resume | done
    stored_hash: str | None = None  # the marker's hash, when it was made before a plugin grew
    # a field with a default (the same recipe): the planner and the report both accept it

    @property
    def recipe_hash(self) -> str:
        return _hash(self.resolved)

    def is_its_marker(self, recipe_sha256: str | None) -> bool:
        """Whether a finished-run marker's hash is this run's recipe (today's or as stored)."""
        return recipe_sha256 is not None and recipe_sha256 in (self.recipe_hash, self.stored_hash)

    @property
    def label(self) -> str:
        return f"{self.variant.name} (seed {self.seed})"


@dataclass
class AblationPlan:
    """Every run of the study, validated, with where it lives and how far it got."""

    spec: Ablation
    path: Path
    base: Path
    out: Path
    overrides: list[str]
    seeds: list[int]
    runs: list[PlannedRun] = field(default_factory=list)
    differences: dict[str, list[str]] = field(default_factory=dict)  # variant -> resolved paths

    @property
    def variants(self) -> list[Variant]:
        names = {r.variant.name for r in self.runs}
        return [v for v in self.spec.variants if v.name in names]

    def runs_of(self, variant: str) -> list[PlannedRun]:
        return [r for r in self.runs if r.variant.name == variant]


def variant_sources(
    base: Path, spec: Ablation, variant: Variant, seed: int, overrides: list[str]
) -> RecipeSources:
    """The base recipe with the shared, command-line and variant overrides, at ``seed``."""
    label = f"variant '{variant.name}'"
    rs = read_recipe(base, [*spec.set, *overrides, *variant.set, f"seed={seed}"])
    if variant.unset:
        remove_paths(rs.data, variant.unset, label)
    return rs


def _build_check(recipe: Recipe, registry: Registry) -> list[str]:
    """A forward pass of the models on the meta device (what validation's phase 3 cannot see:
    shapes that do not fit); list problems."""
    from ..summary import summarize

    table = summarize(recipe, registry)
    return [n for n in table.notes if "discriminators" in n]


def _hash(resolved: dict[str, Any]) -> str:
    text = json.dumps(resolved, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _read_today(stored: dict[str, Any], registry: Registry | None) -> dict[str, Any] | None:
    """``resolve_as_today``, or None without a registry."""
    return None if registry is None else resolve_as_today(stored, registry)


def _existing_status(run: PlannedRun, registry: Registry | None = None) -> tuple[str, str | None]:
    """(status, problem) of a run folder that may hold an earlier attempt."""
    resolved_file = run.out / "recipe.resolved.yaml"
    if not resolved_file.is_file():
        return "new", None
    try:
        old = yaml.safe_load(resolved_file.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        return "new", f"{resolved_file}: unreadable ({exc}); delete the folder"
    strip = lambda d: {k: v for k, v in d.items() if k != "train"}  # noqa: E731
    stored = plain_resolved(old)
    if stored != run.resolved:
        today = _read_today(stored, registry)
        if strip(stored) != strip(run.resolved) and (
            today is None or strip(today) != strip(run.resolved)
        ):
            where = ", ".join(fmt(p) for p in diff_paths(strip(stored), strip(run.resolved))[:3])
            return "new", (
                f"{run.out} was trained with another recipe (differs at {where}); give another "
                "--out or delete that folder"
            )
        # the same recipe before a plugin or the schema grew a field with a default: its
        # record stands
        if today is not None and today == run.resolved:
            run.stored_hash = _hash(stored)
    marker = run.out / MARKER
    if marker.is_file() and (run.out / "metrics.json").is_file():
        try:
            info = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            info = {}
        if run.is_its_marker(info.get("recipe_sha256")):
            return "done", None
    return "resume", None


def replan_run(
    path: str | Path,
    overrides: list[str],
    out_dir: str | Path,
    variant: str,
    seed: int,
    registry: Registry,
) -> PlannedRun:
    """One run of a study rebuilt from its file, as ``plan_ablation`` planned it (another
    process's view: a launcher's worker); its status is read from its folder again."""
    spec, _ = read_ablation(path)
    found = [v for v in spec.variants if v.name == variant]
    if not found:
        raise AblationError(f"{path}: no variant named {variant} (the file changed?)")
    rs = variant_sources(variant_base(path, spec, found[0]), spec, found[0], seed, list(overrides))
    recipe = validate_recipe(rs, registry)
    resolved = plain_resolved(resolved_recipe(recipe, registry))
    run = PlannedRun(found[0], seed, recipe, resolved, Path(out_dir) / variant / f"seed-{seed}")
    run.status = _existing_status(run, registry)[0]
    return run


def plan_ablation(
    path: str | Path,
    overrides: list[str] | tuple[str, ...] = (),
    registry: Registry | None = None,
    out_dir: str | Path | None = None,
    seeds: list[int] | None = None,
    variants: list[str] | None = None,
    build_check: bool = True,
) -> AblationPlan:
    """Read an ablation file and validate every (variant, seed) run; raise with every problem.

    ``overrides`` (``--set``) apply to every variant, after the file's shared ``set`` and before
    each variant's own. ``seeds`` and ``variants`` narrow the study (the reference variant is
    always kept, since the others are compared with it).
    """
    registry = registry or load_registry()
    spec, base = read_ablation(path)
    path = Path(path)
    overrides = list(overrides)
    for text in overrides:
        parse_override(text)  # a malformed --set fails here, once, not once per variant
    seeds = list(seeds) if seeds else list(spec.seeds)
    reference = spec.reference_variant
    chosen = list(spec.variants)
    if variants:
        names = [v.name for v in spec.variants]
        unknown = [v for v in variants if v not in names]
        if unknown:
            raise AblationError(
                f"{path}: no variant named {', '.join(unknown)} (variants: {', '.join(names)})"
            )
        chosen = [v for v in spec.variants if v.name in variants or v.name == reference.name]
    out = Path(out_dir) if out_dir is not None else Path("runs") / "ablations" / spec.name
    plan = AblationPlan(spec, path, base, out, overrides, seeds)

    problems: list[str] = []
    for variant in chosen:
        own_base = variant_base(path, spec, variant)
        for i, seed in enumerate(seeds):
            where = f"{path}: variant '{variant.name}' (seed {seed})"
            try:
                rs = variant_sources(own_base, spec, variant, seed, overrides)
                recipe = validate_recipe(rs, registry)
                if i == 0 and build_check:
                    problems += [f"{where}: {p}" for p in _build_check(recipe, registry)]
            except RecipeError as exc:
                problems += [f"{where}: {line}" for line in exc.lines]
                break
            except T2IError as exc:
                problems += [f"{where}: {line}" for line in str(exc).splitlines()]
                break
            resolved = plain_resolved(resolved_recipe(recipe, registry))
            run = PlannedRun(variant, seed, recipe, resolved, out / variant.name / f"seed-{seed}")
            plan.runs.append(run)
    if problems:
        raise AblationError("\n".join(problems))

    ref_runs = {r.seed: r for r in plan.runs_of(reference.name)}
    for run in plan.runs:
        ref = ref_runs[run.seed]
        for field_path in spec.same_budget:
            mine, theirs = get_path(run.resolved, field_path), get_path(ref.resolved, field_path)
            if mine != theirs:
                problems.append(
                    f"{path}: variant '{run.variant.name}': {field_path} is {mine!r} but the "
                    f"reference '{reference.name}' has {theirs!r}; every variant trains on the "
                    "same budget (same_budget)"
                )
        if run.seed == seeds[0]:
            diffs = diff_paths(ref.resolved, run.resolved)
            plan.differences[run.variant.name] = [fmt(p) for p in diffs]
            if run.variant.name != reference.name and not diffs:
                problems.append(
                    f"{path}: variant '{run.variant.name}' resolves to the same recipe as the "
                    f"reference '{reference.name}'; it would measure nothing"
                )
        status, problem = _existing_status(run, registry)
        run.status = status
        if problem:
            problems.append(f"{path}: variant '{run.variant.name}' (seed {run.seed}): {problem}")
    if problems:
        raise AblationError("\n".join(dict.fromkeys(problems)))
    # seed-major: an interrupted study still has every variant at the first seed
    plan.runs.sort(
        key=lambda r: (seeds.index(r.seed), [v.name for v in chosen].index(r.variant.name))
    )
    return plan
