"""Matcher pretraining (DAMSM / ITM) with R-precision and a content-addressed cache.

``pretrain_matcher`` trains a matcher on a train split with the DAMSM objective
(W0 + W1 + S0 + S1, §5.1/§6.1), reports R-precision on the test split (1 true caption among 100,
§9.3) and stores the result under ``$T2I_STAGES_HOME/cache/matchers/<key>/`` as
``matcher.safetensors`` + ``config.json``. The key is a hash of everything that determines the
trained weights: matcher type and params, dataset description, pretraining params, seed and the
vocabulary size (plus, for a pretrained CLIP/Inception, the size and name of its local files).
A second call with the same inputs loads the cached weights instead of training.

With ``max_minutes`` set, the number of steps run depends on the machine. The cache records
the steps reached and the R-precision; an entry that a time cap stopped short of its steps is
marked incomplete (with the optimizer state beside it), and the next call continues it instead
of handing it back as if it were finished. The key also holds the resolved precision (``auto``
may train in bf16 on one machine and fp32 on another). Frozen pretrained weights are never copied into the cache: they are
read again from their local files when the matcher is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, Field

from .assets import cache_dir
from .errors import T2IError
from .recipe.slots import MatcherSlot
from .signals import StopRequests
from .spec import Params

FORMAT_VERSION = 1
log_ = logging.getLogger("t2i_stages.pretrain")


class PretrainParams(Params):
    """How a matcher is pretrained and evaluated (part of the matcher's params in a recipe)."""

    enabled: bool = Field(
        True, description="Pretrain this matcher before GAN training when it is not trained yet."
    )
    weights: str | None = Field(
        None,
        description="A trained matcher's .safetensors file to load instead of pretraining "
        "(its config.json must sit beside it).",
    )
    steps: int = Field(3000, ge=0, description="Optimizer steps (upper bound).")
    max_minutes: float | None = Field(
        5.0, gt=0, description="Wall-clock budget for training (excluding evaluation); null = none."
    )
    batch_size: int = Field(32, ge=2, description="Batch size (also the number of negatives).")
    lr: float = Field(2e-3, gt=0, description="Adam learning rate (DAMSM's ENCODER_LR = 0.002).")
    betas: tuple[float, float] = Field((0.5, 0.999), description="Adam betas.")
    weight_decay: float = Field(0.0, ge=0, description="Adam weight decay.")
    warmup_steps: int = Field(50, ge=0, description="Linear learning-rate warm-up steps.")
    schedule: Literal["constant", "cosine"] = Field(
        "constant",
        description="Learning rate after the warm-up: constant, or a cosine decay to zero over "
        "the run, measured as the larger of steps/'steps' and seconds/'max_minutes' (so a "
        "time-capped run decays over its time budget, whatever the machine's speed).",
    )
    grad_clip: float | None = Field(
        None, gt=0, description="Clip the gradient norm (DAMSM clips the RNN at 0.25); null = off."
    )
    word_weight: float = Field(1.0, ge=0, description="Weight of the word-region loss W0 + W1.")
    word_batch: int | None = Field(
        None,
        ge=2,
        description="Compute the word-region loss on the first N pairs of each batch only (its "
        "cost grows with the batch squared times words times regions); null = the whole batch.",
    )
    word_grad: bool = Field(
        True,
        description="False: the word-region loss does not train the text encoder (its word "
        "features enter through a stop-gradient). With the small CNN's region_grad: false, "
        "the word loss then trains only the region projection and cannot slow the sentence "
        "objective, which carries R-precision.",
    )
    sentence_weight: float = Field(1.0, ge=0, description="Weight of the sentence loss S0 + S1.")
    gamma1: float = Field(4.0, gt=0, description="γ1 of the word-region attention.")
    gamma2: float = Field(5.0, gt=0, description="γ2 of the word-region score.")
    gamma3: float = Field(10.0, gt=0, description="γ3 of the logits.")
    class_masking: bool = Field(True, description="Mask same-class negatives (§6.1.8).")
    resolution: int = Field(
        -1, description="Which image of the dataset's resolution list to train on (-1 = largest)."
    )
    eval_samples: int = Field(1000, ge=1, description="Test images used for R-precision.")
    candidates: int = Field(100, ge=2, description="Captions ranked per image (1 true + others).")
    folds: int = Field(10, ge=1, description="Folds for the R-precision mean ± std.")
    eval_every: int | None = Field(
        None, ge=1, description="Also evaluate every N steps (history only); null = at the end."
    )
    log_every: int = Field(50, ge=1, description="Log the loss every N steps.")
    seed: int | None = Field(None, description="Seed; null = the caller's (the recipe's) seed.")
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto",
        description="Autocast for pretraining: auto = bf16 where the device runs it natively, "
        "fp32 elsewhere (see train.precision); the losses are computed in fp32.",
    )


@dataclass
class RPrecision:
    """R-precision: fraction of images whose true caption ranks first among ``candidates``."""

    mean: float
    std: float
    samples: int
    candidates: int
    folds: int


@dataclass
class PretrainResult:
    """A trained (or cache-loaded) matcher and how it scored."""

    matcher: Any
    r_precision: RPrecision | None
    key: str
    path: Path
    from_cache: bool
    steps: int
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)
    target_steps: int = 0
    how: str = ""  # trained | loaded | continued | weights | untrained: what the run log says

    @property
    def complete(self) -> bool:
        """False when a time cap stopped pretraining short of its steps."""
        return self.steps >= self.target_steps


# ----------------------------------------------------------------------------- evaluation


def retrieval_r_precision(
    codes: torch.Tensor,
    sentences: torch.Tensor,
    class_ids: torch.Tensor | None = None,
    candidates: int = 100,
    folds: int = 10,
    seed: int = 0,
) -> RPrecision:
    """R-precision of image ``codes`` (N, D) against their ``sentences`` (N, D) (§9.3).

    For every image: the true sentence plus ``candidates - 1`` sentences of other images of a
    different class (any other image when a class id is negative or absent), ranked by cosine;
    a hit when the true one is strictly first. Mean over all images, std over ``folds`` folds.
    With fewer suitable images than needed, the others are drawn with replacement.
    """
    n = codes.shape[0]
    if n < 2:
        raise ValueError("R-precision needs at least two image-caption pairs")
    c = torch.nn.functional.normalize(codes.float(), dim=1)
    s = torch.nn.functional.normalize(sentences.float(), dim=1)
    sims = (c @ s.t()).cpu().numpy()
    ids = None if class_ids is None else torch.as_tensor(class_ids).reshape(-1).cpu().numpy()
    rng = np.random.default_rng(seed)
    k = candidates - 1
    hits = np.zeros(n, dtype=np.float64)
    every = np.arange(n)
    for i in range(n):
        allowed = every != i
        if ids is not None and ids[i] >= 0:
            other_class = allowed & (ids != ids[i])
            if other_class.any():
                allowed = other_class
        pool = every[allowed]
        chosen = rng.choice(pool, size=k, replace=len(pool) < k)
        hits[i] = float(sims[i, i] > sims[i, chosen].max())
    rng.shuffle(hits)
    parts = [p for p in np.array_split(hits, min(folds, n)) if len(p)]
    per_fold = np.array([p.mean() for p in parts])
    return RPrecision(float(hits.mean()), float(per_fold.std()), n, candidates, len(parts))


def _batch_images(batch: Mapping[str, Any], resolution: int) -> torch.Tensor:
    images = batch["images"]
    if isinstance(images, torch.Tensor):
        return images
    return images[resolution]


def _trim(tokens: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop word positions that are padding in every caption of the batch (saves compute)."""
    longest = max(int(mask.sum(1).max()), 1) if mask.numel() else 1
    return tokens[:, :longest], mask[:, :longest]


def _collate(dataset: Any) -> Callable | None:
    return getattr(dataset, "collate", None)


@torch.no_grad()
def evaluate_r_precision(
    matcher: Any,
    dataset: Any,
    samples: int = 1000,
    candidates: int = 100,
    folds: int = 10,
    seed: int = 0,
    batch_size: int = 64,
    resolution: int = -1,
    device: str | torch.device = "cpu",
) -> RPrecision:
    """Encode the first ``samples`` test items with ``matcher`` and compute R-precision."""
    from torch.utils.data import DataLoader, Subset

    was_training = matcher.training
    matcher.eval()
    n = min(samples, len(dataset))
    loader = DataLoader(
        Subset(dataset, range(n)),
        batch_size=batch_size,
        shuffle=False,
        collate_fn=_collate(dataset),
    )
    codes, sents, ids = [], [], []
    for batch in loader:
        img = _batch_images(batch, resolution).to(device)
        codes.append(matcher.encode_image(img).code.cpu())
        text = matcher.encode_text(*_trim(batch["tokens"].to(device), batch["mask"].to(device)))
        sents.append(text.sentence.cpu())
        if "class_id" in batch:
            ids.append(torch.as_tensor(batch["class_id"]).reshape(-1))
    matcher.train(was_training)
    class_ids = torch.cat(ids) if ids else None
    return retrieval_r_precision(
        torch.cat(codes), torch.cat(sents), class_ids, candidates, folds, seed
    )


# ----------------------------------------------------------------------------- cache key


def _canonical(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return _canonical(value.model_dump(mode="json"))
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return float(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


def dataset_fingerprint(dataset: Any, probe: int = 16) -> dict[str, Any]:
    """A description of a dataset for the cache key when the caller has no recipe slot for it."""
    out: dict[str, Any] = {"class": type(dataset).__qualname__, "len": len(dataset)}
    params = getattr(dataset, "params", None)
    if isinstance(params, BaseModel):
        out["params"] = params.model_dump(mode="json")
    h = hashlib.sha256()
    captions = getattr(dataset, "captions", None)
    for i in range(min(probe, len(dataset))):
        if callable(captions):
            text = captions(i)
        else:
            text = dataset[i].get("caption", "")
        h.update(json.dumps(text, sort_keys=True, default=str).encode())
    out["captions_sha256"] = h.hexdigest()
    return out


def _folder_fingerprint(folder: Path | None) -> dict[str, int] | None:
    if folder is None:
        return None
    return {
        str(p.relative_to(folder)): p.stat().st_size
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def matcher_cache_key(
    matcher_type: str,
    matcher_params: BaseModel | Mapping[str, Any],
    dataset: Any,
    params: PretrainParams,
    seed: int,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """sha256 over everything that determines a pretrained matcher (hex, 64 chars)."""
    mp = _canonical(matcher_params)
    if isinstance(mp, dict):
        mp.pop("pretrain", None)  # given separately, minus the fields that do not train
    pp = _canonical(params)
    for name in ("enabled", "weights", "log_every"):
        pp.pop(name, None)
    payload = {
        "format": FORMAT_VERSION,
        "matcher": {"type": matcher_type, "params": mp},
        "dataset": _canonical(dataset),
        "pretrain": pp,
        "seed": int(seed),
        "extra": _canonical(dict(extra or {})),
    }
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


# ----------------------------------------------------------------------------- save / load


def save_matcher(
    matcher: Any, folder: Path, config: dict[str, Any], extra: dict[str, Any] | None = None
) -> Path:
    """Write ``matcher.safetensors`` (trainable weights + buffers) and ``config.json``, and
    each of ``extra`` (file name -> state dict, saved with torch.save) into one new folder that
    replaces ``folder`` whole."""
    from safetensors.torch import save_file

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))
    try:
        state = {
            k: v.detach().cpu().contiguous().clone()
            for k, v in matcher.trainable_state_dict().items()
        }
        save_file(state, str(tmp / "matcher.safetensors"))
        for name, value in (extra or {}).items():
            if value is not None:
                torch.save(value, tmp / name)
        (tmp / "config.json").write_text(
            json.dumps(config, indent=2, sort_keys=True), encoding="utf-8"
        )
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


def load_matcher_weights(matcher: Any, weights: str | Path) -> dict[str, Any]:
    """Load a ``matcher.safetensors`` into ``matcher``; returns the config.json beside it."""
    from safetensors.torch import load_file

    path = Path(weights)
    if not path.is_file():
        raise T2IError(f"matcher weights not found: {path}")
    state = load_file(str(path))
    expected = set(matcher.trainable_state_dict())
    missing = sorted(expected - set(state))
    if missing:
        raise T2IError(
            f"{path}: does not fit this matcher ({len(missing)} trained tensors missing, e.g. "
            f"{missing[0]}); was it trained with other matcher params?"
        )
    try:
        result = matcher.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise T2IError(
            f"{path}: does not fit this matcher: {first[-1] if first else exc}"
        ) from None
    if result.unexpected_keys:
        raise T2IError(
            f"{path}: unexpected tensors for this matcher, e.g. {result.unexpected_keys[0]}"
        )
    matcher.trained = True
    config_path = path.with_name("config.json")
    if config_path.is_file():
        return json.loads(config_path.read_text(encoding="utf-8"))
    return {}


# ----------------------------------------------------------------------------- training


def _slot_parts(matcher: Any) -> tuple[str, Any]:
    """(type, params) from a MatcherSlot, a {type, params} dict or a (type, params) pair."""
    if isinstance(matcher, tuple):
        return matcher[0], matcher[1]
    if isinstance(matcher, Mapping):
        return matcher["type"], matcher.get("params", {})
    resolved = getattr(matcher, "resolved", None)
    return matcher.type, resolved if resolved is not None else matcher.params


def _default_context(train_data: Any) -> dict[str, Any]:
    vocab = getattr(train_data, "vocab", None)
    ctx: dict[str, Any] = {}
    if vocab is not None:
        ctx["vocab"] = vocab
        ctx["vocab_size"] = len(vocab)
    return ctx


class PretrainingStopped(Exception):
    """SIGTERM or SIGINT stopped a matcher's pretraining at a step boundary; what it reached is
    cached as incomplete (weights and optimizer), and the next run continues it."""

    def __init__(self, signal_name: str, step: int, steps: int, folder: Path):
        self.signal_name, self.step, self.steps, self.folder = signal_name, step, steps, folder
        super().__init__(
            f"stopped by {signal_name} during matcher pretraining at step {step} of {steps}; "
            f"the progress is cached in {folder}"
        )


def lr_factor(params: PretrainParams, step: int, seconds: float, budget: float) -> float:
    """Learning-rate multiplier for optimizer step ``step`` (0-based) after ``seconds``."""
    warm = max(params.warmup_steps, 0)
    factor = min(1.0, (step + 1) / warm) if warm else 1.0
    if params.schedule == "cosine":
        progress = max(step / max(params.steps, 1), seconds / budget)
        factor *= 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
    return factor


def train_matcher(
    matcher: Any,
    train_data: Any,
    params: PretrainParams,
    seed: int = 0,
    device: str | torch.device = "cpu",
    log: Callable[[str], None] | None = None,
    evaluate: Callable[[Any], RPrecision] | None = None,
    precision: str = "fp32",
    resume: dict[str, Any] | None = None,
    state: dict[str, Any] | None = None,
) -> tuple[int, float, list[dict[str, float]]]:
    """The pretraining loop; returns (steps run in all, training seconds in all, history).

    ``precision`` is the resolved autocast (fp32 or bf16). ``resume`` continues an earlier
    pretraining that a time cap stopped short: ``{"step", "seconds", "optimizer", "history"}``;
    the time budget then counts from now, and a cosine schedule follows the steps alone.
    ``state``, when given, receives the optimizer's state (what a later continuation needs).
    """
    from torch.utils.data import DataLoader

    from .hardware import autocast
    from .plugins.losses.matching import sentence_loss, word_region_loss

    say = log or log_.info
    start = int(resume["step"]) if resume else 0
    torch.manual_seed(seed + start)
    gen = torch.Generator().manual_seed(seed + start)  # a continuation sees other batches
    loader = DataLoader(
        train_data,
        batch_size=params.batch_size,
        shuffle=True,
        drop_last=len(train_data) >= params.batch_size,
        collate_fn=_collate(train_data),
        generator=gen,
        num_workers=0,
    )
    trainable = [p for p in matcher.parameters() if p.requires_grad]
    if not trainable:
        raise T2IError("this matcher has no trainable parameters to pretrain")
    opt = torch.optim.Adam(
        trainable, lr=params.lr, betas=params.betas, weight_decay=params.weight_decay
    )
    if resume:
        opt.load_state_dict(resume["optimizer"])
    budget = params.max_minutes * 60 if params.max_minutes else math.inf
    history: list[dict[str, float]] = list(resume.get("history", [])) if resume else []
    matcher.to(device).train()
    step, trained_s = start, 0.0
    before_s = float(resume["seconds"]) if resume else 0.0
    schedule_budget = math.inf if resume else budget
    epoch, running = 0, 0.0
    with StopRequests() as stops:
        while step < params.steps and trained_s < budget and not stops.signal:
            if hasattr(train_data, "set_epoch"):
                train_data.set_epoch(epoch)
            last = time.perf_counter()  # the clock counts data loading too, not evaluation
            for batch in loader:
                images = _batch_images(batch, params.resolution).to(device)
                tokens, mask = _trim(batch["tokens"].to(device), batch["mask"].to(device))
                ids = batch.get("class_id") if params.class_masking else None
                ids = None if ids is None else torch.as_tensor(ids).to(device)
                with autocast(precision, device):
                    img = matcher.encode_image(images)
                    txt = matcher.encode_text(tokens, mask)
                if precision != "fp32":  # the losses (softmaxes over the batch) in fp32
                    img, txt = _to_float(img), _to_float(txt)
                loss = images.new_zeros(())
                if params.word_weight:
                    k = params.word_batch or images.shape[0]
                    w0, w1 = word_region_loss(
                        img.regions[:k],
                        txt.words[:k] if params.word_grad else txt.words[:k].detach(),
                        txt.mask[:k],
                        None if ids is None else ids[:k],
                        params.gamma1,
                        params.gamma2,
                        params.gamma3,
                    )
                    loss = loss + params.word_weight * (w0 + w1)
                if params.sentence_weight:
                    s0, s1 = sentence_loss(img.code, txt.sentence, ids, params.gamma3)
                    loss = loss + params.sentence_weight * (s0 + s1)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if params.grad_clip:
                    torch.nn.utils.clip_grad_norm_(trainable, params.grad_clip)
                lr = params.lr * lr_factor(params, step, trained_s, schedule_budget)
                for group in opt.param_groups:
                    group["lr"] = lr
                opt.step()
                step += 1
                now = time.perf_counter()
                trained_s += now - last
                last = now
                running += float(loss.detach())
                if step % params.log_every == 0:
                    say(
                        f"matcher pretrain step {step}: loss {running / params.log_every:.4f} ({before_s + trained_s:.0f}s)"
                    )
                    running = 0.0
                if evaluate is not None and params.eval_every and step % params.eval_every == 0:
                    rp = evaluate(matcher)
                    matcher.train()
                    history.append(
                        {
                            "step": step,
                            "seconds": before_s + trained_s,
                            "loss": float(loss.detach()),
                            "r_precision": rp.mean,
                        }
                    )
                    say(
                        f"matcher pretrain step {step}: R-precision {rp.mean:.3f} ({trained_s:.0f}s)"
                    )
                    last = time.perf_counter()
                if step >= params.steps or trained_s >= budget or stops.signal:
                    break
            epoch += 1
    matcher.eval()
    if state is not None:
        state["optimizer"] = opt.state_dict()
        state["signal"] = stops.signal
    return step, before_s + trained_s, history


def _to_float(features: Any) -> Any:
    """Matcher features (a NamedTuple of tensors) in fp32."""
    return type(features)(
        *(f.float() if torch.is_tensor(f) and f.is_floating_point() else f for f in features)
    )


def pretrain_matcher(
    matcher: Any,
    train_data: Any,
    test_data: Any,
    params: PretrainParams | None = None,
    *,
    registry: Any = None,
    dataset_key: Any = None,
    seed: int = 0,
    cache_root: str | Path | None = None,
    context: Mapping[str, Any] | None = None,
    device: str | torch.device = "cpu",
    log: Callable[[str], None] | None = None,
    force: bool = False,
) -> PretrainResult:
    """Pretrain (or load from the cache) the matcher a recipe slot names.

    ``matcher`` is a MatcherSlot, ``{"type": ..., "params": {...}}`` or ``(type, params)``.
    ``params`` defaults to the matcher's own ``pretrain`` params. ``dataset_key`` describes the
    data for the cache key (pass the recipe's dataset slot); by default the datasets are
    fingerprinted. ``context`` is passed to the matcher factory (default: the train split's
    ``vocab`` and ``vocab_size``). ``force`` retrains even when a cached result exists.
    """
    from .registry import load_registry

    say = log or log_.info
    registry = registry or load_registry()
    mtype, mparams = _slot_parts(matcher)
    ctx = dict(context) if context is not None else _default_context(train_data)

    resolved = registry.validate_params("matcher", mtype, mparams)
    build_slot = MatcherSlot(type=mtype, params=resolved.model_dump())
    build_slot.resolve(resolved)
    p = params or getattr(resolved, "pretrain", None) or PretrainParams()
    run_seed = p.seed if p.seed is not None else seed

    def build() -> Any:
        torch.manual_seed(run_seed)  # the initial weights are part of what the key determines
        return registry.build("matcher", build_slot, **ctx)

    model = build()  # fails here, before any training, if a pretrained asset is absent
    if not p.enabled and not p.weights:  # the recipe opts out: use the matcher as built
        return PretrainResult(model, None, "", Path(), False, 0, 0.0)
    if p.weights:
        config = load_matcher_weights(model, p.weights)
        rp = config.get("r_precision")
        rpo = RPrecision(**rp) if isinstance(rp, dict) else None
        return PretrainResult(
            model, rpo, config.get("key", ""), Path(p.weights).parent, True, 0, 0.0
        )

    data_desc = (
        dataset_key
        if dataset_key is not None
        else {
            "train": dataset_fingerprint(train_data),
            "test": dataset_fingerprint(test_data),
        }
    )
    extra = {
        "vocab_size": ctx.get("vocab_size"),
        "pretrained_files": _folder_fingerprint(getattr(model, "folder", None)),
    }
    from .hardware import resolve_precision

    choice = resolve_precision(p.precision, device, what="matcher pretrain.precision")
    if choice.warning:
        say(f"warning: {choice.warning}")
    extra["precision"] = choice.chosen  # bf16 and fp32 pretraining give different weights
    key = matcher_cache_key(mtype, resolved, data_desc, p, run_seed, extra)
    root = Path(cache_root) if cache_root is not None else cache_dir("matchers")
    folder = root / key[:24]
    weights = folder / "matcher.safetensors"
    resume: dict[str, Any] | None = None
    if weights.is_file() and not force:
        config = load_matcher_weights(model, weights)
        if config.get("key") == key and config.get("complete", True):
            rpo = RPrecision(**config["r_precision"]) if config.get("r_precision") else None
            say(
                f"matcher '{mtype}' loaded from cache {folder} after {config.get('steps', '?')} of "
                f"{p.steps} steps (R-precision {rpo.mean if rpo else 'n/a'})"
            )
            return PretrainResult(
                model, rpo, key, folder, True, int(config.get("steps", 0)), float(config.get("seconds", 0.0)),
                list(config.get("history", [])), p.steps, "loaded",
            )  # fmt: skip
        resume = _resumable(folder, config, key) if config.get("key") == key else None
        rp_old = (config.get("r_precision") or {}).get("mean")
        if resume is not None:
            say(
                f"matcher cache {folder}: an earlier pretraining stopped "
                f"({_stopped_by_text(config)}) after {resume['step']} of {p.steps} steps "
                f"(R-precision {rp_old}); continuing it"
            )
        else:
            if config.get("key") == key:
                say(
                    f"matcher cache {folder}: an earlier pretraining stopped after "
                    f"{config.get('steps', '?')} of {p.steps} steps and cannot be continued; "
                    "retraining it"
                )
            model = build()  # stale or short entry: start again from scratch

    def evaluate(m: Any) -> RPrecision:
        return evaluate_r_precision(
            m,
            test_data,
            p.eval_samples,
            p.candidates,
            p.folds,
            run_seed,
            resolution=p.resolution,
            device=device,
        )

    if resume is None:
        say(
            f"pretraining matcher '{mtype}' (key {key[:12]}) for up to {p.steps} steps / "
            f"{p.max_minutes} min; {choice.describe('precision')}"
        )
    state: dict[str, Any] = {}
    steps, seconds, history = train_matcher(
        model, train_data, p, run_seed, device, say, evaluate, choice.chosen, resume, state
    )
    stopped_by_signal = state.get("signal") if steps < p.steps else None
    model.trained = True
    complete = steps >= p.steps
    rp = None
    if stopped_by_signal is None:  # a stop request gets its checkpoint now, not an evaluation
        rp = evaluate(model)
        say(
            f"matcher '{mtype}' R-precision {rp.mean:.3f} ± {rp.std:.3f} after {steps} of {p.steps} steps ({seconds:.0f}s)"
        )
    if not complete and stopped_by_signal is None:
        say(
            f"warning: matcher pretraining stopped at its max_minutes cap ({p.max_minutes:g}) after "
            f"{steps} of {p.steps} steps; it is cached as incomplete and the next run continues it "
            "(raise matcher.params.pretrain.max_minutes to finish in one go)"
        )
    config = {
        "format": FORMAT_VERSION,
        "key": key,
        "matcher": {"type": mtype, "params": _canonical(resolved)},
        "dataset": _canonical(data_desc),
        "pretrain": _canonical(p),
        "seed": run_seed,
        "context": _canonical(extra),
        "steps": steps,
        "target_steps": p.steps,
        "complete": complete,
        "stopped_by": "steps" if complete else stopped_by_signal or "max_minutes",
        "continued_from": resume["step"] if resume else None,
        "seconds": seconds,
        "precision": choice.to_dict(),
        "r_precision": rp.__dict__ if rp is not None else None,
        "history": history,
        "torch": torch.__version__,
    }
    extra_files = {} if complete else {OPTIMIZER_FILE: state.get("optimizer")}
    save_matcher(model, folder, config, extra_files)
    if stopped_by_signal is not None:
        raise PretrainingStopped(stopped_by_signal, steps, p.steps, folder)
    how = "continued" if resume else "trained"
    return PretrainResult(model, rp, key, folder, False, steps, seconds, history, p.steps, how)


OPTIMIZER_FILE = "optimizer.pt"


def _stopped_by_text(config: dict[str, Any]) -> str:
    by = config.get("stopped_by") or "max_minutes"
    return "at its max_minutes cap" if by == "max_minutes" else f"by {by}"


def _resumable(folder: Path, config: dict[str, Any], key: str) -> dict[str, Any] | None:
    """What continuing a cached, incomplete pretraining needs, or None if it cannot be."""
    path = folder / OPTIMIZER_FILE
    if not path.is_file():
        return None
    try:
        optimizer = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - a damaged file means retraining, never a crash
        return None
    return {
        "step": int(config.get("steps", 0)),
        "seconds": float(config.get("seconds", 0.0)),
        "optimizer": optimizer,
        "history": list(config.get("history", [])),
    }
