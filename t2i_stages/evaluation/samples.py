"""Generated images for evaluation, drawn the same way in training and in ``t2i-stages eval``.

The first ``num_samples`` images of the test split give the captions (epoch 0 of the split, so
the caption drawn for each image is fixed by the dataset seed) and one noise draw per image comes
from ``noise_seed``. Images are kept as uint8 (what a saved PNG would hold) with their real
counterparts, tokens, captions, class ids and ground-truth attributes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
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


@dataclass
class EvalSamples:
    """Generated images with the captions and real images they came from."""

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


def _pad_cat(chunks: list[torch.Tensor], value: Any) -> torch.Tensor:
    width = max(c.shape[1] for c in chunks)
    return torch.cat(
        [torch.nn.functional.pad(c, (0, width - c.shape[1]), value=value) for c in chunks]
    )


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
    """Generate one image per test image (first ``num_samples``) with fixed noise."""
    start = time.time()
    n = min(int(num_samples), len(dataset))
    if n < 2:
        raise T2IError(
            f"evaluation needs at least 2 test images; the test split has {len(dataset)}"
        )
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(0)
    loader = DataLoader(
        Subset(dataset, range(n)),
        batch_size=batch_size,
        collate_fn=getattr(dataset, "collate", None),
    )
    g = torch.Generator().manual_seed(noise_seed)
    fake, real, tokens, mask, caps, cls, attrs, idx = [], [], [], [], [], [], [], []
    for batch in loader:
        b = batch["tokens"].shape[0]
        z = torch.randn(b, z_dim, generator=g)
        eps = torch.randn(b, eps_dim, generator=g) if eps_dim else None
        out = generate(batch, z, eps)
        fake.append(to_uint8(out.images[-1]))
        images = batch["images"]
        real.append(to_uint8(images[-1] if isinstance(images, list | tuple) else images))
        tokens.append(batch["tokens"].cpu())
        mask.append(batch["mask"].cpu())
        caps.extend(batch.get("caption", [""] * b))
        cid = batch.get("class_id")
        cls.append(torch.as_tensor(cid).reshape(-1) if cid is not None else torch.full((b,), -1))
        a = batch.get("attributes")
        if torch.is_tensor(a) and a.numel():
            attrs.append(a.cpu())
        ix = batch.get("index")
        idx.extend([int(i) for i in ix] if ix is not None else range(len(idx), len(idx) + b))
    f, r = torch.cat(fake), torch.cat(real)
    if f.shape[-2:] != r.shape[-2:]:
        raise T2IError(
            f"generated images are {tuple(f.shape[-2:])} but the test images {tuple(r.shape[-2:])}"
        )
    return EvalSamples(
        fake=f,
        real=r,
        tokens=_pad_cat(tokens, 0),
        mask=_pad_cat(mask, False),
        captions=list(caps),
        class_ids=torch.cat(cls).long(),
        attributes=torch.cat(attrs) if len(attrs) == len(tokens) and attrs else None,
        indices=idx,
        noise_seed=noise_seed,
        seconds=time.time() - start,
        protocol={
            "num_samples": n,
            "split": "test",
            "images": f"the first {n} test images, caption drawn at epoch 0 of the split",
            "noise_seed": noise_seed,
            "resolution": int(f.shape[-1]),
        },
    )


def samples_from_real(dataset: Any, num_samples: int, batch_size: int = 64) -> EvalSamples:
    """'Generated' = the real test images themselves (a sanity reference for every metric)."""

    def real(batch: dict, z: torch.Tensor, eps: torch.Tensor | None) -> GeneratorOutput:
        images = batch["images"]
        last = images[-1] if isinstance(images, list | tuple) else images
        return GeneratorOutput([last], [], None, None)

    return collect_samples(dataset, real, 1, 0, num_samples, batch_size)
