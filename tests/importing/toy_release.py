"""Helpers of the import tests: a toy importer (its "release" is the micro recipe's generator saved under other key names,
in torch 0.4's legacy pickle format) to test the import path every family importer shares."""

from __future__ import annotations

from pathlib import Path

import torch

from t2i_stages.plugin import ComponentSpec, ImportedRelease, KeyMap, WordVocab, hookimpl

MICRO = Path(__file__).parents[1] / "training" / "micro.yaml"
RELEASE = "the toy release (micro config)"
TOY_MAP = KeyMap(
    [
        (r"net\.stage(\d+)\.(.*)", r"stages.\1.\2"),
        (r"net\.img(\d+)\.(.*)", r"heads.\1.\2"),
        (r"net\.unused\..*", None),
    ]
)


def reference_names(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our generator's state dict under the toy release's names (and an unused head)."""
    out = {}
    for k, v in sd.items():
        head, _, rest = k.partition(".")
        i, _, rest = rest.partition(".")
        out[f"net.{'stage' if head == 'stages' else 'img'}{i}.{rest}"] = v
    out["net.unused.weight"] = torch.zeros(3)
    return out


class ToyImporter:
    def identify(self, files):
        ok = any(k.startswith("net.stage0.") for f in files for k in f.tensors)
        return RELEASE if ok else None

    def convert(self, files):
        (g,) = [f for f in files if any(k.startswith("net.") for k in f.tensors)]
        (e,) = [f for f in files if any(k.startswith("enc.") for k in f.tensors)]
        sd, dropped = TOY_MAP.apply(g.tensors, str(g.path), RELEASE)
        return ImportedRelease(
            recipe={"extends": str(MICRO), "name": "toy-import"},
            components={"generator": sd, "matcher": e.part("enc")},
            sources={"generator": str(g.path), "matcher": str(e.path)},
            release=RELEASE,
            vocab=toy_vocab(),
            dropped={"generator": dropped},
            notes=["toy: nothing to switch"],
        )


def toy_vocab() -> WordVocab:
    """The shapes captions' words: the release's text side then fits a fine-tune on shapes."""
    from t2i_stages.plugins.datasets.shapes import shapes_vocab

    return shapes_vocab()


class ToyPlugin:
    @hookimpl
    def t2i_stages_importers(self):
        return {"toy": ComponentSpec(lambda params, **ctx: ToyImporter(), summary="toy")}
