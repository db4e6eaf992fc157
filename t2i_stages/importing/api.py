"""``import_release``: released files -> a run folder (the Python API of ``t2i-stages import``).

The folder is an ordinary run folder: ``recipe.resolved.yaml``, ``vocab.json``, one checkpoint
``checkpoints/step_00000000/`` (the components as safetensors, no optimizer state) and
``import.json`` (where every tensor came from, what was dropped, the files' SHA-256). ``eval``,
``generate`` and ``export`` read it as any run; ``train.init_from`` starts a run from it. A
release of a matcher alone (the DAMSM encoders) gives a run whose checkpoint holds the matcher
only: ``train.init_from`` and ``matcher.params.pretrain.weights`` take it, ``load_run`` does not.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from ..errors import T2IError
from ..hashing import sha256_file
from ..registry import Registry, load_registry
from .keymap import fit_tensors
from .legacy import ReleaseFile, read_release_file
from .release import ImportedRelease, Importer

RECIPE_FILE = "import.recipe.yaml"  # the importer's recipe, kept so its errors have lines


def choose_importer(
    family: str, files: list[ReleaseFile], registry: Registry
) -> tuple[str, Importer, str | None]:
    """(family, importer, the release it recognised); ``family="auto"`` asks every importer
    and needs exactly one to recognise the files."""
    from ..recipe.slots import Slot

    def build(name: str) -> Importer:
        return registry.build("importer", Slot(type=name))

    if family != "auto":
        importer = build(family)
        return family, importer, importer.identify(files)
    found = [
        (n, imp, r) for n in registry.names("importer") if (r := (imp := build(n)).identify(files))
    ]
    names = ", ".join(f.name for f in files)
    if not found:
        known = ", ".join(registry.names("importer")) or "(none installed)"
        raise T2IError(
            f"import: no importer recognises {names} by its keys and shapes; name the family "
            f"(one of: {known})"
        )
    if len(found) > 1:
        listing = "; ".join(f"{n}: {r}" for n, _, r in found)
        raise T2IError(f"import: {names} could be more than one release ({listing}); name one")
    return found[0]


def import_release(
    family: str,
    files: Sequence[str | Path],
    out: str | Path,
    registry: Registry | None = None,
    log: Callable[[str], None] = print,
    overrides: Sequence[str] = (),
) -> Path:
    """Import the released ``files`` of ``family`` (or ``"auto"``) into the run folder ``out``;
    ``overrides`` (``"data.dataset.params.root=data/coco"``) change the importer's recipe as
    ``--set`` does a recipe's (where the release's data lives, say)."""
    from ..build import assemble
    from ..checkpoint import list_checkpoints, save_checkpoint
    from ..recipe import load_recipe
    from ..seeding import rng_state
    from ..training.run_folder import write_resolved_recipe

    registry = registry or load_registry()
    out = Path(out)
    if list_checkpoints(out / "checkpoints"):
        raise T2IError(f"{out}: holds a run already; choose another --out (nothing overwritten)")
    if not files:
        raise T2IError("import: give at least one released file")
    loaded = [read_release_file(p) for p in files]
    family, importer, recognised = choose_importer(family, loaded, registry)
    log(f"import: {family}" + (f" ({recognised})" if recognised else ""))
    rel = importer.convert(loaded)
    out.mkdir(parents=True, exist_ok=True)
    for name, write in rel.assets.items():
        _write_asset(out / name, write)
    recipe_file = out / RECIPE_FILE
    recipe_data = _fill_run(rel.recipe, str(out.resolve()))
    recipe_file.write_text(yaml.safe_dump(recipe_data, sort_keys=False), encoding="utf-8")
    recipe = load_recipe(recipe_file, [*rel.overrides, *overrides], registry=registry)
    parts = ["generator"] + (["text_encoder"] if recipe.text_encoder else [])
    parts += ["matcher"] if recipe.matcher else []
    parts += (
        ["discriminators"] if any(k.startswith("discriminator_") for k in rel.components) else []
    )
    if rel.vocab is None:  # a text side with its own tokenizer: the dataset's word vocabulary
        log("import: the text side tokenizes itself; the vocabulary is the recipe's dataset's")
        parts += ["data"]
    built = assemble(recipe, registry, parts=parts, splits=("test",), vocab=rel.vocab, log=log)
    vocab = rel.vocab if rel.vocab is not None else built.vocab
    if vocab is None:
        raise T2IError(f"import: the {family} importer gave no vocabulary; give its vocab file")
    states = _fitted(rel, _targets(built), family)
    vocab.save(out / "vocab.json")
    write_resolved_recipe(recipe, registry, out, header=f"imported by `t2i-stages import {family}`")
    recipe_text = (out / "recipe.resolved.yaml").read_text(encoding="utf-8")
    state = {"epoch": 0, "batch_in_epoch": 0, "imported": rel.release}
    ckpt = save_checkpoint(out / "checkpoints", 0, states, {}, rng_state(), state, recipe_text)
    record = {
        "family": family,
        "release": rel.release,
        "files": {str(f.path): sha256_file(f.path) for f in loaded},
        "components": {
            name: {"from": rel.sources.get(name), "tensors": len(sd)}
            for name, sd in rel.components.items()
        },
        "dropped": rel.dropped,
        "overrides": [*rel.overrides, *overrides],
        "notes": rel.notes,
        "checkpoint": str(ckpt),
    }
    (out / "import.json").write_text(json.dumps(record, indent=2), encoding="utf-8")
    for note in rel.notes:
        log(f"import: note: {note}")
    log(f"import: wrote {out} ({', '.join(states)})")
    return out


def _targets(built: Any) -> dict[str, Any]:
    targets = {"generator": built.generator}
    if built.matcher is not None:
        targets["matcher"] = built.matcher
    if built.text_encoder is not None and built.text_encoder is not built.matcher:
        targets["text_encoder"] = built.text_encoder
    targets.update({f"discriminator_{i}": d for i, d in enumerate(built.discriminators)})
    return targets


def _fitted(rel: ImportedRelease, targets: dict[str, Any], family: str) -> dict[str, Any]:
    """Every component's full state dict, the released tensors checked against and loaded into
    the module the recipe built (so a map that only looks right still has to load)."""
    states: dict[str, Any] = {}
    for name, tensors in rel.components.items():
        module = targets.get(name)
        source = rel.sources.get(name, name)
        if module is None:
            raise T2IError(f"import: the {family} importer gave '{name}', which its recipe lacks")
        expected = module.state_dict()
        full = fit_tensors(tensors, expected, source, f"{rel.release} ({name})")
        module.load_state_dict(full, strict=True)
        # a matcher's checkpoint keeps what it does not re-read from its own files at build
        # time (frozen pretrained towers are re-read), as a training run's does
        keep = getattr(module, "trainable_state_dict", None) if name == "matcher" else None
        states[name] = keep() if keep is not None else module.state_dict()
    if not states.keys() & {"generator", "matcher"}:
        raise T2IError(f"import: no generator or matcher among the files ({rel.release})")
    return states


def _write_asset(folder: Path, write: Callable[[Path], None]) -> None:
    """Write an asset folder whole or not at all: into a sibling, renamed when complete."""
    import shutil

    partial = folder.with_name(f".{folder.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    write(partial)
    if folder.exists():
        shutil.rmtree(folder)
    partial.rename(folder)


def _fill_run(data: Any, run: str) -> Any:
    """Recipe data with ``{run}`` (an importer's name for the run folder) filled in."""
    if isinstance(data, dict):
        return {k: _fill_run(v, run) for k, v in data.items()}
    if isinstance(data, list):
        return [_fill_run(v, run) for v in data]
    if isinstance(data, str) and "{run}" in data:
        return data.replace("{run}", run)
    return data
