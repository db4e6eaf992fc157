"""JSON Schema of recipes with every installed plugin, for editor completion.

The static schema has generic slots; here each slot kind's definition is replaced by a
``oneOf`` over the installed plugins of that kind, each with ``type`` fixed to the plugin's
name and ``params`` described by the plugin's own params model.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic.json_schema import models_json_schema

from ..registry import Registry
from .schema import Recipe
from .slots import SLOT_TYPES


def recipe_json_schema(registry: Registry) -> dict[str, Any]:
    models: list[Any] = [(Recipe, "validation")]
    models += [(cls, "validation") for cls in SLOT_TYPES.values()]
    entries = [(kind, name) for kind in SLOT_TYPES for name in registry.names(kind)]
    models += [(registry.get(k, n).spec.params, "validation") for k, n in entries]
    keys, top = models_json_schema(models, ref_template="#/$defs/{model}")
    defs = top.get("$defs", {})

    def ref_of(model: Any) -> dict[str, Any]:
        return keys[(model, "validation")]

    for kind, slot_cls in SLOT_TYPES.items():
        slot_ref = ref_of(slot_cls)["$ref"].split("/")[-1]
        base = defs[slot_ref]
        options = []
        for name in registry.names(kind):
            entry = registry.get(kind, name)
            option = copy.deepcopy(base)
            option["title"] = f"{kind}: {name}"
            option["description"] = entry.spec.summary
            option["properties"]["type"] = {"const": name, "description": entry.spec.summary}
            option["properties"]["params"] = ref_of(entry.spec.params)
            option["required"] = ["type"]
            options.append(option)
        if options:
            defs[slot_ref] = {"title": base.get("title", slot_ref), "oneOf": options}
    schema = ref_of(Recipe)
    root = copy.deepcopy(defs[schema["$ref"].split("/")[-1]])
    root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    root["title"] = "t2i-stages recipe"
    root["$defs"] = defs
    root.setdefault("properties", {})["extends"] = {
        "type": "string",
        "description": "Path of a base recipe this one deep-merges over.",
    }
    return root
