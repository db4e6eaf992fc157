"""``pretrain_matcher``: a trained matcher for a recipe, from the cache or by training it.

This is the built-in matchers' ``prepare`` step (``t2i_stages.lifecycle``): the assembler
calls it with the datasets in hand. It builds the matcher at the pretraining seed (the initial
weights are part of what the cache key decides), loads a cached result, continues an
incomplete one, or trains, and reports R-precision on the test split.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from t2i_stages.plugin import Artefact, MatcherSlot, PrepareContext, Prepared, PrepareStopped

from ...common.retrieval import RPrecision, evaluate_r_precision
from .cache import (
    FORMAT_VERSION,
    OPTIMIZER_FILE,
    WEIGHTS,
    canonical,
    dataset_fingerprint,
    folder_fingerprint,
    load_matcher_weights,
    matcher_cache_payload,
    resumable,
    save_matcher,
    stopped_by_text,
)
from .loop import train_matcher
from .params import PretrainParams

log_ = logging.getLogger("t2i_stages.pretrain")


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


class PretrainingStopped(PrepareStopped):
    """SIGTERM or SIGINT stopped a matcher's pretraining at a step boundary; what it reached is
    cached as incomplete (weights and optimizer), and the next run continues it."""

    def __init__(self, signal_name: str, step: int, steps: int, folder: Path):
        self.step, self.steps, self.folder = step, steps, folder
        super().__init__(
            f"stopped by {signal_name} during matcher pretraining at step {step} of {steps}; "
            f"the progress is cached in {folder}",
            signal_name,
            "matcher pretraining",
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
    from t2i_stages.plugin import load_registry

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
        "pretrained_files": folder_fingerprint(getattr(model, "folder", None)),
    }
    from t2i_stages.plugin import resolve_precision

    choice = resolve_precision(p.precision, device, what="matcher pretrain.precision")
    if choice.warning:
        say(f"warning: {choice.warning}")
    extra["precision"] = choice.chosen  # bf16 and fp32 pretraining give different weights
    payload = matcher_cache_payload(mtype, resolved, data_desc, p, run_seed, extra)
    artefact = Artefact("matchers", payload, root=cache_root)
    key, folder = artefact.digest, artefact.path
    weights = folder / WEIGHTS
    resume: dict[str, Any] | None = None
    if artefact.ready() and not force:
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
        resume = resumable(folder, config, key) if config.get("key") == key else None
        rp_old = (config.get("r_precision") or {}).get("mean")
        if resume is not None:
            say(
                f"matcher cache {folder}: an earlier pretraining stopped "
                f"({stopped_by_text(config)}) after {resume['step']} of {p.steps} steps "
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
        "matcher": {"type": mtype, "params": canonical(resolved)},
        "dataset": canonical(data_desc),
        "pretrain": canonical(p),
        "seed": run_seed,
        "context": canonical(extra),
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
    save_matcher(model, artefact, config, extra_files)
    if stopped_by_signal is not None:
        raise PretrainingStopped(stopped_by_signal, steps, p.steps, folder)
    how = "continued" if resume else "trained"
    return PretrainResult(model, rp, key, folder, False, steps, seconds, history, p.steps, how)


def prepare_matcher(params: Any, ctx: PrepareContext) -> Prepared:
    """The built-in matchers' ``prepare`` step: ``pretrain_matcher`` on the run's data.

    A third-party matcher with ``encode_image``/``encode_text``/``trainable_state_dict`` gets
    the same pretraining with ``ComponentSpec(..., prepare=prepare_matcher)``.
    """
    result = pretrain_matcher(
        (ctx.name, params),
        ctx.train_data,
        ctx.test_data,
        registry=ctx.registry,
        dataset_key=ctx.dataset_key,
        seed=ctx.seed,
        device=ctx.device,
        context=ctx.context,
        log=ctx.log,
    )
    matcher = result.matcher.to(ctx.device)
    report = None
    if result.r_precision is not None:
        rp = result.r_precision
        report = {
            "r_precision": rp.mean,
            "r_precision_std": rp.std,
            "cached": result.from_cache,
            "how": result.how,
            "steps": result.steps,
            "target_steps": result.target_steps,
            "complete": result.complete,
        }
    return Prepared(matcher, report, sorted(matcher.trainable_state_dict()))
