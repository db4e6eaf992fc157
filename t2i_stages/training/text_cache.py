"""``train.text_cache``: the frozen text encoder's features of each caption, computed once.

Every recipe's text side is frozen (``build._frozen``), yet a step encoded its batch's captions
again each time. The cache keeps the features per caption (batches are reshuffled every epoch,
so a per-batch cache would never hit), keyed by the bytes of the caption's token-id and mask
rows, in a namespace that is the SHA-256 of the encoder's state dict. The hash is taken at the
first use (after a resume or ``init_from`` has loaded the weights) and again whenever one of
the encoder's tensors changes in place (their version counters); entries made under other
weights are dropped.

Exactness: the features must be the very bits an uncached step computes. A batch with any
caption the cache does not hold is therefore encoded whole, exactly as without the cache (its
new captions are kept); only a batch whose captions are all known is served from the cache.
Its rows were computed in batches of the same size, at other positions and beside other
captions, so they are exact where a caption's features depend on neither, as for the built-in
encoders (their matmul rows are computed independently). The first batch checks it: it is
encoded again in reverse order, and as a batch of its first caption repeated; any difference in
any bit turns the cache off for the run, with a warning. (Sub-batches of the unknown captions
alone would be cheaper, but a different batch size can change the bits: the DAMSM LSTM's
batch of one runs a matrix-vector kernel that rounds differently.) A batch of another size than
the first one's is encoded as usual and not cached.

So the saving starts once whole batches recur in the cache: from the second epoch on, where
captions do not change between epochs (word subsampling draws a new word subset of a long
caption each epoch, a new key).

Storage: one block per feature on the training device, growing by doubling up to
``train.text_cache_max_mb``; past the bound new captions are encoded each time they come
(nothing is evicted, so what is cached never churns). A fully known batch is one gather per
feature. Features keep the dtype and memory layout (strides) the encoder gave them. The cache
is derived data: it is not checkpointed, and a resumed run refills it. Under DDP each rank
keeps its own.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import T2IError
from ..types import TextFeatures

Encode = Callable[[torch.Tensor, torch.Tensor], TextFeatures]
FIELD = "train.text_cache"


def state_digest(module: torch.nn.Module) -> str:
    """Hex SHA-256 of a module's state dict: names, dtypes, shapes and bytes, in key order."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        if not torch.is_tensor(t):
            continue
        flat = t.detach().reshape(-1).contiguous().cpu()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(flat.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def check_frozen(encoder: Any) -> None:
    """Refuse an encoder whose features could change during training (one line, naming the field)."""
    if not isinstance(encoder, torch.nn.Module):
        raise T2IError(
            f"{FIELD}: the text encoder ({type(encoder).__name__}) is not a torch module, so its "
            "weights cannot be hashed; set train.text_cache false"
        )
    trainable = [n for n, p in encoder.named_parameters() if p.requires_grad]
    if trainable or encoder.training:
        what = f"parameter '{trainable[0]}' requires grad" if trainable else "it is in train mode"
        raise T2IError(
            f"{FIELD}: the text encoder is not frozen ({what}), so its features change during "
            "training; set train.text_cache false"
        )


def row_keys(tokens: torch.Tensor, mask: torch.Tensor) -> list[bytes]:
    """One key per caption: the bytes of its token-id row and of its mask row (CPU tensors)."""
    tok = tokens.detach().cpu().contiguous().numpy()
    msk = mask.detach().cpu().contiguous().numpy()
    return [tok[i].tobytes() + b"|" + msk[i].tobytes() for i in range(tok.shape[0])]


@dataclass
class _Field:
    """How one TextFeatures field is stored: row shape, dtype, and the dim order that makes the
    encoder's output contiguous (its layout is rebuilt on the way out)."""

    row_shape: tuple[int, ...]
    dtype: torch.dtype
    order: tuple[int, ...]  # dims of the batched tensor from outermost to innermost in memory

    @classmethod
    def of(cls, t: torch.Tensor) -> _Field:
        order = tuple(sorted(range(t.dim()), key=lambda d: (-t.stride(d), d)))
        return cls(tuple(t.shape[1:]), t.dtype, order)

    def fits(self, t: torch.Tensor) -> bool:
        return tuple(t.shape[1:]) == self.row_shape and t.dtype == self.dtype

    @property
    def row_bytes(self) -> int:
        return math.prod(self.row_shape) * torch.empty((), dtype=self.dtype).element_size()

    def laid_out(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (contiguous rows) with the encoder's memory layout."""
        if self.order == tuple(range(x.dim())):
            return x
        shape = [x.shape[d] for d in self.order]
        inverse = sorted(range(x.dim()), key=self.order.__getitem__)
        return x.new_empty(shape).permute(inverse).copy_(x)


class TextCache:
    """Per-caption features of a frozen encoder; ``features(tokens, mask)`` replaces encoding."""

    def __init__(
        self,
        encoder: torch.nn.Module,
        encode: Encode,
        max_bytes: int,
        device: torch.device | str = "cpu",
        log: Callable[[str], None] = print,
    ):
        check_frozen(encoder)
        self.encoder, self.encode, self.max_bytes = encoder, encode, int(max_bytes)
        self.device, self.log = torch.device(device), log
        self.disabled: str | None = None  # why the cache is off, once it is
        self.namespace: str | None = None  # the weights' digest the entries belong to
        self.hits = self.misses = self.uncached = 0  # captions served, encoded, and not stored
        self._versions: tuple | None = None
        self._fields: list[_Field | None] | None = None
        self._blocks: list[torch.Tensor | None] = []
        self._index: dict[bytes, int] = {}
        self._capacity = self._allocated = 0  # rows allowed, rows allocated
        self._batch = 0  # the batch size the cached rows were computed in

    # ---------------------------------------------------------------- public

    def features(
        self,
        tokens: torch.Tensor,
        mask: torch.Tensor,
        host_tokens: torch.Tensor | None = None,
        host_mask: torch.Tensor | None = None,
    ) -> TextFeatures:
        """The batch's text features, from the cache when it knows every caption. ``host_*``:
        CPU copies of the device tensors, so that the keys cost no device-to-host sync."""
        if self.disabled is not None:
            return self.encode(tokens, mask)
        self._check_weights()
        keys = row_keys(
            host_tokens if host_tokens is not None else tokens,
            host_mask if host_mask is not None else mask,
        )
        if self._fields is None:
            return self._first(tokens, mask, keys)
        if len(keys) != self._batch:  # rows computed in other batch sizes may round differently
            self.uncached += len(keys)
            return self.encode(tokens, mask)
        slots = [self._index.get(k) for k in keys]
        if all(s is not None for s in slots):
            self.hits += len(keys)
            index = torch.tensor(slots, dtype=torch.long, device=self.device)
            return self._assemble(
                [b.index_select(0, index) if b is not None else None for b in self._blocks]
            )
        fresh = self.encode(tokens, mask)  # as without the cache, bit for bit
        self.misses += len(keys)
        if self._fits(fresh):
            self._keep(fresh, keys, [i for i, s in enumerate(slots) if s is None])
        else:  # not the layout of the cached features
            self.uncached += len(keys)
        return fresh

    def stats(self) -> dict[str, Any]:
        """Counters for logs and benchmarks."""
        served = self.hits + self.misses
        return {
            "enabled": self.disabled is None,
            "disabled_because": self.disabled,
            "captions": len(self._index),
            "bytes": sum(b.numel() * b.element_size() for b in self._blocks if b is not None),
            "hits": self.hits,
            "misses": self.misses,
            "uncached": self.uncached,
            "hit_rate": self.hits / served if served else None,
        }

    # ---------------------------------------------------------------- internals

    def _tensors(self) -> list[torch.Tensor]:
        return [*self.encoder.parameters(), *self.encoder.buffers()]

    def _check_weights(self) -> None:
        """Hash the weights at first use and whenever one of the encoder's tensors changed."""
        versions = tuple((id(t), t._version) for t in self._tensors())
        if versions == self._versions:
            return
        check_frozen(self.encoder)
        digest = state_digest(self.encoder)
        if self.namespace is not None and digest != self.namespace:
            self.log(
                f"{FIELD}: the text encoder's weights changed; its cached features are dropped"
            )
            self._index.clear()
        self.namespace, self._versions = digest, versions

    def _first(self, tokens: torch.Tensor, mask: torch.Tensor, keys: list[bytes]) -> TextFeatures:
        """Encode the first batch, check that its rows do not depend on their batch, and keep
        them (or turn the cache off)."""
        fresh = self.encode(tokens, mask)
        self.misses += len(keys)
        odd = [
            n
            for n, t in zip(TextFeatures._fields, fresh, strict=True)
            if t is not None and not torch.is_tensor(t)
        ]
        problem = f"the text encoder's '{odd[0]}' is not a tensor" if odd else None
        problem = problem or self._batch_dependence(tokens, mask, fresh)
        if problem is not None:
            self.disabled = problem
            self.log(f"warning: {FIELD} is off for this run: {problem}; every batch is encoded")
            return fresh
        self._batch = len(keys)
        self._fields = [_Field.of(t) if torch.is_tensor(t) else None for t in fresh]
        self._blocks = [None] * len(self._fields)
        row = sum(f.row_bytes for f in self._fields if f is not None)
        self._capacity = self.max_bytes // max(row, 1)
        if self._capacity == 0:
            self.log(
                f"warning: {FIELD}: one caption's features ({row} bytes) exceed "
                "train.text_cache_max_mb; nothing is cached"
            )
        self._keep(fresh, keys, list(range(len(keys))))
        return fresh

    def _batch_dependence(
        self, tokens: torch.Tensor, mask: torch.Tensor, full: TextFeatures
    ) -> str | None:
        """Why a caption's features would depend on the rest of its batch, or None: the batch
        reversed, and its first caption repeated over the batch, must give the same bits."""
        b = tokens.shape[0]
        probes = [
            ("in reverse order", torch.arange(b - 1, -1, -1)),
            ("beside other captions", torch.zeros(b, dtype=torch.long)),
        ]
        for how, rows in probes:
            rows = rows.to(tokens.device)
            out = self.encode(tokens.index_select(0, rows), mask.index_select(0, rows))
            for name, a, c in zip(TextFeatures._fields, full, out, strict=True):
                if not torch.is_tensor(a):
                    continue
                if not torch.is_tensor(c) or not torch.equal(a.index_select(0, rows), c):
                    return (
                        f"the text encoder's '{name}' features of a caption change in the last "
                        f"bits when it is encoded {how} (they depend on the batch on this machine)"
                    )
        return None

    def _fits(self, fresh: TextFeatures) -> bool:
        assert self._fields is not None
        for f, t in zip(self._fields, fresh, strict=True):
            if (f is None) != (not torch.is_tensor(t)) or (f is not None and not f.fits(t)):
                return False
        return True

    def _keep(self, fresh: TextFeatures, keys: list[bytes], rows: list[int]) -> None:
        """Store the captions of ``rows`` the cache does not hold yet (each key once)."""
        new = []
        seen: set[bytes] = set()
        for i in rows:
            if keys[i] not in self._index and keys[i] not in seen:
                seen.add(keys[i])
                new.append(i)
        if not new:
            return
        index = torch.tensor(new, dtype=torch.long, device=fresh[0].device)
        picked = [t.index_select(0, index) if torch.is_tensor(t) else t for t in fresh]
        self._store([keys[i] for i in new], picked)

    def _store(self, keys: list[bytes], fresh: list) -> None:
        """Keep the rows of ``fresh`` (one per key, keys new) while the bound allows."""
        assert self._fields is not None
        room = self._capacity - len(self._index)
        if room <= 0 or not keys:
            self.uncached += len(keys)
            return
        n = min(room, len(keys))
        self.uncached += len(keys) - n
        start = len(self._index)
        self._grow(start + n)
        for j, (f, t) in enumerate(zip(self._fields, fresh, strict=True)):
            if f is not None:
                self._blocks[j][start : start + n] = t[:n].to(self.device)
        for k, key in enumerate(keys[:n]):
            self._index[key] = start + k

    def _grow(self, needed: int) -> None:
        """Make room for ``needed`` rows: double the blocks (up to the bound), keep their rows."""
        assert self._fields is not None
        if needed <= self._allocated:
            return
        size = min(self._capacity, max(needed, 2 * self._allocated, 256))
        for j, f in enumerate(self._fields):
            if f is None:
                continue
            block = torch.empty((size, *f.row_shape), dtype=f.dtype, device=self.device)
            old = self._blocks[j]
            if old is not None:
                block[: old.shape[0]] = old
            self._blocks[j] = block
        self._allocated = size

    def _assemble(self, parts: list[torch.Tensor | None]) -> TextFeatures:
        assert self._fields is not None
        return TextFeatures(
            *(
                f.laid_out(p) if f is not None else None
                for f, p in zip(self._fields, parts, strict=True)
            )
        )
