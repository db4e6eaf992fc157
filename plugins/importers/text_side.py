"""The text side of an import that the released files lack, taken from a t2i-stages run.

DF-GAN and GR-GAN publish a generator trained on the features of a text encoder that is
another file (AttnGAN's DAMSM; GR-GAN's CLIP-based ITM). A generator without its text side
cannot be used, and a randomly initialised encoder would give images of nothing, so an import
needs one: the released files themselves (``damsm_side``, ``itm``), or, read here, the
``recipe.resolved.yaml`` of a t2i-stages run folder named among the files: the output of
``t2i-stages import damsm`` or ``import itm``, or a run that trained such a matcher. From that folder come the slot (``matcher`` and/or ``text_encoder``, with every
param), ``vocab.json`` and the weights of its newest good checkpoint. A matcher's checkpoint
keeps only what trained; the frozen parts (a pretrained CLIP, Inception) are re-read from the
files that run read, as ``load_run`` does. Which kinds a family accepts, and the text size its
generator takes, are checked, each failure one line naming the file.

This module reads no tensors itself beyond the run's checkpoint (``latest_good_checkpoint``)
and builds the text side once through the registry to complete it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from t2i_stages.plugin import (
    MatcherSlot,
    ReleaseFile,
    T2IError,
    TextEncoderSlot,
    latest_good_checkpoint,
    load_tokenizer,
)

RUN_RECIPE = "recipe.resolved.yaml"
SLOTS = ("matcher", "text_encoder")
DAMSM_TEXT = {"matcher": {"damsm"}, "text_encoder": {"damsm_rnn"}}
"""The text sides trained on AttnGAN's DAMSM (DM-GAN's and DF-GAN's), by slot."""


@dataclass
class TextSide:
    """A run's text side: recipe slots (None = absent), complete state dicts, vocabulary."""

    run: Path
    slots: dict[str, dict[str, Any] | None]
    components: dict[str, dict[str, Any]]
    sources: dict[str, str]
    vocab: Any
    kind: str  # "matcher 'damsm'", "text_encoder 'damsm_rnn'": what gives the text features
    notes: list[str] = field(default_factory=list)


def run_recipes(files: list[ReleaseFile]) -> list[ReleaseFile]:
    """The files that name a run folder's text side (its ``recipe.resolved.yaml``)."""
    return [f for f in files if f.name == RUN_RECIPE]


def _slot(data: dict[str, Any], name: str, path: Path) -> dict[str, Any] | None:
    slot = data.get(name)
    if slot is None:
        return None
    if not isinstance(slot, dict) or not isinstance(slot.get("type"), str):
        raise T2IError(f"{path}: '{name}' is not a component slot (type and params)")
    return {"type": slot["type"], "params": dict(slot.get("params") or {})}


def read_text_side(
    files: list[ReleaseFile],
    family: str,
    accepted: dict[str, set[str]],
    text_dim: int,
    missing: str,
    registry: Any,
) -> TextSide:
    """The text side named among ``files`` for ``family``'s generator of text size ``text_dim``.

    ``accepted`` maps a slot (``matcher``, ``text_encoder``) to the plugin types the family's
    release was trained with; ``missing`` is the one-line message when no run is named.
    """
    found = run_recipes(files)
    if not found:
        raise T2IError(missing)
    if len(found) > 1:
        names = ", ".join(str(f.path) for f in found)
        raise T2IError(f"import {family}: name one text-side run, not {len(found)} ({names})")
    path = found[0].path
    run = path.parent
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise T2IError(f"{path}: not a readable run recipe ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise T2IError(f"{path}: not a run recipe (a mapping)")
    slots = {name: _slot(data, name, path) for name in SLOTS}
    giver = "text_encoder" if slots["text_encoder"] is not None else "matcher"
    if slots[giver] is None:
        raise T2IError(f"{path}: this run has no text side (no matcher, no text_encoder)")
    for name, slot in slots.items():
        if slot is not None and slot["type"] not in accepted.get(name, set()):
            want = " or ".join(f"{k} {sorted(v)}" for k, v in accepted.items() if v)
            raise T2IError(
                f"{path}: its {name} is '{slot['type']}'; a {family} release takes {want}"
            )
    vocab_path = run / "vocab.json"
    if not vocab_path.is_file():
        raise T2IError(f"{vocab_path}: missing (the text-side run's vocabulary)")
    vocab = load_tokenizer(vocab_path)
    ckpt = latest_good_checkpoint(run / "checkpoints", warn=lambda m: None)
    if ckpt is None:
        raise T2IError(f"{run / 'checkpoints'}: no usable checkpoint of the text-side run")
    components: dict[str, dict[str, Any]] = {}
    sources: dict[str, str] = {}
    built_dim = None
    for name, slot in slots.items():
        if slot is None:
            continue
        source = str(ckpt.path / f"{name}.safetensors")
        module = _build(registry, name, slot, vocab)
        components[name] = _complete(name, module, ckpt.components.get(name), source)
        sources[name] = source
        if name == giver:
            built_dim = getattr(module, "text_dim", None)
    if built_dim is not None and int(built_dim) != text_dim:
        raise T2IError(
            f"{path}: its {giver} gives text features of size {built_dim}; the {family} "
            f"generator takes {text_dim}"
        )
    kind = f"{giver} '{slots[giver]['type']}'"
    note = f"text side: {kind} from {run} (step {int(ckpt.state.get('step', 0))})"
    return TextSide(run, slots, components, sources, vocab, kind, [note])


def _build(registry: Any, name: str, slot: dict[str, Any], vocab: Any) -> Any:
    model = MatcherSlot if name == "matcher" else TextEncoderSlot
    ctx = {"vocab": vocab, "vocab_size": len(vocab)}
    return registry.build(name, model(type=slot["type"], params=slot["params"]), **ctx)


def _complete(name: str, module: Any, saved: dict[str, Any] | None, source: str) -> dict[str, Any]:
    """The component's full state dict: the run's saved tensors over what the module was built
    with. A matcher saves only what trained (``trainable_state_dict``); the rest is what its
    build re-read from its own files. Anything else missing is an error."""
    full = dict(module.state_dict())
    kept = set(module.trainable_state_dict()) if hasattr(module, "trainable_state_dict") else set()
    needed = kept if name == "matcher" else set(full)
    saved = saved or {}
    lacking = sorted(needed - set(saved))
    if lacking:
        shown = ", ".join(f"'{k}'" for k in lacking[:4])
        more = f" and {len(lacking) - 4} more" if len(lacking) > 4 else ""
        raise T2IError(f"{source}: the text-side run's {name} weights lack {shown}{more}")
    full.update(saved)
    return full
