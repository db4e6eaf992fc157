"""Evaluation is streamed: no image outlives its batch, metrics keep features, and the numbers
do not depend on how the images were batched."""

from __future__ import annotations

import gc
import weakref
from typing import Any

import numpy as np
import pytest
import torch

from t2i_stages.evaluation import (
    EvalBatch,
    EvalContext,
    MetricResult,
    evaluate_stream,
    stream_from_real,
    stream_samples,
)
from t2i_stages.evaluation.slots import build_metrics, make_slot
from t2i_stages.recipe.slots import MetricSlot
from t2i_stages.types import GeneratorOutput

N = 32  # the micro recipe's whole test split


def _quiet(_: str) -> None:
    pass


@pytest.fixture(scope="module")
def micro(micro_run_dir, registry):
    """The trained micro run, its test split and a context factory."""
    from t2i_stages.api import load_run

    run = load_run(micro_run_dir, registry=registry)
    test = registry.build(
        "dataset", run.recipe.data.dataset, split="test", resolutions=run.generator.resolutions
    )

    def ctx(batch_size: int) -> EvalContext:
        return EvalContext(
            registry=registry,
            recipe=run.recipe,
            test_data=test,
            matcher=run.text_encoder,
            vocab=run.vocab,
            batch_size=batch_size,
            log=_quiet,
        )

    return run, test, ctx


def _metrics(registry: Any, specs: list[str]) -> list:
    from t2i_stages.evaluation.slots import parse_metric_spec

    return build_metrics([parse_metric_spec(s, registry) for s in specs], registry, "cpu")


def _array_bytes(value: Any, depth: int = 0) -> tuple[int, int]:
    """(bytes, largest ndim) of the tensors and arrays held in plain containers."""
    if torch.is_tensor(value):
        return value.numel() * value.element_size(), value.dim()
    if isinstance(value, np.ndarray):
        return value.nbytes, value.ndim
    if depth < 3 and isinstance(value, list | tuple):
        parts = [_array_bytes(v, depth + 1) for v in value]
    elif depth < 3 and isinstance(value, dict):
        parts = [_array_bytes(v, depth + 1) for v in value.values()]
    else:  # models, extractors, the context: shared, their size does not grow with N
        return 0, 0
    return sum(p[0] for p in parts), max((p[1] for p in parts), default=0)


class Spy:
    """A streamed metric that watches every other one: are earlier batches' images still alive,
    and how much do the others keep?"""

    name = "spy"

    def __init__(self, others: list[Any]):
        self.others = others
        self.refs: list[weakref.ref] = []
        self.most_alive_earlier = 0
        self.state: dict[str, tuple[int, int]] = {}
        self.batches = 0

    def start(self, ctx: EvalContext) -> None:
        self.n = ctx.num_samples

    def update(self, batch: EvalBatch) -> None:
        gc.collect()
        alive = sum(r() is not None for r in self.refs)
        self.most_alive_earlier = max(self.most_alive_earlier, alive)
        self.refs += [weakref.ref(batch.fake), weakref.ref(batch.real)]
        self.batches += 1
        if batch.start + len(batch) == self.n:  # the last batch: everything else is state
            self.state = {m.name: _array_bytes(vars(m)) for m in self.others}

    def finish(self) -> MetricResult:
        return MetricResult({"batches": float(self.batches)})


def test_evaluation_never_holds_more_than_a_batch_of_images(micro, registry):
    run, test, make_ctx = micro
    G = run.generator
    specs = ["fid:extractor=random", "kid:extractor=matcher", "r_precision:candidates=8:folds=2",
             "cmd:space=matcher", "cmd:space=matcher:captions=all"]  # fmt: skip
    built = _metrics(registry, specs)
    spy = Spy([m for _, _, m in built])
    built.append(("spy", MetricSlot(type="spy"), spy))

    @torch.no_grad()
    def generate(batch: dict, z: torch.Tensor, eps: torch.Tensor | None):
        text = run.text_encoder.encode_text(batch["tokens"], batch["mask"])
        return G(z, eps, text)

    stream = stream_samples(test, generate, G.z_dim, G.eps_dim, N, batch_size=2)
    report = evaluate_stream(make_ctx(2), built, stream)
    assert report["results"]["spy"]["values"]["batches"] == N / 2
    # no earlier batch's images were alive when a batch reached the last metric, nor after
    assert spy.most_alive_earlier == 0
    gc.collect()
    assert all(r() is None for r in spy.refs)
    # what the metrics kept over all N images is smaller than the N generated images alone
    image_bytes = N * 3 * 32 * 32
    assert set(spy.state) == {m.name for _, _, m in built[:-1]}
    for name, (nbytes, ndim) in spy.state.items():
        assert 0 < nbytes < image_bytes, name
        assert ndim <= 2, f"{name} keeps something image-shaped"
    for key in ("fid", "kid", "r_precision", "cmd", "cmd#2"):
        assert "error" not in report["results"][key]


def _mirrored(batch: dict, z: torch.Tensor, eps: torch.Tensor | None) -> GeneratorOutput:
    """A noise-free 'generator': the real image mirrored and darkened (so FD is not ~0)."""
    return GeneratorOutput([batch["images"][-1].flip(-1) * 0.8], [], None, None)


def test_results_do_not_depend_on_the_eval_batch_size(micro, registry, tiny_clip_folder):
    """The same images streamed 3 at a time or all at once give the same numbers.

    (A real generator's noise is drawn batch after batch, so its images depend on the batch
    size; a noise-free one isolates what the streaming itself does.)"""
    _, test, make_ctx = micro
    clip = str(tiny_clip_folder)
    specs = ["fid:extractor=random", "kid:extractor=matcher", "r_precision:candidates=8:folds=2",
             "cmd:space=matcher", "cmd:space=matcher:captions=all", f"clip_score:clip_folder={clip}",
             f"cmd:clip_folder={clip}"]  # fmt: skip
    reports = [
        evaluate_stream(
            make_ctx(bs), _metrics(registry, specs), stream_samples(test, _mirrored, 1, 0, N, bs)
        )
        for bs in (3, N)
    ]
    small, large = (r["results"] for r in reports)
    assert list(small) == list(large)
    for key in small:
        a, b = small[key], large[key]
        assert set(a["values"]) == set(b["values"]), key
        for name, value in a["values"].items():
            # equal up to float32 noise: a network's kernels may sum in another order for
            # another batch shape (measured: relative differences up to about 1e-6)
            assert value == pytest.approx(b["values"][name], rel=1e-5, abs=1e-9), (key, name)
        for name, value in a.get("std", {}).items():
            assert value == pytest.approx(b["std"][name], rel=1e-5, abs=1e-9), (key, name)
    assert reports[0]["protocol"]["batch_size"] == 3
    assert reports[0]["protocol"]["num_samples"] == N


def test_a_metric_without_the_streamed_interface_is_refused_by_name(micro, registry):
    from t2i_stages.errors import T2IError

    _, test, make_ctx = micro

    class AllAtOnce:
        name = "all_at_once"

        def compute(self, ctx: EvalContext) -> MetricResult:
            return MetricResult({"n": 0.0})

    slot = make_slot("fid", {"extractor": "random"}, registry)
    with pytest.raises(
        T2IError, match="metric 'all_at_once' .AllAtOnce. has no start/update/finish"
    ):
        evaluate_stream(
            make_ctx(5), [("all_at_once", slot, AllAtOnce())], stream_from_real(test, N, 5)
        )


def test_a_failing_streamed_metric_is_recorded_and_the_others_finish(micro, registry):
    from t2i_stages.errors import T2IError

    _, test, make_ctx = micro

    class Breaks:
        name = "breaks"

        def start(self, ctx: EvalContext) -> None:
            pass

        def update(self, batch: EvalBatch) -> None:
            if batch.start >= 8:
                raise T2IError("broken on purpose")

        def finish(self) -> MetricResult:  # pragma: no cover - never reached
            raise AssertionError

    built = _metrics(registry, ["fid:extractor=random"])
    built.insert(0, ("breaks", MetricSlot(type="breaks"), Breaks()))
    report = evaluate_stream(make_ctx(4), built, stream_from_real(test, N, 4), strict=False)
    assert report["results"]["breaks"]["error"] == "broken on purpose"
    assert list(report["results"]) == ["breaks", "fid"]
    assert "FD[random]" in report["results"]["fid"]["values"]
    with pytest.raises(T2IError, match="metric 'breaks': broken on purpose"):
        evaluate_stream(make_ctx(4), built, stream_from_real(test, N, 4), strict=True)


def test_inception_score_streams_class_probabilities(micro, registry, monkeypatch):
    """IS with a stand-in network (the real weights are an offline asset): the per-image
    probabilities kept over the batches give the same score as all images at once."""
    from t2i_stages.evaluation import inception_score_from_probs, samples_from_real
    from t2i_stages.plugins.metrics import inception_score as mod

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten(), torch.nn.Linear(12, 1000)
    ).eval()
    monkeypatch.setattr(mod, "load_inception", lambda path, device: (net, "0" * 64))
    _, test, make_ctx = micro
    n = 20
    values = []
    for bs in (3, n):
        built = _metrics(registry, ["inception_score:splits=4"])
        report = evaluate_stream(make_ctx(bs), built, stream_from_real(test, n, bs))
        values.append(report["results"]["inception_score"])
    assert values[0]["values"]["IS"] == pytest.approx(values[1]["values"]["IS"], rel=1e-6)
    metric = mod.InceptionScoreMetric(mod.InceptionScoreParams(splits=4))
    probs = metric.probabilities(samples_from_real(test, n, n).fake)
    mean, std = inception_score_from_probs(probs, 4)
    assert values[1]["values"]["IS"] == pytest.approx(mean, rel=1e-9)
    assert values[1]["std"]["IS"] == pytest.approx(std, rel=1e-6, abs=1e-12)
    assert values[1]["protocol"]["resizer"].endswith("32 -> 299 px, [-1, 1]")
