"""What the metric plugins share: building extractors and encoders (held-out ones too), and
the record of how generated images were turned into pixels."""

from __future__ import annotations

import copy
from typing import Any

from t2i_stages.plugin import (
    QUANTIZE,
    ClipEncoder,
    EvalBatch,
    EvalContext,
    FidInceptionExtractor,
    ImageExtractor,
    ImageNetInceptionExtractor,
    InceptionExtractor,
    JointEncoder,
    MatcherEncoder,
    MatcherSlot,
    T2IError,
    matcher_extractor,
    oracle_extractor,
    random_extractor,
)

from .params import DEFAULT_CLIP, HeldOutParams


def run_matcher_seed(ctx: EvalContext) -> int | None:
    """The seed the run's own matcher was pretrained with (its pretrain.seed, else the
    recipe's seed); None without a recipe matcher."""
    recipe = ctx.recipe
    slot = getattr(recipe, "matcher", None) if recipe is not None else None
    if slot is None:
        return None
    resolved = slot.resolved
    pre = getattr(resolved, "pretrain", None) if resolved is not None else None
    seed = (
        getattr(pre, "seed", None)
        if pre is not None
        else (slot.params.get("pretrain") or {}).get("seed")
    )
    return int(recipe.seed if seed is None else seed)


def held_out_matcher(ctx: EvalContext, seed: int, slot: MatcherSlot | None = None) -> Any:
    """Pretrain (or load from the pretraining cache) a matcher the generator never saw.

    With the run's own matcher config and the seed that matcher was pretrained with, the
    "held-out" matcher would be the generator's training matcher again (same data, same
    weights): that is refused, naming the seed."""
    from t2i_stages.plugins.matchers.pretrain import pretrain_matcher

    base = slot or (ctx.recipe.matcher if ctx.recipe is not None else None)
    if base is None:
        raise T2IError(
            "a held-out encoder needs a matcher config: the run's recipe.matcher or held_out_matcher"
        )
    if slot is None and seed == run_matcher_seed(ctx):
        raise T2IError(
            f"held_out_seed {seed} is the seed the run's own matcher was pretrained with, so the "
            "held-out matcher would be the generator's training matcher; set another "
            "held_out_seed"
        )
    resolved = base.resolved.model_dump() if base.resolved is not None else dict(base.params)
    params = copy.deepcopy(resolved)
    pre = dict(params.get("pretrain") or {})
    pre.update(seed=seed, enabled=True, weights=None)
    params["pretrain"] = pre
    key = f"held_out:{base.type}:{params}"

    def build() -> Any:
        train = ctx.train_data()
        vocab = getattr(train, "vocab", None) or ctx.vocab
        context = {"vocab": vocab, "vocab_size": len(vocab)} if vocab is not None else {}
        ctx.log(f"eval: held-out matcher '{base.type}' (seed {seed}), pretrained or from the cache")
        result = pretrain_matcher(
            {"type": base.type, "params": params},
            train,
            ctx.test_data,
            registry=ctx.registry,
            seed=seed,
            context=context,
            device=ctx.device,
            log=ctx.log,
        )
        return result.matcher.to(ctx.device).eval().requires_grad_(False)

    return ctx.cached(key, build)


def dataset_oracle(ctx: EvalContext) -> Any:
    """The test dataset's own oracle (``dataset.oracle(resolution)``, the shapes dataset has
    one) at the samples' resolution; a T2IError for a dataset without one."""
    oracle = getattr(ctx.test_data, "oracle", None)
    if not callable(oracle):
        name = getattr(ctx.test_data, "name", type(ctx.test_data).__name__)
        raise T2IError(f"dataset '{name}' has no oracle (the built-in 'shapes' dataset has one)")
    res = ctx.resolution
    if res is None:
        raise T2IError("the oracle needs the evaluated images' resolution (ctx.resolution)")
    return ctx.cached(f"oracle:{res}", lambda: oracle(resolution=res).to(ctx.device))


def build_extractor(
    ctx: EvalContext,
    name: str,
    inception_path: str | None = None,
    random_seed: int = 0,
    random_dim: int = 64,
    held_out: HeldOutParams | None = None,
    weights: str | None = None,
    resize: str | None = None,
) -> ImageExtractor:
    """One image feature extractor by name, built once per evaluation (``resize``: the
    Inception extractors' resize, null = their own; ``weights``: the pytorch-fid and torchvision
    Inceptions' file)."""

    def build() -> ImageExtractor:
        if name == "inception":
            return InceptionExtractor(ctx.device, inception_path, resize)
        if name == "fid_inception":
            return FidInceptionExtractor(ctx.device, weights, resize)
        if name == "imagenet_inception":
            return ImageNetInceptionExtractor(ctx.device, weights, resize)
        if name == "matcher":
            return matcher_extractor(ctx.matcher, "run-matcher", ctx.device)
        if name == "held_out":
            h = held_out or HeldOutParams()
            m = held_out_matcher(ctx, h.held_out_seed, h.held_out_matcher)
            return matcher_extractor(m, f"held-out-matcher(seed={h.held_out_seed})", ctx.device)
        if name == "oracle":
            return oracle_extractor(dataset_oracle(ctx), ctx.device)
        if name == "random":
            return random_extractor(random_dim, random_seed, ctx.device)
        raise T2IError(f"unknown feature extractor '{name}'")

    hkey = held_out.model_dump_json() if held_out is not None else ""
    key = f"extractor:{name}:{inception_path}:{weights}:{resize}:{random_seed}:{random_dim}:{hkey}"
    return ctx.cached(key, build)


def build_joint(
    ctx: EvalContext,
    space: str,
    clip_folder: str = DEFAULT_CLIP,
    clip_normalize: bool = True,
    held_out: HeldOutParams | None = None,
    resize: str | None = None,
) -> JointEncoder:
    """An image-text encoder: 'clip' (local folder), 'matcher' (the run's) or 'held_out'
    (``resize``: CLIP's, null = clean_bilinear; a matcher resizes on its own)."""

    def build() -> JointEncoder:
        if space == "clip":
            return ClipEncoder(
                clip_folder, ctx.device, normalize=clip_normalize, resize=resize or "clean_bilinear"
            )
        if space in ("matcher", "run"):
            return MatcherEncoder(ctx.matcher, "run-matcher", ctx.device)
        if space == "held_out":
            h = held_out or HeldOutParams()
            m = held_out_matcher(ctx, h.held_out_seed, h.held_out_matcher)
            return MatcherEncoder(m, f"held-out-matcher(seed={h.held_out_seed})", ctx.device)
        raise T2IError(f"unknown image-text feature space '{space}'")

    hkey = held_out.model_dump_json() if held_out is not None else ""
    return ctx.cached(f"joint:{space}:{clip_folder}:{clip_normalize}:{resize}:{hkey}", build)


class PixelLog:
    """What a metric's protocol says of the generated images' round-trip: as asked, or uint8
    already where a batch had no float images (images read from files)."""

    def __init__(self, quantize: str):
        self.quantize, self.uint8_only = quantize, False

    def see(self, batch: EvalBatch) -> None:
        if self.quantize != "round" and batch.fake_float is None:
            self.uint8_only = True

    def describe(self) -> str:
        text = f"{self.quantize}: {QUANTIZE[self.quantize]}"
        if self.uint8_only:
            text += " (asked; the images came as uint8, so they were read as they are)"
        return text
