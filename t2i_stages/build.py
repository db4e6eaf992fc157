"""``assemble``: the one place a recipe becomes components, with the context they share.

The generator comes first: its stage resolutions decide the datasets' image sizes and each
discriminator's input size. The dataset's vocabulary sizes the text side. The matcher is
prepared (its pretraining, or its cached weights) with the datasets in hand. Plugins that
compose slots (a generator's stages, a stage's fusion block) build their children through the
registry themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch

from .contracts import loss_role
from .errors import T2IError
from .lifecycle import PrepareContext
from .recipe import LossSlot, Recipe, resolved_recipe
from .recipe.semantic import component_problems, discriminator_problems, raise_first
from .registry import Registry
from .seeding import rng_state, set_rng_state

PARTS = ("generator", "data", "matcher", "text_encoder", "discriminators", "losses")
"""What ``assemble`` builds by default: everything a training run needs."""


@dataclass
class BuiltLoss:
    """A recipe loss: the built object, its slot (weight, stages) and its checked role."""

    loss: Any
    slot: LossSlot
    role: str  # adversarial | matching | kl (t2i_stages.contracts)


@dataclass
class Assembly:
    """A recipe's components, built, and the context they were built with."""

    recipe: Recipe
    generator: Any = None
    resolutions: list[int] = field(default_factory=list)
    datasets: dict[str, Any] = field(default_factory=dict)  # split -> dataset
    vocab: Any = None
    matcher: Any = None
    matcher_report: dict | None = None  # R-precision and how the matcher was prepared
    matcher_keys: list[str] = field(default_factory=list)  # what a run saves of the matcher
    text_encoder: Any = None  # the recipe's text_encoder, else the matcher (frozen)
    discriminators: list[Any] = field(default_factory=list)
    losses: list[BuiltLoss] = field(default_factory=list)

    @property
    def context(self) -> dict[str, Any]:
        """What text-side factories are built with: the dataset's vocabulary and its size."""
        return (
            {"vocab": self.vocab, "vocab_size": len(self.vocab)} if self.vocab is not None else {}
        )

    @property
    def train_data(self) -> Any:
        return self.datasets.get("train")

    @property
    def test_data(self) -> Any:
        return self.datasets.get("test")


def assemble(
    recipe: Recipe,
    registry: Registry,
    parts: Iterable[str] = PARTS,
    splits: Iterable[str] = ("train", "test"),
    *,
    resolutions: list[int] | None = None,
    vocab: Any = None,
    device: torch.device | str = "cpu",
    runtime: Any = None,
    log: Callable[[str], None] = print,
) -> Assembly:
    """Build the ``parts`` of ``recipe`` (see ``PARTS``), with datasets for ``splits``.

    ``resolutions`` sizes the datasets when no generator is built (else G's stages do);
    ``vocab`` stands in for the dataset's when no data is built (a trained run's vocab.json).
    ``runtime`` (a training ``Runtime``) makes rank 0 build the caches before the other ranks
    read them. The global RNGs come out as they went in, whatever was cached.
    """
    parts = set(parts)
    unknown = parts - set(PARTS)
    if unknown:
        raise ValueError(f"assemble: unknown parts {sorted(unknown)}; choose from {PARTS}")
    a = Assembly(recipe, resolutions=list(resolutions or []), vocab=vocab)
    if parts & {"generator", "discriminators", "losses"}:
        a.generator = registry.build("generator", recipe.generator)
        a.resolutions = [int(r) for r in getattr(a.generator, "resolutions", []) or []]
    if "losses" in parts:  # cheap, and checked before any dataset is rendered
        for slot in recipe.losses:
            loss = registry.build("loss", slot)
            a.losses.append(BuiltLoss(loss, slot, loss_role(loss, slot.type)))
        raise_first(component_problems(recipe, a.resolutions, [x.role for x in a.losses]))
    outer_rng = rng_state()
    main = runtime is None or runtime.is_main
    if not main:
        runtime.barrier()  # rank 0 renders datasets and pretrains the matcher first
    if "data" in parts:
        for split in splits:
            a.datasets[split] = registry.build(
                "dataset", recipe.data.dataset, split=split, resolutions=a.resolutions or None
            )
        first = next(iter(a.datasets.values()), None)
        a.vocab = getattr(first, "vocab", None) if first is not None else vocab
    if "matcher" in parts and recipe.matcher is not None:
        _matcher(a, registry, device, log if main else (lambda *_: None))
    if runtime is not None and main:
        runtime.barrier()
    set_rng_state(outer_rng)
    if "cuda" not in outer_rng and torch.cuda.is_available() and torch.cuda.is_initialized():
        rank = runtime.rank if runtime is not None else 0
        torch.cuda.manual_seed_all(recipe.seed + rank)  # as seed_everything left it
    if "text_encoder" in parts:
        _text_encoder(a, registry, device)
    if "discriminators" in parts:
        raise_first(discriminator_problems(recipe, a.resolutions))
        a.discriminators = [
            registry.build("discriminator", slot, resolution=r, stage=i)
            for i, (slot, r) in enumerate(zip(recipe.discriminators, a.resolutions, strict=False))
        ]
    return a


def _frozen(module: torch.nn.Module) -> torch.nn.Module:
    return module.eval().requires_grad_(False)


def _matcher(a: Assembly, registry: Registry, device: Any, log: Callable[[str], None]) -> None:
    """The matcher, prepared (its plugin's pretraining or cache) on the run's data; built
    plainly when no train split was assembled."""
    recipe = a.recipe

    def build() -> Any:
        return registry.build("matcher", recipe.matcher, **a.context)

    if "train" not in a.datasets:
        a.matcher = build()
        return
    ctx = PrepareContext(
        name=recipe.matcher.type,
        build=build,
        train_data=a.datasets["train"],
        test_data=a.datasets.get("test"),
        dataset_key=resolved_recipe(recipe, registry)["data"]["dataset"],
        seed=recipe.seed,
        device=device,
        log=log,
        context=a.context,
        registry=registry,
    )
    prepared = registry.prepare("matcher", recipe.matcher, ctx)
    a.matcher = _frozen(prepared.component.to(device))
    a.matcher_report, a.matcher_keys = prepared.report, list(prepared.keep)


def _text_encoder(a: Assembly, registry: Registry, device: Any) -> None:
    recipe = a.recipe
    if recipe.text_encoder is not None:
        encoder = _frozen(registry.build("text_encoder", recipe.text_encoder, **a.context))
        a.text_encoder = encoder.to(device)
    elif a.matcher is not None:
        a.text_encoder = a.matcher
    else:
        raise_first(component_problems(a.recipe, None, None))  # no text features at all
    g_dim = getattr(a.generator, "text_dim", None)
    e_dim = getattr(a.text_encoder, "text_dim", None)
    if g_dim and e_dim and g_dim != e_dim:
        raise T2IError(f"generator.params.text_dim is {g_dim} but the text encoder gives {e_dim}")
