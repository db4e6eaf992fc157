"""Helpers for the export tests: demo-size models from the demo recipes, toy models, noise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from t2i_stages.recipe import GeneratorSlot, MatcherSlot, TextEncoderSlot, read_recipe
from t2i_stages.text import WordVocab
from t2i_stages.types import GeneratorOutput, TextFeatures

REPO = Path(__file__).resolve().parents[2]
MAX_WORDS = 12

# The default exporter (dynamo) for GR-GAN (CLIP text tower, dynamic memory) and AttnGAN (DAMSM
# LSTM, word attention); DM-GAN's blocks are already covered by dynamo through GR-GAN and the
# trained micro run, so it takes the legacy tracer, which exports ~10x faster.
DEMO_EXPORTER = {"grgan": "dynamo", "attngan": "dynamo", "dmgan": "torchscript"}


def demo_vocab(n: int = 40) -> WordVocab:
    return WordVocab.build(
        ["a red circle at the top left", "two blue squares below a green triangle"],
        extra=[f"w{i}" for i in range(n)],
    )


def demo_sections(name: str) -> tuple[dict, str]:
    """The demo recipe recipes/<name>.yaml (``extends:`` resolved), and its path."""
    path = REPO / "recipes" / f"{name}.yaml"
    return read_recipe(path, []).data, str(path.relative_to(REPO))


def demo_models(registry: Any, name: str) -> tuple[nn.Module, Any, WordVocab, int, str]:
    """(generator, text encoder, vocab, max_words, origin) built from a demo recipe, untrained."""
    data, origin = demo_sections(name)
    vocab = demo_vocab()
    ctx = {"vocab": vocab, "vocab_size": len(vocab)}
    torch.manual_seed(0)
    if data.get("text_encoder"):
        enc = registry.build(
            "text_encoder", TextEncoderSlot.model_validate(data["text_encoder"]), **ctx
        )
    else:
        enc = registry.build("matcher", MatcherSlot.model_validate(data["matcher"]), **ctx)
    gen = registry.build("generator", GeneratorSlot.model_validate(data["generator"]))
    dataset = (data.get("data") or {}).get("dataset", {}).get("params", {})
    max_words = int(dataset.get("max_words", MAX_WORDS))
    return gen.eval(), enc.eval(), vocab, max_words, origin


# ---------------------------------------------------------------------------------------------
# toy models: fast to export with the torchscript exporter


class ToyEncoder(nn.Module):
    """Mean of embedded real words; words masked to zero."""

    def __init__(self, vocab_size: int, dim: int = 8):
        super().__init__()
        self.emb = nn.Embedding(vocab_size, dim)
        self.text_dim = dim

    def encode_text(self, tokens: torch.Tensor, mask: torch.Tensor) -> TextFeatures:
        m = mask.to(torch.float32)
        words = self.emb(tokens * mask.long()) * m[..., None]
        sentence = words.sum(1) / m.sum(1, keepdim=True).clamp_min(1.0)
        return TextFeatures(words.transpose(1, 2), sentence, mask, mask.sum(1))


class ToyGenerator(nn.Module):
    """Two stages (4 and 8 px) from [z ; eps-shifted sentence]; ``quirk`` breaks tracing."""

    def __init__(self, dim: int = 8, z_dim: int = 4, eps_dim: int = 2, quirk: bool = False):
        super().__init__()
        self.z_dim, self.eps_dim, self.text_dim = z_dim, eps_dim, dim
        self.resolutions = [4, 8]
        self.fc = nn.Linear(z_dim + dim + eps_dim, 3 * 16)
        self.quirk = quirk

    def forward(self, z: torch.Tensor, eps: torch.Tensor | None, text: TextFeatures):
        e = eps if eps is not None else torch.zeros(z.shape[0], self.eps_dim)
        x = torch.tanh(self.fc(torch.cat([z, text.sentence, e], 1))).view(-1, 3, 4, 4)
        if self.quirk and z.shape[0] == 2:  # a Python branch: traced as a constant
            x = x * 0.5
        big = torch.nn.functional.interpolate(x, scale_factor=2.0, mode="nearest")
        return GeneratorOutput([x, big], [None], None, None)


# ---------------------------------------------------------------------------------------------
# micro-size stage-wise generators (tests/training/micro.yaml): seconds to export

MICRO = REPO / "tests" / "training" / "micro.yaml"

# fusion -> the micro recipe's overrides: AttnGAN-style word attention, DM-GAN's dynamic memory,
# and GR-GAN's pair (dynamic memory over the tiled sentence, then over the words)
MICRO_STYLES = {
    "attngan": ["generator.params.stages.1.params.fusion.type=word_attention"],
    "dmgan": [],
    "grgan": [
        "generator.params.stages.0.params.upsamples=1",
        "generator.params.stages.1.params.conditioning.type=sentence_tiled",
        "generator.params.stages.2={type: refine, params: {conditioning: {type: words}, "
        "fusion: {type: dynamic_memory}, residual_blocks: 1}}",
    ],
}


def micro_models(registry: Any, style: str) -> tuple[nn.Module, Any, WordVocab, int]:
    """(generator, DAMSM text encoder, vocab, max_words) of the micro recipe in ``style``."""
    data = read_recipe(MICRO, MICRO_STYLES[style]).data
    vocab = demo_vocab()
    torch.manual_seed(0)
    ctx = {"vocab": vocab, "vocab_size": len(vocab)}
    enc = registry.build("matcher", MatcherSlot.model_validate(data["matcher"]), **ctx)
    gen = registry.build("generator", GeneratorSlot.model_validate(data["generator"]))
    return gen.eval(), enc.eval(), vocab, 8


def untrained_run(registry: Any, out: Path, recipe: str | Path, overrides: list[str]) -> Path:
    """A run folder with randomly initialised weights, saved as a run saves them (no training):
    what ``export`` reads, in a second."""
    from t2i_stages.build import assemble
    from t2i_stages.checkpoint import save_checkpoint
    from t2i_stages.plugins.datasets.shapes import shapes_vocab
    from t2i_stages.recipe import load_recipe
    from t2i_stages.seeding import rng_state
    from t2i_stages.training.run_folder import write_resolved_recipe

    torch.manual_seed(0)
    rec = load_recipe(recipe, overrides, registry)
    vocab = shapes_vocab()
    built = assemble(rec, registry, parts=["generator", "matcher"], vocab=vocab, log=lambda m: None)
    out.mkdir(parents=True)
    write_resolved_recipe(rec, registry, out, header="an untrained run for the export tests")
    vocab.save(out / "vocab.json")
    comps = {
        "generator": built.generator.state_dict(),
        "matcher": built.matcher.trainable_state_dict(),
    }
    text = (out / "recipe.resolved.yaml").read_text()
    state = {"epoch": 0, "batch_in_epoch": 0}
    save_checkpoint(out / "checkpoints", 0, comps, {}, rng_state(), state, text)
    return out
