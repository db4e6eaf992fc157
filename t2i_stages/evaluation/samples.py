"""Generated images for evaluation, drawn the same way in training and in ``t2i-stages eval``.

The first ``num_samples`` images of the test split give the captions (epoch 0 of the split, so
the caption drawn for each image is fixed by the dataset seed) and one noise draw per image comes
from ``noise_seed``: one ``torch.Generator`` is read batch after batch (z for the batch, then
its eps), so an image's noise depends on ``batch_size`` as well as the seed.

With ``passes`` > 1 (a protocol preset's), a ``num_samples`` larger than the split continues
with further passes over it, pass k drawing the captions of epoch k (as DM-GAN's sampling loops
over the test captions until it has 30,000 images).

Evaluation is streamed: ``SampleStream`` yields one ``EvalBatch`` at a time (generated images as
uint8, what a saved PNG would hold, and as generated, with their real counterparts, tokens,
captions, class ids and ground-truth attributes) and keeps nothing once the batch is consumed,
so memory does not grow with ``num_samples`` x image size. ``EvalSamples`` (every image at once) remains for metrics
written against the older ``compute(ctx)`` interface and for small scripts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.data import DataLoader, Subset

from ..errors import T2IError
from ..types import GeneratorOutput

GenerateFn = Callable[[dict, torch.Tensor, "torch.Tensor | None"], GeneratorOutput]


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float images -> uint8 (B, 3, H, W) on the CPU (round to nearest)."""
    x = (images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5
    return x.round().to(torch.uint8)


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 3, H, W) -> float in [-1, 1]."""
    return images.float() / 127.5 - 1.0


# How generated [-1, 1] images become the pixels a metric reads (its ``quantize`` param).
QUANTIZE: dict[str, str] = {
    "round": "rounded to uint8 (what a saved PNG holds: this project's default)",
    "floor": "(x + 1) * 127.5 cast to uint8, truncating, as the references saved their PNGs "
    "(AttnGAN/DM-GAN/GR-GAN trainer.py: im.astype(np.uint8))",
    "none": "not quantised: (x + 1) * 127.5 as float, the generator's output as it is (DF-GAN's "
    "in-process FID)",
}


def quantize_images(images: torch.Tensor, how: str) -> torch.Tensor:
    """Generated [-1, 1] float images -> pixels in [0, 255]: uint8 for ``round``/``floor``,
    float for ``none`` (see ``QUANTIZE``)."""
    if how == "round":
        return to_uint8(images)
    x = (images.detach().float().cpu() + 1) * 127.5
    if how == "floor":
        return x.clamp(0, 255).floor().to(torch.uint8)
    if how == "none":
        return x
    raise T2IError(f"unknown quantize '{how}'; known: {', '.join(QUANTIZE)}")


@dataclass
class EvalBatch:
    """One batch of the evaluation stream: generated images and what they were generated from.

    ``start`` is the position of the first image in the evaluation order, so per-image state
    kept by a metric lines up across batches. ``cached`` shares work between metrics within the
    batch (e.g. FID and KID read the same extractor's features of these images).
    """

    fake: torch.Tensor  # uint8 (B, 3, H, W), the last stage
    real: torch.Tensor  # uint8 (B, 3, H, W), the test images at the same resolution
    tokens: torch.Tensor  # int64 (B, T)
    mask: torch.Tensor  # bool (B, T)
    captions: list[str]
    class_ids: torch.Tensor  # int64 (B,), -1 = no class
    attributes: torch.Tensor | None  # dataset ground truth per image, or None
    indices: list[int]  # test-split index of each image
    start: int = 0
    cache: dict[str, Any] = field(default_factory=dict, repr=False)
    # float (B, 3, H, W) in [-1, 1] as generated; None when the images came as uint8 (files)
    fake_float: torch.Tensor | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return int(self.fake.shape[0])

    @property
    def resolution(self) -> int:
        return int(self.fake.shape[-1])

    def cached(self, key: str, fn: Callable[[], Any]) -> Any:
        """Compute once per batch, whichever metric asks first (dropped with the batch)."""
        if key not in self.cache:
            self.cache[key] = fn()
        return self.cache[key]

    def pixels(self, which: str = "fake", quantize: str = "round") -> torch.Tensor:
        """The batch's images in [0, 255] as a metric's protocol reads them: the real ones as
        stored (uint8), the generated ones quantised as ``quantize`` says (``QUANTIZE``; without
        ``fake_float`` they are the uint8 ``fake`` whatever ``quantize`` says)."""
        if which == "real":
            return self.real
        if quantize not in QUANTIZE:
            raise T2IError(f"unknown quantize '{quantize}'; known: {', '.join(QUANTIZE)}")
        if quantize == "round" or self.fake_float is None:
            return self.fake
        return self.cached(f"pixels:{quantize}", lambda: quantize_images(self.fake_float, quantize))


@dataclass
class EvalSamples:
    """Every generated image at once, with the captions and real images they came from.

    Holds 2 x N x 3 x H x W bytes: only metrics using the older ``compute(ctx)`` interface (and
    small scripts) need it; the evaluation itself streams ``EvalBatch`` objects.
    """

    fake: torch.Tensor  # uint8 (N, 3, H, W), the last stage
    real: torch.Tensor  # uint8 (N, 3, H, W), the test images at the same resolution
    tokens: torch.Tensor  # int64 (N, T)
    mask: torch.Tensor  # bool (N, T)
    captions: list[str]
    class_ids: torch.Tensor  # int64 (N,), -1 = no class
    attributes: torch.Tensor | None  # dataset ground truth per image, or None
    indices: list[int]
    noise_seed: int
    seconds: float = 0.0
    protocol: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.fake.shape[0])

    @property
    def resolution(self) -> int:
        return int(self.fake.shape[-1])

    @classmethod
    def from_batches(
        cls,
        batches: list[EvalBatch],
        noise_seed: int,
        seconds: float = 0.0,
        protocol: dict[str, Any] | None = None,
    ) -> EvalSamples:
        """Concatenate streamed batches (tokens padded to the longest batch)."""
        if not batches:
            raise T2IError("no evaluation batches to gather")
        attrs = [b.attributes for b in batches]
        return cls(
            fake=torch.cat([b.fake for b in batches]),
            real=torch.cat([b.real for b in batches]),
            tokens=_pad_cat([b.tokens for b in batches], 0),
            mask=_pad_cat([b.mask for b in batches], False),
            captions=[c for b in batches for c in b.captions],
            class_ids=torch.cat([b.class_ids for b in batches]).long(),
            attributes=torch.cat(attrs) if all(a is not None for a in attrs) else None,  # type: ignore[misc]
            indices=[i for b in batches for i in b.indices],
            noise_seed=noise_seed,
            seconds=seconds,
            protocol=dict(protocol or {}),
        )

    def batches(self, batch_size: int) -> Iterator[EvalBatch]:
        """Stream these samples back in batches (to feed streaming metrics)."""
        if batch_size < 1:
            raise T2IError(f"batch_size must be at least 1, got {batch_size}")
        for s in range(0, len(self), batch_size):
            e = s + batch_size
            yield EvalBatch(
                fake=self.fake[s:e],
                real=self.real[s:e],
                tokens=self.tokens[s:e],
                mask=self.mask[s:e],
                captions=self.captions[s:e],
                class_ids=self.class_ids[s:e],
                attributes=None if self.attributes is None else self.attributes[s:e],
                indices=self.indices[s:e],
                start=s,
            )


def _pad_cat(chunks: list[torch.Tensor], value: Any) -> torch.Tensor:
    width = max(c.shape[1] for c in chunks)
    return torch.cat(
        [torch.nn.functional.pad(c, (0, width - c.shape[1]), value=value) for c in chunks]
    )


class SampleStream:
    """Generates the evaluation images batch by batch; iterate it once.

    Nothing is kept between batches: a batch lives as long as its consumer holds it. After the
    first batch ``resolution`` is known; ``seconds`` adds up the time spent generating.
    """

    def __init__(
        self,
        dataset: Any,
        generate: GenerateFn,
        z_dim: int,
        eps_dim: int,
        num_samples: int,
        batch_size: int = 64,
        noise_seed: int = 100,
        passes: int = 1,
    ):
        if passes < 1:
            raise T2IError(f"evaluation passes must be at least 1, got {passes}")
        self.passes = int(passes)
        self.num_samples = min(int(num_samples), len(dataset) * self.passes)
        if self.num_samples < 2:
            raise T2IError(
                f"evaluation needs at least 2 test images; the test split has {len(dataset)}"
            )
        if batch_size < 1:
            raise T2IError(f"evaluation batch_size must be at least 1, got {batch_size}")
        self.dataset, self.generate = dataset, generate
        self.z_dim, self.eps_dim = z_dim, eps_dim
        self.batch_size, self.noise_seed = int(batch_size), noise_seed
        self.seconds = 0.0
        self.resolution: int | None = None

    @property
    def protocol(self) -> dict[str, Any]:
        """The shared sample protocol written into metrics.json (resolution once known)."""
        n, size = self.num_samples, len(self.dataset)
        images = f"the first {n} test images, caption drawn at epoch 0 of the split"
        if n > size:
            k = -(-n // size)
            images = (
                f"{n} images from {k} passes over the {size} test images, the captions of pass "
                f"p drawn at epoch p (the real images repeat with each pass)"
            )
        return {
            "num_samples": n,
            "split": "test",
            "images": images,
            "noise_seed": self.noise_seed,
            "resolution": self.resolution,
        }

    @torch.no_grad()
    def __iter__(self) -> Iterator[EvalBatch]:
        t0 = time.time()
        ds = self.dataset
        g = torch.Generator().manual_seed(self.noise_seed)
        done = 0
        for epoch in range(self.passes):
            count = min(self.num_samples - done, len(ds))
            if count <= 0:
                break
            if hasattr(ds, "set_epoch"):
                ds.set_epoch(epoch)
            loader = DataLoader(
                Subset(ds, range(count)),
                batch_size=self.batch_size,
                collate_fn=getattr(ds, "collate", None),
            )
            for batch in loader:
                out = self._make_batch(batch, g, done)
                del batch  # the loader's copy: only the EvalBatch lives on
                self.resolution = out.resolution
                self.seconds += time.time() - t0
                yield out
                done += len(out)
                del out
                t0 = time.time()
        self.seconds += time.time() - t0

    def _make_batch(self, batch: dict, g: torch.Generator, done: int) -> EvalBatch:
        b = batch["tokens"].shape[0]
        z = torch.randn(b, self.z_dim, generator=g)
        eps = torch.randn(b, self.eps_dim, generator=g) if self.eps_dim else None
        generated = self.generate(batch, z, eps).images[-1].detach().float().cpu()
        fake = to_uint8(generated)
        images = batch["images"]
        real = to_uint8(images[-1] if isinstance(images, list | tuple) else images)
        if fake.shape[-2:] != real.shape[-2:]:
            raise T2IError(
                f"generated images are {tuple(fake.shape[-2:])} but the test images "
                f"{tuple(real.shape[-2:])}"
            )
        cid, a, ix = batch.get("class_id"), batch.get("attributes"), batch.get("index")
        n = len(self.dataset)
        return EvalBatch(
            fake=fake,
            real=real,
            tokens=batch["tokens"].cpu(),
            mask=batch["mask"].cpu(),
            captions=list(batch.get("caption", [""] * b)),
            class_ids=(
                torch.as_tensor(cid).reshape(-1).long()
                if cid is not None
                else torch.full((b,), -1, dtype=torch.long)
            ),
            attributes=a.cpu() if torch.is_tensor(a) and a.numel() else None,
            indices=[int(i) for i in ix] if ix is not None else [(done + j) % n for j in range(b)],
            start=done,
            fake_float=generated,
        )


def stream_samples(
    dataset: Any,
    generate: GenerateFn,
    z_dim: int,
    eps_dim: int,
    num_samples: int,
    batch_size: int = 64,
    noise_seed: int = 100,
    passes: int = 1,
) -> SampleStream:
    """One image per test image (first ``num_samples``) with fixed noise, batch by batch;
    ``passes`` > 1 lets a larger ``num_samples`` go round the split again (new captions)."""
    return SampleStream(
        dataset, generate, z_dim, eps_dim, num_samples, batch_size, noise_seed, passes
    )


def _real_as_generated(batch: dict, z: torch.Tensor, eps: torch.Tensor | None) -> GeneratorOutput:
    images = batch["images"]
    last = images[-1] if isinstance(images, list | tuple) else images
    return GeneratorOutput([last], [], None, None)


def stream_from_real(dataset: Any, num_samples: int, batch_size: int = 64) -> SampleStream:
    """'Generated' = the real test images themselves (a sanity reference for every metric)."""
    return SampleStream(dataset, _real_as_generated, 1, 0, num_samples, batch_size)


def gather(stream: Iterable[EvalBatch] | SampleStream) -> EvalSamples:
    """Every batch of a stream in one ``EvalSamples`` (holds all images: small sets only)."""
    batches = list(stream)
    seed = getattr(stream, "noise_seed", 0)
    protocol = getattr(stream, "protocol", {})
    return EvalSamples.from_batches(batches, seed, getattr(stream, "seconds", 0.0), protocol)


@torch.no_grad()
def collect_samples(
    dataset: Any,
    generate: GenerateFn,
    z_dim: int,
    eps_dim: int,
    num_samples: int,
    batch_size: int = 64,
    noise_seed: int = 100,
) -> EvalSamples:
    """Every generated image at once (holds all of them; the evaluation streams instead)."""
    return gather(
        SampleStream(dataset, generate, z_dim, eps_dim, num_samples, batch_size, noise_seed)
    )


def samples_from_real(dataset: Any, num_samples: int, batch_size: int = 64) -> EvalSamples:
    """The real test images as 'generated' ones, all at once (see ``stream_from_real``)."""
    return gather(stream_from_real(dataset, num_samples, batch_size))
