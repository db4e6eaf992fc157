"""Parameter counts and output shapes of a recipe's models (the API of `t2i-stages summary`).

The Python API is :func:`summarize` (a validated recipe) or :func:`summarize_models` (the
generator and discriminator slots alone). Both build the models and run one forward pass for
a batch of 2 with random text features, without training. By default the pass runs on
PyTorch's ``meta`` device: shapes and parameter counts are exact, but no weight is allocated
and nothing is computed, so even AttnGAN's 160M-parameter D256 summarises in about a second.
``device="cpu"`` builds and runs the models for real (reference init included).

Only the model sections of the recipe are validated against their plugins
(:func:`load_model_recipe`), so a summary needs neither the dataset nor the text encoder
plugins to be installed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import T2IError
from .recipe import DiscriminatorSlot, GeneratorSlot, Recipe, load_recipe
from .registry import Registry, load_registry
from .types import GeneratorOutput, TextFeatures


@dataclass
class SummaryRow:
    """One line of the summary: a component (indented by depth) and what it gives."""

    component: str
    plugin: str
    params: int
    output: str = ""
    attention: str = ""
    depth: int = 0


@dataclass
class SummaryTable:
    """The summary of a recipe's models; ``str(table)`` or :meth:`to_text` prints it."""

    rows: list[SummaryRow] = field(default_factory=list)
    batch_size: int = 2
    words: int = 12
    device: str = "meta"
    notes: list[str] = field(default_factory=list)

    def params_of(self, component: str) -> int:
        """The parameter count of a top-level component ('generator', 'discriminators.0', ...)."""
        for row in self.rows:
            if row.depth == 0 and row.component == component:
                return row.params
        raise KeyError(component)

    @property
    def total_params(self) -> int:
        return sum(r.params for r in self.rows if r.depth == 0)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_text(self) -> str:
        head = ("component", "plugin", "params", "output", "attention")
        body = [
            (
                "  " * r.depth + r.component,
                r.plugin,
                format_count(r.params),
                r.output,
                r.attention,
            )
            for r in self.rows
        ]
        widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]

        def line(cells: Sequence[str]) -> str:
            return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

        out = [line(head), line(["-" * w for w in widths])]
        out += [line(cells) for cells in body]
        out.append(f"total parameters: {format_count(self.total_params)}")
        out.append(
            f"(batch {self.batch_size}, {self.words} word positions, shapes computed on "
            f"device '{self.device}', no training)"
        )
        out += [f"note: {n}" for n in self.notes]
        return "\n".join(out)

    __str__ = to_text


def format_count(n: int) -> str:
    """``13,811,456 (13.81M)``: the exact count and the rounding the papers use."""
    if n >= 1_000_000:
        return f"{n:,} ({n / 1e6:.2f}M)"
    if n >= 1_000:
        return f"{n:,} ({n / 1e3:.1f}K)"
    return f"{n:,}"


def count_params(module: nn.Module) -> int:
    """Trainable tensors of a module (spectral norm's u/v are buffers and not counted)."""
    return sum(p.numel() for p in module.parameters())


def _shape(t: Any) -> str:
    return "x".join(str(d) for d in t.shape) if isinstance(t, torch.Tensor) else ""


def random_text(batch_size: int, text_dim: int, words: int, device: str) -> TextFeatures:
    """Random text features; the last sample has half of its word positions padded."""
    dev = torch.device(device)
    mask = torch.ones(batch_size, words, dtype=torch.bool, device=dev)
    if dev.type != "meta" and batch_size > 1 and words > 1:
        mask[-1, (words + 1) // 2 :] = False
    lengths = mask.sum(1) if dev.type != "meta" else torch.full((batch_size,), words, device=dev)
    return TextFeatures(
        torch.randn(batch_size, text_dim, words, device=dev),
        torch.randn(batch_size, text_dim, device=dev),
        mask,
        lengths,
        torch.ones(batch_size, words, dtype=torch.int64, device=dev) * mask,
    )


@contextlib.contextmanager
def _capture_stage_outputs(gen: nn.Module) -> Iterator[list[Any]]:
    outputs: list[Any] = []
    stages = getattr(gen, "stages", None)
    handles = []
    if isinstance(stages, nn.ModuleList):
        for stage in stages:
            handles.append(stage.register_forward_hook(lambda m, i, o: outputs.append(o)))
    try:
        yield outputs
    finally:
        for h in handles:
            h.remove()


def _slot_name(slot: Any) -> str:
    return getattr(slot, "type", "") or ""


def _sub_slot(slot: Any, name: str) -> Any:
    params = getattr(slot, "resolved", None) or getattr(slot, "params", None)
    if isinstance(params, dict):
        sub = params.get(name)
        return sub.get("type", "") if isinstance(sub, dict) else ""
    sub = getattr(params, name, None)
    return _slot_name(sub) if sub is not None else ""


def _list_param(slot: Any, name: str) -> list[Any]:
    params = getattr(slot, "resolved", None)
    value = getattr(params, name, None) if params is not None else None
    return list(value) if isinstance(value, (list, tuple)) else []


def _generator_rows(
    slot: GeneratorSlot, gen: nn.Module, out: GeneratorOutput, stage_outs: list[Any]
) -> list[SummaryRow]:
    images = ", ".join(_shape(im) for im in out.images)
    rows = [SummaryRow("generator", slot.type, count_params(gen), f"images {images}")]
    stages = getattr(gen, "stages", None)
    heads = getattr(gen, "heads", None)
    if not isinstance(stages, nn.ModuleList):
        for name, child in gen.named_children():
            plugin = _sub_slot(slot, name) or type(child).__name__
            rows.append(SummaryRow(name, plugin, count_params(child), depth=1))
        return rows
    stage_slots = _list_param(slot, "stages")
    for i, stage in enumerate(stages):
        st_slot = stage_slots[i] if i < len(stage_slots) else None
        feats = getattr(stage_outs[i], "features", None) if i < len(stage_outs) else None
        image = out.images[i] if i < len(out.images) else None
        att = out.attention[i - 1] if 0 < i <= len(out.attention) else None
        output = f"features {_shape(feats)} -> image {_shape(image)}" if feats is not None else ""
        rows.append(
            SummaryRow(
                f"stages.{i}",
                _slot_name(st_slot) or type(stage).__name__,
                count_params(stage),
                output,
                _shape(att) if att is not None else "-",
                depth=1,
            )
        )
        for part in ("conditioning", "fusion"):
            child = getattr(stage, part, None)
            if isinstance(child, nn.Module):
                rows.append(
                    SummaryRow(
                        part,
                        _sub_slot(st_slot, part) or type(child).__name__,
                        count_params(child),
                        depth=2,
                    )
                )
    if isinstance(heads, nn.ModuleList):
        head_slot = getattr(getattr(slot, "resolved", None), "image_head", None)
        rows.append(
            SummaryRow(
                f"image heads (x{len(heads)})",
                _slot_name(head_slot) or type(heads[0]).__name__,
                count_params(heads),
                depth=1,
            )
        )
    return rows


def _discriminator_rows(
    i: int, slot: DiscriminatorSlot, d: nn.Module, feats: torch.Tensor, uncond: Any, cond: Any
) -> list[SummaryRow]:
    heads = []
    if uncond is not None:
        heads.append(f"uncond {_shape(uncond)}")
    if cond is not None:
        heads.append(f"cond {_shape(cond)}")
    if (
        cond is None
        and getattr(d, "cond_joint", None) is not None
        and not getattr(d, "has_cond", True)
    ):
        heads.append("cond head built, unused")
    output = f"features {_shape(feats)}" + (f"; {', '.join(heads)}" if heads else "")
    res = getattr(d, "resolution", "?")
    rows = [SummaryRow(f"discriminators.{i}", f"{slot.type} ({res}px)", count_params(d), output)]
    for name, child in d.named_children():
        n = count_params(child)
        if n:
            rows.append(SummaryRow(name, type(child).__name__, n, depth=1))
    return rows


def _table(
    gen: nn.Module,
    generator: GeneratorSlot,
    built: Sequence[tuple[DiscriminatorSlot, nn.Module]],
    batch_size: int,
    words: int,
    device: str,
) -> SummaryTable:
    """Run the built models once on random inputs (on ``device``) and tabulate them."""
    table = SummaryTable(batch_size=batch_size, words=words, device=device)
    gen.eval()
    text_dim = int(getattr(gen, "text_dim", 256))
    z_dim = int(getattr(gen, "z_dim", 100))
    eps_dim = int(getattr(gen, "eps_dim", 0))
    text = random_text(batch_size, text_dim, words, device)
    z = torch.randn(batch_size, z_dim)
    eps = torch.randn(batch_size, eps_dim) if eps_dim else None
    with torch.no_grad(), _capture_stage_outputs(gen) as stage_outs:
        out = gen(z, eps, text)
    table.rows += _generator_rows(generator, gen, out, stage_outs)
    resolutions = list(getattr(gen, "resolutions", []))
    if built and len(built) != len(resolutions):
        table.notes.append(f"{len(built)} discriminators for {len(resolutions)} generator stages")
    for i, (slot, d) in enumerate(built):
        d.eval()
        res = int(getattr(d, "resolution", resolutions[i] if i < len(resolutions) else 64))
        if i < len(resolutions) and res != resolutions[i]:
            table.notes.append(
                f"discriminators.{i} takes {res}px images but generator stage {i} "
                f"makes {resolutions[i]}px"
            )
        with torch.no_grad():
            feats = d(torch.randn(batch_size, 3, res, res))
            uncond = d.uncond_logits(feats) if hasattr(d, "uncond_logits") else None
            c = d.condition(text) if hasattr(d, "condition") else None
            cond = d.cond_logits(feats, c) if c is not None else None
        table.rows += _discriminator_rows(i, slot, d, feats, uncond, cond)
    return table


def _on_meta_else_cpu(run: Callable[[str], SummaryTable], device: str) -> SummaryTable:
    """``run(device)``; if a third-party component cannot run on meta, again on the CPU."""
    try:
        return run(device)
    except (NotImplementedError, RuntimeError) as exc:
        if device != "meta" or isinstance(exc, T2IError):
            raise
        table = run("cpu")
        table.notes.append(f"meta-device pass failed ({type(exc).__name__}); ran on the CPU")
        return table


def summarize_models(
    generator: GeneratorSlot,
    discriminators: Sequence[DiscriminatorSlot] = (),
    registry: Registry | None = None,
    batch_size: int = 2,
    words: int = 12,
    device: str = "meta",
) -> SummaryTable:
    """Build a generator and its discriminators from bare slots (no recipe around them) and
    summarise them; a D is given its stage's resolution, and one that takes another size, or
    a count that does not match the stages, is a note rather than an error.

    ``device="meta"`` (default) gives exact shapes and counts without allocating weights;
    if a third-party component cannot run on meta, the pass is redone on the CPU (noted).
    """
    registry = registry or load_registry()

    def run(dev: str) -> SummaryTable:
        with torch.device(dev):
            gen = registry.build("generator", generator)
            resolutions = list(getattr(gen, "resolutions", []))
            built = [
                (slot, registry.build("discriminator", slot, **_d_context(i, resolutions)))
                for i, slot in enumerate(discriminators)
            ]
            return _table(gen, generator, built, batch_size, words, dev)

    return _on_meta_else_cpu(run, device)


def _d_context(i: int, resolutions: list[int]) -> dict[str, int]:
    return {"resolution": resolutions[i], "stage": i} if i < len(resolutions) else {}


def summarize(
    recipe: Recipe,
    registry: Registry | None = None,
    batch_size: int = 2,
    words: int = 12,
    device: str = "meta",
) -> SummaryTable:
    """Summarise a recipe's generator and discriminators (the Python API of `summary`), built
    by ``assemble`` as every command builds them (so the same checks hold: one D per stage)."""
    from .build import assemble

    registry = registry or load_registry()

    def run(dev: str) -> SummaryTable:
        with torch.device(dev):
            a = assemble(recipe, registry, parts=("generator", "discriminators"), device=dev)
            built = list(zip(recipe.discriminators, a.discriminators, strict=True))
            return _table(a.generator, recipe.generator, built, batch_size, words, dev)

    return _on_meta_else_cpu(run, device)


def load_model_recipe(
    path: str | Path, overrides: Sequence[str] = (), registry: Registry | None = None
) -> Recipe:
    """Read a recipe and validate only its generator, discriminators and train settings (the
    optimizers sized from the models); no dataset or text plugin is needed.

    Errors are ``RecipeError`` lines ``file:line: path: message`` as in `validate`.
    """
    only = ("generator", "discriminators", "train")
    return load_recipe(path, list(overrides), registry or load_registry(), only=only)
