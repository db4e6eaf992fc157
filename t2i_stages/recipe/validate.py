"""Two-phase recipe validation and the resolved recipe written next to every run."""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from ..errors import RecipeError, T2IError, UnknownComponentError
from ..registry import Registry, unknown_name_message
from .schema import Recipe
from .semantic import check_components
from .slots import Slot
from .sources import Loc, RecipeSources, read_recipe
from .suggest import did_you_mean


def format_loc(loc: Loc) -> str:
    """``a.b.0.c``: how every command prints where in a recipe a problem is."""
    return ".".join(str(p) for p in loc) or "<root>"


def error_message(err: dict[str, Any], within: Any = None) -> str:
    """One pydantic error as every command prints it (no "Value error, " prefix); an unknown
    field gets the closest field name of ``within`` (the model or annotation validated)."""
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        return "unknown field (not allowed here)" + did_you_mean(within, tuple(err["loc"]))
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    return msg


def _iter_slots(value: Any, loc: Loc):
    """Yield (slot, loc) for every slot inside a model / list / dict, outermost first."""
    if isinstance(value, Slot):
        yield value, loc
        return
    if isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _iter_slots(getattr(value, name), (*loc, name))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _iter_slots(item, (*loc, i))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _iter_slots(item, (*loc, key))


def resolve_slots(model: BaseModel, registry: Registry, loc: Loc = ()) -> list[tuple[Loc, str]]:
    """Phase 2: validate every slot's params with its plugin's model, recursively.

    Returns a list of (loc, message) problems; successfully validated slots get ``resolved``.
    """
    problems: list[tuple[Loc, str]] = []
    for slot, slot_loc in _iter_slots(model, loc):
        kind = slot.kind
        if slot.type not in registry.components.get(kind, {}):
            problems.append(
                (
                    (*slot_loc, "type"),
                    unknown_name_message(
                        kind, slot.type, registry.names(kind), registry.load_errors
                    ),
                )
            )
            continue
        try:
            params = registry.validate_params(kind, slot.type, slot.params)
        except ValidationError as exc:
            model = registry.get(kind, slot.type).spec.params
            for err in exc.errors():
                problems.append(((*slot_loc, "params", *err["loc"]), error_message(err, model)))
            continue
        slot.resolve(params)
        problems.extend(resolve_slots(params, registry, (*slot_loc, "params")))
    return problems


ABLATION_KEYS = {"base", "variants"}  # what marks an ablation file (t2i_stages.ablation)


def validate_recipe(
    rs: RecipeSources,
    registry: Registry,
    components: bool = True,
    only: Sequence[str] | None = None,
    build: bool = True,
) -> Recipe:
    """Validate merged recipe data; raise RecipeError with file:line per problem.

    Phase 1 is the schema, phase 2 every slot's params, phase 3 (``components``) the checks
    across components (``semantic.py``: losses, discriminators per stage, text features),
    from what the components build (``build``) or from their plugins' static facts alone
    (no torch; what ``validate`` does).
    ``only`` validates just those top-level sections (phases 1 and 2; what ``summary`` and
    ``data`` need): the returned recipe holds them and the defaults, nothing else checked.
    """
    if only is not None:
        return _validate_sections(rs, registry, only)
    if isinstance(rs.data, dict) and ABLATION_KEYS <= set(rs.data) and "generator" not in rs.data:
        raise RecipeError(
            [
                f"{rs.path}: this is an ablation file (it has 'base:' and 'variants:'), not a "
                f"recipe; check it with `t2i-stages ablate {rs.path} --plan` and run it with "
                f"`t2i-stages ablate {rs.path}`"
            ]
        )
    try:
        recipe = Recipe.model_validate(rs.data)
    except ValidationError as exc:
        lines = [
            f"{rs.where(e['loc'])}: {format_loc(e['loc'])}: {error_message(e, Recipe)}"
            for e in exc.errors()
        ]
        raise RecipeError(lines) from None
    problems = resolve_slots(recipe, registry)
    if not problems and components:
        problems = check_components(recipe, registry, build=build)
    if problems:
        raise located(rs, problems)
    return recipe


def located(rs: RecipeSources, problems: list[tuple[Loc, str]]) -> RecipeError:
    """One ``file:line: path: message`` line per problem, as every command prints them."""
    return RecipeError([f"{rs.where(loc)}: {format_loc(loc)}: {msg}" for loc, msg in problems])


def _validate_sections(rs: RecipeSources, registry: Registry, only: Sequence[str]) -> Recipe:
    data = rs.data if isinstance(rs.data, dict) else {}
    values: dict[str, Any] = {}
    lines: list[str] = []
    for name in only:
        field = Recipe.model_fields[name]
        if name not in data:
            if field.is_required():
                lines.append(f"{rs.where((name,))}: {name}: Field required")
            else:
                values[name] = field.get_default(call_default_factory=True)
            continue
        try:
            values[name] = TypeAdapter(field.annotation).validate_python(data[name])
        except ValidationError as exc:
            for e in exc.errors():
                loc = (name, *e["loc"])
                lines.append(
                    f"{rs.where(loc)}: {format_loc(loc)}: {error_message(e, field.annotation)}"
                )
    if lines:
        raise RecipeError(lines)
    problems = [p for name, v in values.items() for p in resolve_slots(v, registry, (name,))]
    if problems:
        raise located(rs, problems)
    if isinstance(data.get("name"), str):
        values.setdefault("name", data["name"])
    return Recipe.model_construct(**values)


def load_recipe(
    path: str | Path,
    overrides: list[str] | tuple[str, ...] = (),
    registry: Registry | None = None,
    only: Sequence[str] | None = None,
    build: bool = True,
) -> Recipe:
    """Read, merge, override and validate a recipe (the Python API of `validate`); ``only``
    validates just those sections, and ``build=False`` checks across components from static
    facts only (see ``validate_recipe``)."""
    if registry is None:
        from ..registry import load_registry

        registry = load_registry()
    return validate_recipe(read_recipe(path, overrides), registry, only=only, build=build)


def resolved_dict(value: Any) -> Any:
    """The recipe as plain data with every slot's params filled in with the plugin's defaults."""
    if isinstance(value, Slot):
        out = {k: resolved_dict(getattr(value, k)) for k in type(value).model_fields}
        if value.resolved is not None:
            out["params"] = resolved_dict(value.resolved)
        return out
    if isinstance(value, BaseModel):
        return {k: resolved_dict(getattr(value, k)) for k in type(value).model_fields}
    if isinstance(value, (list, tuple)):
        return [resolved_dict(v) for v in value]
    if isinstance(value, dict):
        return {k: resolved_dict(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


def plugin_versions(
    recipe: Recipe | None, registry: Registry, extra: Sequence[Slot] = ()
) -> dict[str, dict[str, str]]:
    """Which plugin (package, version) provided each component the recipe uses, and each of
    ``extra`` (what else a command built: the metrics an evaluation computed, say); recorded
    in recipe.resolved.yaml, metrics.json and an export's model.json."""
    out: dict[str, dict[str, str]] = {}
    for slot, _ in [*_iter_slots(recipe, ()), *((s, ()) for s in extra)]:
        _collect(slot, registry, out)
    return out


def _collect(slot: Slot, registry: Registry, out: dict[str, dict[str, str]]) -> None:
    try:
        entry = registry.get(slot.kind, slot.type)
    except UnknownComponentError:
        return
    out[f"{slot.kind}/{slot.type}"] = {
        "plugin": entry.plugin.name,
        "package": entry.plugin.package,
        "version": entry.plugin.version,
    }
    if slot.resolved is not None:
        for inner, _ in _iter_slots(slot.resolved, ()):
            _collect(inner, registry, out)


RECORD_FIELDS = ("plugins", "runtime")  # what a run writes beside the recipe, not settings


def resolved_recipe(
    recipe: Recipe, registry: Registry, runtime: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The recipe with every default filled in, each plugin's version and (for a run) what its
    ``auto`` settings resolved to."""
    data = resolved_dict(recipe)
    for name in RECORD_FIELDS:
        data.pop(name, None)
    data["plugins"] = plugin_versions(recipe, registry)
    if runtime:
        data["runtime"] = runtime
    return data


def resolve_as_today(stored: dict[str, Any], registry: Registry) -> dict[str, Any] | None:
    """A run's stored resolved recipe as today's schema and plugins resolve it, as plain JSON
    data without the record fields: a field added since the run was made gets its default
    (which, by the project's rule, is what earlier runs trained with). None where it no longer
    validates."""
    data = {k: v for k, v in stored.items() if k not in RECORD_FIELDS}
    try:
        recipe = validate_recipe(RecipeSources(copy.deepcopy(data)), registry, build=False)
    except T2IError:
        return None
    return plain_resolved(resolved_recipe(recipe, registry))


def plain_resolved(resolved: dict[str, Any]) -> dict[str, Any]:
    """A resolved recipe as plain JSON data, without the record fields (what runs compare)."""
    data = json.loads(json.dumps(resolved, default=str))
    for name in RECORD_FIELDS:
        data.pop(name, None)
    return data
