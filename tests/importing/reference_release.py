"""Helpers of the AttnGAN / DAMSM import tests: the golden fixtures' files, and the two files a
real release has that the fixtures leave out, made here at test time.

- ``captions.pickle``: AttnGAN's ``[train_captions, test_captions, ixtoword, wordtoix]``, pickle
  protocol 2 as Python 2 writes it (its ``str`` as SHORT_BINSTRING, which Python 3 reads as
  bytes), with 30 words for the fixtures' 30 embedding rows and ``ixtoword[0] == '<end>'``.
- the full ``image_encoder.pth``: the fixture holds CNN_ENCODER's three own tensors only; the
  Inception trunk is rebuilt as ``reference.json -> inception_trunk`` says (seed 400, torchvision's
  random init), its calibrated BatchNorm buffers loaded over it, checked against the fixture's
  SHA-256, and saved with the three in the reference's key layout (legacy torch pickle).
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from safetensors.torch import load_file

REFERENCE = Path(__file__).parents[1] / "fixtures" / "reference"
ATTNGAN = REFERENCE / "attngan"
DAMSM = REFERENCE / "damsm"

# index 0 is '<end>' as in AttnGAN's build_dictionary; 29 words for the other embedding rows
WORDS = ["<end>"] + (
    "this bird has a red belly and white wings small yellow crown black beak short long tail "
    "brown feathers with blue head grey breast orange eyes pointed spotted throat"
).split()
assert len(WORDS) == 30 and len(set(WORDS)) == 30


def quiet(_message: str) -> None:
    """A log that prints nothing (the import's progress lines)."""


def io_tensors(folder: Path) -> dict[str, torch.Tensor]:
    """A fixture's inputs (``in.*``) and the reference's outputs (``out.*``)."""
    return load_file(str(folder / "io.safetensors"))


def reference_json(folder: Path) -> dict:
    return json.loads((folder / "reference.json").read_text())


@contextmanager
def reference_threads() -> Iterator[None]:
    """One torch thread, as the fixtures were made (reference.json: device). The DAMSM trunk is
    a randomly initialised Inception-v3 (94 conv layers, BatchNorm calibrated on two images)
    that amplifies rounding: two threads' summation order moves its regions by ~2e-4 (of
    values up to 5); at one thread they are bit-identical to the reference's."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def max_abs(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (tuple(a.shape), tuple(b.shape))
    return float((a.double() - b.double()).abs().max())


class _Python2Pickler(pickle._Pickler):
    """Protocol 2 as Python 2 wrote it: a (byte) ``str`` is SHORT_BINSTRING / BINSTRING."""

    dispatch = pickle._Pickler.dispatch.copy()

    def _save_py2_str(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = _save_py2_str


def captions_pickle_bytes(words: list[str], test_captions: list[list[int]]) -> bytes:
    """``[train_captions, test_captions, ixtoword, wordtoix]`` as AttnGAN's datasets.py saves it."""
    ixtoword = {i: w.encode() for i, w in enumerate(words)}
    wordtoix = {w.encode(): i for i, w in enumerate(words)}
    train = [[1, 2, 3, 4, 5, 6], [7, 8, 9], list(range(10, 30))]
    buf = io.BytesIO()
    _Python2Pickler(buf, protocol=2).dump([train, test_captions, ixtoword, wordtoix])
    return buf.getvalue()


def write_captions_pickle(path: Path, words: list[str] = WORDS) -> Path:
    """The fixtures' captions.pickle: its test captions are the DAMSM fixture's token ids."""
    ids = io_tensors(DAMSM)["in.captions"]
    lens = io_tensors(DAMSM)["in.cap_lens"]
    test = [row[:n].tolist() for row, n in zip(ids, lens, strict=True)]
    path.write_bytes(captions_pickle_bytes(words, test))
    return path


def rebuilt_trunk() -> dict[str, torch.Tensor]:
    """The DAMSM fixture's Inception-v3 trunk (564 tensors), rebuilt and checked by SHA-256."""
    import torchvision

    spec = reference_json(DAMSM)["inception_trunk"]
    state = torch.get_rng_state()
    torch.manual_seed(400)
    net = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=True)
    torch.set_rng_state(state)
    full = net.state_dict()
    trunk = {k: full[k].clone() for k in spec["trunk_keys"]}
    trunk.update(load_file(str(DAMSM / "inception_trunk_bn_buffers.safetensors")))
    digest = hashlib.sha256()
    for key in spec["trunk_keys"]:
        digest.update(key.encode())
        digest.update(trunk[key].contiguous().numpy().tobytes())
    assert digest.hexdigest() == spec["sha256_after_calibration"], (
        "the rebuilt Inception trunk is not the fixture's (torchvision "
        f"{torchvision.__version__}; the fixture was made with {spec['torchvision']})"
    )
    return trunk


def write_full_image_encoder(path: Path) -> Path:
    """CNN_ENCODER's whole state dict (567 tensors), saved as the reference saves it."""
    heads = torch.load(DAMSM / "image_encoder.pth", weights_only=True)
    torch.save({**rebuilt_trunk(), **heads}, path, _use_new_zipfile_serialization=False)
    return path
