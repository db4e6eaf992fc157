"""Plugin discovery and the component registry.

The plugin manager is built by a function, never at import time, so tests and embedding
applications decide what gets loaded. Built-in plugins come in through the same entry-point
group as third-party ones.
"""

from __future__ import annotations

import difflib
import importlib.metadata as md
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pluggy
from pydantic import BaseModel

from .context import check_context
from .errors import DuplicateComponentError, PluginError, T2IError, UnknownComponentError
from .hookspecs import KIND_HOOKS, PROJECT, ComponentHooks
from .spec import ComponentSpec

ENTRY_POINT_GROUP = "t2i_stages"
BUILTIN_DISTRIBUTION = "t2i-stages"
ENV_BLOCK = "T2I_STAGES_DISABLE_PLUGINS"
ENV_ALLOW = "T2I_STAGES_LOAD_PLUGINS"


@dataclass(frozen=True)
class PluginInfo:
    """Where a registered plugin came from."""

    name: str
    package: str
    version: str
    entry_point: str = ""

    @property
    def builtin(self) -> bool:
        return self.package == BUILTIN_DISTRIBUTION


@dataclass(frozen=True)
class PluginLoadError:
    """A plugin that failed to import or register; the rest keeps working."""

    name: str
    entry_point: str
    error: str

    def __str__(self) -> str:
        return f"plugin '{self.name}' ({self.entry_point}) failed: {self.error}"


@dataclass(frozen=True)
class Entry:
    """One registered component: its spec and the plugin that provides it."""

    kind: str
    name: str
    spec: ComponentSpec
    plugin: PluginInfo


def _names_from_env(var: str) -> set[str] | None:
    raw = os.environ.get(var)
    if raw is None:
        return None
    return {n.strip() for n in raw.split(",") if n.strip()}


def get_plugin_manager(
    load_entrypoints: bool = True,
    allow: Iterable[str] | None = None,
    block: Iterable[str] | None = None,
    plugins: Iterable[tuple[str, object]] = (),
) -> tuple[pluggy.PluginManager, dict[str, PluginInfo], list[PluginLoadError]]:
    """Build a fresh plugin manager.

    ``allow`` (or ``$T2I_STAGES_LOAD_PLUGINS``) restricts third-party plugins to those entry-point
    names; built-ins always load. ``block`` (or ``$T2I_STAGES_DISABLE_PLUGINS``) refuses the named
    plugins, built-ins included. ``plugins`` registers extra ``(name, object)`` pairs directly, which
    is how tests add a plugin for their own duration.
    """
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(ComponentHooks)
    allow_set = set(allow) if allow is not None else _names_from_env(ENV_ALLOW)
    block_set = set(block or ()) | (_names_from_env(ENV_BLOCK) or set())
    for name in block_set:
        pm.set_blocked(name)

    infos: dict[str, PluginInfo] = {}
    errors: list[PluginLoadError] = []
    if load_entrypoints:
        seen: set[str] = set()
        for dist in md.distributions():
            for ep in dist.entry_points:
                if ep.group != ENTRY_POINT_GROUP or ep.name in seen:
                    continue
                seen.add(ep.name)
                package = dist.metadata["Name"] or "?"
                builtin = package == BUILTIN_DISTRIBUTION
                if pm.is_blocked(ep.name) or (
                    allow_set is not None and not builtin and ep.name not in allow_set
                ):
                    continue
                try:
                    obj = ep.load()
                    pm.register(obj, name=ep.name)
                except Exception as exc:  # a broken third-party plugin must not take others down
                    errors.append(
                        PluginLoadError(ep.name, ep.value, f"{type(exc).__name__}: {exc}")
                    )
                    continue
                infos[ep.name] = PluginInfo(ep.name, package, dist.version or "?", ep.value)
    for name, obj in plugins:
        if pm.is_blocked(name):
            continue
        pm.register(obj, name=name)
        infos[name] = PluginInfo(name, "<registered>", "-", "")
    pm.check_pending()
    return pm, infos, errors


@dataclass
class Registry:
    """Every component of every kind, with provenance, built from a plugin manager."""

    components: dict[str, dict[str, Entry]] = field(default_factory=dict)
    plugins: dict[str, PluginInfo] = field(default_factory=dict)
    load_errors: list[PluginLoadError] = field(default_factory=list)

    @classmethod
    def from_plugin_manager(
        cls,
        pm: pluggy.PluginManager,
        infos: dict[str, PluginInfo],
        load_errors: list[PluginLoadError] | None = None,
    ) -> Registry:
        reg = cls(components={k: {} for k in KIND_HOOKS}, plugins=dict(infos))
        reg.load_errors = list(load_errors or [])
        for kind, hook_name in KIND_HOOKS.items():
            hook = getattr(pm.hook, hook_name)
            for impl in reversed(hook.get_hookimpls()):  # registration order
                info = infos.get(impl.plugin_name) or PluginInfo(impl.plugin_name, "?", "?")
                try:
                    provided = impl.function()
                    if provided is None:
                        continue
                    if not isinstance(provided, dict):
                        raise TypeError(
                            f"{hook_name}() must return a dict, got {type(provided).__name__}"
                        )
                    for name, spec in provided.items():
                        if not isinstance(spec, ComponentSpec):
                            raise TypeError(f"{kind} '{name}' is not a ComponentSpec")
                except Exception as exc:
                    reg.load_errors.append(
                        PluginLoadError(
                            impl.plugin_name, info.entry_point or "-", f"{hook_name}: {exc}"
                        )
                    )
                    continue
                for name, spec in provided.items():
                    other = reg.components[kind].get(name)
                    if other is not None:
                        raise DuplicateComponentError(
                            f"{kind} '{name}' is provided twice: by plugin '{other.plugin.name}' "
                            f"({other.plugin.package} {other.plugin.version}) and by plugin "
                            f"'{info.name}' ({info.package} {info.version}); block one with "
                            f"{ENV_BLOCK}=<plugin name>"
                        )
                    reg.components[kind][name] = Entry(kind, name, spec, info)
        return reg

    def names(self, kind: str) -> list[str]:
        self._check_kind(kind)
        return sorted(self.components[kind])

    def _check_kind(self, kind: str) -> None:
        if kind not in KIND_HOOKS:
            raise UnknownComponentError(
                f"unknown component kind '{kind}'; kinds are: {', '.join(KIND_HOOKS)}"
            )

    def get(self, kind: str, name: str) -> Entry:
        self._check_kind(kind)
        entry = self.components[kind].get(name)
        if entry is None:
            raise UnknownComponentError(
                unknown_name_message(kind, name, self.names(kind), self.load_errors)
            )
        return entry

    def validate_params(
        self, kind: str, name: str, params: dict[str, Any] | BaseModel
    ) -> BaseModel:
        """Validate ``params`` with the plugin's own model (raises pydantic's ValidationError)."""
        model = self.get(kind, name).spec.params
        if isinstance(params, model):
            return params
        if isinstance(params, BaseModel):
            params = params.model_dump()
        return model.model_validate(params or {})

    def slot_params(self, kind: str, slot: Any) -> BaseModel:
        """The slot's validated params: resolved by recipe validation, else validated now."""
        resolved = getattr(slot, "resolved", None)
        return (
            resolved if resolved is not None else self.validate_params(kind, slot.type, slot.params)
        )

    def build(self, kind: str, slot: Any, **context: Any) -> Any:
        """Build the component a recipe slot names, passing ``context`` to its factory."""
        entry = self.get(kind, slot.type)
        check_context(kind, slot.type, context)
        params = self.slot_params(kind, slot)
        factory = self._load(entry, "factory")
        try:
            return factory(params, registry=self, **context)
        except T2IError:
            raise  # user errors (a missing pretrained asset, say) keep their type and message
        except Exception as exc:
            # one line: a C++ error (a huge allocation, say) carries its stack frames after it
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise PluginError(
                f"{kind} '{slot.type}' (plugin '{entry.plugin.name}') failed to build: "
                f"{type(exc).__name__}: {first}"
            ) from exc

    @staticmethod
    def _load(entry: Entry, what: str) -> Any:
        """The spec's factory or prepare step, imported if named by a string; an import
        failure is a one-line PluginError naming the component, its plugin and the reference."""
        try:
            return entry.spec.load_factory() if what == "factory" else entry.spec.load_prepare()
        except Exception as exc:
            raise PluginError(
                f"{entry.kind} '{entry.name}' (plugin '{entry.plugin.name}'): its {what} "
                f"{getattr(entry.spec, what)!r} failed to import: {type(exc).__name__}: {exc}"
            ) from exc

    def check_references(self) -> list[str]:
        """Import every factory and prepare step given by name (``plugins --check``): what a
        plugin's CI must catch before a user's ``run`` does. One line per failure."""
        failures = []
        for kind in self.components:
            for entry in self.components[kind].values():
                for what in ("factory", "prepare"):
                    try:
                        self._load(entry, what)
                    except PluginError as exc:
                        failures.append(str(exc))
        return failures

    def prepare(self, kind: str, slot: Any, ctx: Any) -> Any:
        """Run the component's ``prepare`` step (``ComponentSpec.prepare``), or build it
        plainly (``ctx.build()``) when it has none; returns a ``lifecycle.Prepared``."""
        from .lifecycle import Prepared

        entry = self.get(kind, slot.type)
        prepare = self._load(entry, "prepare")
        if prepare is None:
            return Prepared(ctx.build())
        return prepare(self.slot_params(kind, slot), ctx)


def unknown_name_message(
    kind: str, name: str, known: list[str], broken: Iterable[PluginLoadError] = ()
) -> str:
    """``unknown KIND 'NAME'; did you mean ...; known ...``, and the plugins that failed to
    load: the name may be theirs, and a typo hint alone would hide why it is missing."""
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    hint = f"did you mean '{close[0]}'? " if close else ""
    listing = ", ".join(known) if known else "(none installed)"
    message = f"unknown {kind} '{name}'; {hint}known {kind} plugins: {listing}"
    failed = "; ".join(str(err) for err in broken)
    if failed:
        message += f" (not loaded, and it may provide it: {failed})"
    return message


def load_registry(
    load_entrypoints: bool = True,
    allow: Iterable[str] | None = None,
    block: Iterable[str] | None = None,
    plugins: Iterable[tuple[str, object]] = (),
) -> Registry:
    """Discover plugins and return the registry (the usual entry point for library users)."""
    pm, infos, errors = get_plugin_manager(load_entrypoints, allow, block, plugins)
    return Registry.from_plugin_manager(pm, infos, errors)
