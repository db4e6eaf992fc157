"""The matcher pretraining loop: the DAMSM objective (W0 + W1 + S0 + S1, §5.1/§6.1).

Stops at ``steps``, at the ``max_minutes`` budget or on SIGINT/SIGTERM (at a step boundary),
and hands back what a continuation needs.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

import torch

from t2i_stages.plugin import StopRequests, T2IError

from ...common.retrieval import RPrecision, batch_images, collate_of, trim_padding
from ...losses.matching import sentence_loss, word_region_loss
from .params import PretrainParams

log_ = logging.getLogger("t2i_stages.pretrain")


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

    from t2i_stages.plugin import autocast

    say = log or log_.info
    start = int(resume["step"]) if resume else 0
    torch.manual_seed(seed + start)
    gen = torch.Generator().manual_seed(seed + start)  # a continuation sees other batches
    loader = DataLoader(
        train_data,
        batch_size=params.batch_size,
        shuffle=True,
        drop_last=len(train_data) >= params.batch_size,
        collate_fn=collate_of(train_data),
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
                images = batch_images(batch, params.resolution).to(device)
                tokens, mask = trim_padding(batch["tokens"].to(device), batch["mask"].to(device))
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
