"""Run an exported deployment folder with ONNX Runtime: captions in, images out, no torch.

This module imports only the standard library, numpy, onnxruntime and PIL (PIL only to save a
grid), so it is the whole runtime of a deployment: ``t2i-stages export`` copies it next to
``model.json`` as ``t2i_onnx_runtime.py``, and ``python t2i_onnx_runtime.py --text "..." --out
grid.png`` runs on a machine that has neither torch nor t2i-stages. Inside the package it is
``t2i_stages.export.runtime`` (also runnable as ``python -m t2i_stages.export.runtime``)::

    from t2i_stages.export.runtime import load_deployment
    dep = load_deployment("deploy/", provider="cuda")
    images = dep.generate(["a red circle"] * 4, seed=0)   # list, one (4, 3, r, r) per stage
    out = dep.run_all(*dep.tokenize(["a red circle"]), z)  # images and, from an export made
    out.attention[1]                                       # with --attention, (1, T, h, w) maps
    dep.describe_tokens("a red blorb")  # [{"word": "a", "id": 4, "known": True}, ...]

The deployment contract is ``(token_ids int64 (B,T), token_mask bool (B,T), z float32 (B,Z),
eps float32 (B,E)) -> image_0 .. image_{S-1}`` float32 in [-1, 1], one per stage, low to high
resolution. Nothing random runs inside the graphs: ``z`` and ``eps`` are drawn here from
``numpy.random.default_rng(seed)`` (the PyTorch backend of ``generate`` draws the same ones).

Execution providers are checked, never assumed: ONNX Runtime silently runs on the CPU when the
CUDA libraries cannot be loaded, so asking for ``cuda`` (or ``tensorrt``) and getting anything
else is an error unless ``allow_cpu_fallback`` is set. On CUDA the text encoder's outputs stay on
the GPU and are fed to the generator through IO binding.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

try:  # inside the package: the CLI maps T2IError to exit code 2
    from t2i_stages.errors import T2IError
except ImportError:  # standalone copy in a deployment folder

    class T2IError(Exception):  # type: ignore[no-redef]
        """An error caused by the user's input (deployment folder, provider, argument)."""

        exit_code = 2


FORMAT = "t2i-stages-onnx-deployment"
FORMAT_VERSION = 1
MODEL_JSON = "model.json"
STANDALONE_NAME = "t2i_onnx_runtime.py"

PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}


class DeploymentError(T2IError):
    """A deployment folder is missing, incomplete or of an unknown format."""


class ProviderError(T2IError):
    """The requested execution provider is not the one ONNX Runtime actually uses."""


# --------------------------------------------------------------------------------------------
# tokenizer (the word vocabulary of t2i_stages.text, re-implemented without any dependency)

_WORD = re.compile(r"\w+")
_VOCAB_FORMAT = "t2i-stages-word-vocab"


def tokenize_words(text: str) -> list[str]:
    """Lower-case ASCII ``\\w+`` words, exactly as ``t2i_stages.text.tokenize`` splits them."""
    text = text.replace("\ufffd\ufffd", " ").lower()
    text = text.encode("ascii", "ignore").decode("ascii")
    return _WORD.findall(text)


class WordTokenizer:
    """Word ids from a ``vocab.json`` written by ``WordVocab.save`` (0 = padding, 1 = <unk>).

    Long captions are truncated to ``max_words`` (the deterministic choice; training may
    subsample words at random, generation never does).
    """

    def __init__(self, words: Sequence[str]):
        if not words or words[0] != "<end>":
            raise DeploymentError("a word vocabulary must start with '<end>'")
        self.itos = list(words)
        self.stoi = {w: i for i, w in enumerate(self.itos)}
        self.unk_index = self.stoi.get("<unk>")

    @classmethod
    def load(cls, path: str | Path) -> WordTokenizer:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DeploymentError(f"{path}: vocabulary file not found") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DeploymentError(f"{path}: not a vocabulary JSON file: {exc}") from None
        if not isinstance(data, dict) or data.get("format") != _VOCAB_FORMAT:
            raise DeploymentError(f"{path}: not a t2i-stages word vocabulary")
        return cls([str(w) for w in data.get("words", [])])

    def __len__(self) -> int:
        return len(self.itos)

    def _slots(self, text: str) -> list[tuple[str, int]]:
        """(word, id) of every token slot ``text`` fills before truncation: unknown words
        become ``<unk>`` when the vocabulary has it and take no slot when it has not."""
        slots = []
        for w in tokenize_words(text):
            i = self.stoi.get(w, self.unk_index)
            if i is not None:
                slots.append((w, i))
        return slots

    def encode(self, text: str, max_words: int) -> tuple[list[int], list[bool]]:
        """``max_words`` zero-padded ids and the mask (True = real word)."""
        ids = [i for _, i in self._slots(text)][:max_words]
        n = len(ids)
        return ids + [0] * (max_words - n), [True] * n + [False] * (max_words - n)

    def describe_tokens(self, text: str, max_words: int) -> list[dict[str, Any]]:
        """The token slots the model sees, in order: ``{"word", "id", "known"}`` each
        (``known`` False: out of the vocabulary, read as ``<unk>``). Words past ``max_words``
        are left out; :meth:`count_tokens` minus this list's length is how many."""
        return [
            {"word": w, "id": i, "known": w in self.stoi} for w, i in self._slots(text)[:max_words]
        ]

    def count_tokens(self, text: str) -> int:
        """The token slots ``text`` would fill without the ``max_words`` limit."""
        return len(self._slots(text))

    def batch(self, captions: Sequence[str], max_words: int) -> tuple[np.ndarray, np.ndarray]:
        """(token_ids int64 (B, max_words), token_mask bool (B, max_words))."""
        pairs = [self.encode(c, max_words) for c in captions]
        ids = np.array([p[0] for p in pairs], dtype=np.int64).reshape(len(pairs), max_words)
        mask = np.array([p[1] for p in pairs], dtype=bool).reshape(len(pairs), max_words)
        return ids, mask


# --------------------------------------------------------------------------------------------
# noise: the same draws for the ONNX and the PyTorch backends


def draw_noise(n: int, z_dim: int, eps_dim: int, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """``z`` (n, z_dim) then ``eps`` (n, eps_dim) (None when 0) from one numpy generator."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, z_dim), dtype=np.float32)
    eps = rng.standard_normal((n, eps_dim), dtype=np.float32) if eps_dim else None
    return z, eps


# --------------------------------------------------------------------------------------------
# sessions and providers


def _ort() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise T2IError(
            f"onnxruntime is not installed ({exc}); pip install onnxruntime-gpu"
        ) from None
    return onnxruntime


AUTO = "auto"  # CUDA when ONNX Runtime can use a GPU here, else the CPU, without a warning
PROVIDER_CHOICES = (AUTO, *PROVIDERS)


def cuda_gpu_present() -> bool:
    """Whether the CUDA driver loads and sees a GPU (ctypes only: no torch, no ONNX Runtime
    error spam on a machine without one)."""
    import ctypes

    try:
        lib = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    count = ctypes.c_int(0)
    try:
        return (
            lib.cuInit(0) == 0
            and lib.cuDeviceGetCount(ctypes.byref(count)) == 0
            and count.value > 0
        )
    except AttributeError:
        return False


def provider_chain(provider: str, cache_dir: str | Path | None = None) -> list[Any]:
    """The providers list for ``InferenceSession``: the requested one first, CPU last.

    ``auto``: CUDA then the CPU where a GPU is present, else the CPU alone."""
    if provider == AUTO:
        if cuda_gpu_present():
            return [("CUDAExecutionProvider", {"device_id": 0}), "CPUExecutionProvider"]
        return ["CPUExecutionProvider"]
    if provider not in PROVIDERS:
        raise ProviderError(f"unknown provider '{provider}'; choose one of {', '.join(PROVIDERS)}")
    chain: list[Any] = []
    if provider == "tensorrt":
        opts: dict[str, Any] = {"trt_fp16_enable": False}
        if cache_dir is not None:
            opts.update(trt_engine_cache_enable=True, trt_engine_cache_path=str(cache_dir))
        chain.append(("TensorrtExecutionProvider", opts))
    if provider in ("tensorrt", "cuda"):
        chain.append(("CUDAExecutionProvider", {"device_id": 0}))
    chain.append("CPUExecutionProvider")
    return chain


def create_session(
    path: str | Path,
    provider: str = AUTO,
    allow_cpu_fallback: bool = False,
    threads: int | None = None,
    cache_dir: str | Path | None = None,
    spinning: bool = True,
) -> Any:
    """An ``InferenceSession`` on ``provider``, refusing a silent fallback to another one.

    ``threads`` sets the intra-op thread count (None: ONNX Runtime's default). ``spinning``
    False stops idle intra-op threads from busy-waiting for work (ONNX Runtime's
    ``session.intra_op.allow_spinning``): they then leave the cores to other work (a server's
    event loop) between and after calls, at the price of a slower wake-up.
    """
    ort = _ort()
    wanted = PROVIDERS.get(provider)
    if wanted is None and provider != AUTO:
        raise ProviderError(
            f"unknown provider '{provider}'; choose one of {', '.join(PROVIDER_CHOICES)}"
        )
    if provider != "cpu" and hasattr(ort, "preload_dlls"):
        try:  # CUDA/cuDNN from the nvidia-* pip wheels, when they are installed
            ort.preload_dlls()
        except Exception:  # noqa: BLE001 - the provider check below reports what matters
            pass
    available = ort.get_available_providers()
    so = ort.SessionOptions()
    if threads is not None:
        so.intra_op_num_threads = int(threads)
        so.inter_op_num_threads = 1
    if not spinning:
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    chain = provider_chain(provider, cache_dir)
    chain = [p for p in chain if (p[0] if isinstance(p, tuple) else p) in available]
    try:
        sess = ort.InferenceSession(str(path), so, providers=chain)
    except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types
        raise DeploymentError(f"{path}: ONNX Runtime cannot load it: {exc}") from None
    got = sess.get_providers()
    if provider != AUTO and got[0] != wanted:
        why = (
            f"provider '{provider}' was requested but ONNX Runtime runs {Path(path).name} on "
            f"{got[0]} (session providers {got}; installed: {available})"
        )
        if wanted not in available:
            why += f"; this onnxruntime build has no {wanted}"
        elif provider != "cpu":
            why += (
                "; its libraries (CUDA, cuDNN or TensorRT) could not be loaded or no GPU is visible"
            )
        if not allow_cpu_fallback:
            raise ProviderError(why + "; pass --provider cpu, or allow the fallback")
        warnings.warn(why + "; continuing on the CPU as allowed", RuntimeWarning, stacklevel=2)
    return sess


# --------------------------------------------------------------------------------------------
# the deployment


@dataclass
class RunOutputs:
    """Everything one run of the graphs gives: every stage's images (B, 3, r, r) in [-1, 1],
    low to high, and the word-attention maps by stage, (B, T, h, w) (empty unless the export
    was made with ``--attention``; h is the stage's input resolution, ``model.json``'s
    ``attention[].resolution``)."""

    images: list[np.ndarray]
    attention: dict[int, np.ndarray] = field(default_factory=dict)


@dataclass
class Deployment:
    """A loaded deployment folder: its manifest, tokenizer and ONNX Runtime sessions."""

    folder: Path
    manifest: dict[str, Any]
    tokenizer: WordTokenizer
    sessions: dict[str, Any]
    provider: str
    device: str = "cpu"
    io_binding: bool = False
    warnings: list[str] = field(default_factory=list)

    @property
    def z_dim(self) -> int:
        return int(self.manifest["z_dim"])

    @property
    def eps_dim(self) -> int:
        return int(self.manifest["eps_dim"])

    @property
    def max_words(self) -> int:
        return int(self.manifest["tokenizer"]["max_words"])

    @property
    def resolutions(self) -> list[int]:
        return [int(r) for r in self.manifest["resolutions"]]

    @property
    def attention_stages(self) -> list[int]:
        """The refinement stages whose attention maps the graphs output (``--attention``)."""
        return [int(e["stage"]) for e in self.manifest.get("attention", [])]

    @property
    def has_attention(self) -> bool:
        return bool(self.attention_stages)

    @property
    def providers(self) -> dict[str, list[str]]:
        """Which providers each session really uses."""
        return {name: list(s.get_providers()) for name, s in self.sessions.items()}

    def caption_warnings(self, captions: Sequence[str]) -> list[str]:
        """Out-of-vocabulary and truncated words of ``captions`` (see ``caption_warnings``)."""
        tok = self.tokenizer
        return caption_warnings(
            captions, self.max_words, tok.stoi.__contains__, unknown_kept=tok.unk_index is not None
        )

    def tokenize(self, captions: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        return self.tokenizer.batch(captions, self.max_words)

    def describe_tokens(self, caption: str) -> list[dict[str, Any]]:
        """The token slots the model sees for ``caption`` (see ``WordTokenizer.describe_tokens``;
        slot j is row j of an attention map's T axis)."""
        return self.tokenizer.describe_tokens(caption, self.max_words)

    def count_tokens(self, caption: str) -> int:
        """Token slots before truncation (more than ``max_words``: the rest was cut off)."""
        return self.tokenizer.count_tokens(caption)

    def run(
        self,
        token_ids: np.ndarray,
        token_mask: np.ndarray,
        z: np.ndarray,
        eps: np.ndarray | None = None,
    ) -> list[np.ndarray]:
        """The deployment contract: every stage's images, (B, 3, r, r) float32 in [-1, 1]."""
        images = self._image_names()
        named = self._run_named(self._feeds(token_ids, token_mask, z, eps), images)
        return [named[n] for n in images]

    def run_all(
        self,
        token_ids: np.ndarray,
        token_mask: np.ndarray,
        z: np.ndarray,
        eps: np.ndarray | None = None,
    ) -> RunOutputs:
        """Every stage's images and, when exported, every attention map (one graph run)."""
        images = self._image_names()
        maps = {s: f"attention_{s}" for s in self.attention_stages}
        named = self._run_named(
            self._feeds(token_ids, token_mask, z, eps), images + list(maps.values())
        )
        return RunOutputs([named[n] for n in images], {s: named[n] for s, n in maps.items()})

    def _image_names(self) -> list[str]:
        return [f"image_{i}" for i in range(len(self.resolutions))]

    def _feeds(
        self,
        token_ids: np.ndarray,
        token_mask: np.ndarray,
        z: np.ndarray,
        eps: np.ndarray | None,
    ) -> dict[str, np.ndarray]:
        """The graph inputs as contiguous arrays of the contract's dtypes, batch-checked."""
        feeds = {
            "token_ids": np.ascontiguousarray(token_ids, dtype=np.int64),
            "token_mask": np.ascontiguousarray(token_mask, dtype=bool),
            "z": np.ascontiguousarray(z, dtype=np.float32),
        }
        if self.eps_dim:
            if eps is None:
                raise T2IError(f"this generator takes a CA epsilon of {self.eps_dim} columns")
            feeds["eps"] = np.ascontiguousarray(eps, dtype=np.float32)
        b = feeds["token_ids"].shape[0]
        for name, arr in feeds.items():
            if arr.shape[0] != b:
                raise T2IError(f"input '{name}' has batch {arr.shape[0]}, token_ids has {b}")
        return feeds

    def _run_named(self, feeds: dict[str, np.ndarray], names: list[str]) -> dict[str, np.ndarray]:
        """The graph outputs ``names`` (only those are asked of ONNX Runtime)."""
        if self.io_binding:
            return self._run_bound(feeds, names)
        if "fused" in self.sessions:
            return dict(zip(names, self.sessions["fused"].run(names, feeds), strict=True))
        words, sentence = self.sessions["text_encoder"].run(
            ["words", "sentence"],
            {"token_ids": feeds["token_ids"], "token_mask": feeds["token_mask"]},
        )
        gen_feeds = {
            "z": feeds["z"],
            "words": words,
            "sentence": sentence,
            "token_mask": feeds["token_mask"],
        }
        if self.eps_dim:
            gen_feeds["eps"] = feeds["eps"]
        return dict(zip(names, self.sessions["generator"].run(names, gen_feeds), strict=True))

    def _run_bound(self, feeds: dict[str, np.ndarray], names: list[str]) -> dict[str, np.ndarray]:
        """IO binding: inputs copied to the device once, intermediate features never leave it."""
        ort = _ort()
        dev = self.device

        def value(arr: np.ndarray) -> Any:
            return ort.OrtValue.ortvalue_from_numpy(arr, dev, 0)

        device_feeds = {k: value(v) for k, v in feeds.items()}
        if "fused" in self.sessions:
            sess = self.sessions["fused"]
            binding = sess.io_binding()
            for inp in sess.get_inputs():
                binding.bind_ortvalue_input(inp.name, device_feeds[inp.name])
        else:
            enc = self.sessions["text_encoder"]
            b1 = enc.io_binding()
            b1.bind_ortvalue_input("token_ids", device_feeds["token_ids"])
            b1.bind_ortvalue_input("token_mask", device_feeds["token_mask"])
            b1.bind_output("words", dev, 0)
            b1.bind_output("sentence", dev, 0)
            enc.run_with_iobinding(b1)
            words, sentence = b1.get_outputs()
            device_feeds.update(words=words, sentence=sentence)
            sess = self.sessions["generator"]
            binding = sess.io_binding()
            for inp in sess.get_inputs():
                binding.bind_ortvalue_input(inp.name, device_feeds[inp.name])
        for name in names:
            binding.bind_output(name, dev, 0)
        sess.run_with_iobinding(binding)
        values = [np.asarray(v) for v in binding.copy_outputs_to_cpu()]
        return dict(zip(names, values, strict=True))

    def generate(
        self,
        captions: Sequence[str],
        seed: int = 0,
        z: np.ndarray | None = None,
        eps: np.ndarray | None = None,
    ) -> list[np.ndarray]:
        """One image per caption at every stage; noise from ``seed`` unless given."""
        if not captions:
            raise T2IError("no captions to generate from")
        ids, mask = self.tokenize(captions)
        dz, deps = draw_noise(len(captions), self.z_dim, self.eps_dim, seed)
        return self.run(ids, mask, dz if z is None else z, deps if eps is None else eps)


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """``model.json`` of a deployment folder, checked for its format."""
    path = Path(folder) / MODEL_JSON
    if not path.is_file():
        raise DeploymentError(f"{folder}: not a deployment folder (no {MODEL_JSON})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DeploymentError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise DeploymentError(f"{path}: not a t2i-stages ONNX deployment (format field)")
    if int(data.get("format_version", 0)) > FORMAT_VERSION:
        raise DeploymentError(
            f"{path}: format version {data.get('format_version')} is newer than this runtime "
            f"({FORMAT_VERSION})"
        )
    return data


def load_deployment(
    folder: str | Path,
    provider: str = AUTO,
    allow_cpu_fallback: bool = False,
    threads: int | None = None,
    precision: str = "fp32",
    io_binding: bool | None = None,
    spinning: bool = True,
) -> Deployment:
    """Open a deployment folder on ``provider`` (auto, cpu, cuda or tensorrt; auto: CUDA
    when ONNX Runtime can run it here, else the CPU).

    ``precision="fp16"`` picks the fp16 graphs when the folder has them. ``io_binding``
    defaults to on for CUDA/TensorRT and off on the CPU. ``spinning``: see
    :func:`create_session`.
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    tok = manifest.get("tokenizer", {})
    if tok.get("type") != "word_vocab":
        raise DeploymentError(f"{folder}: unsupported tokenizer type {tok.get('type')!r}")
    tokenizer = WordTokenizer.load(folder / tok["file"])
    graphs = manifest.get("graphs", {}).get(precision)
    if not graphs:
        have = ", ".join(manifest.get("graphs", {})) or "none"
        raise DeploymentError(f"{folder}: no {precision} graphs in {MODEL_JSON} (has: {have})")
    sessions = {}
    for role, entry in graphs.items():
        path = folder / entry["file"]
        if not path.is_file():
            raise DeploymentError(f"{path}: missing (listed in {MODEL_JSON})")
        cache = folder / ".trt_cache" if provider == "tensorrt" else None
        sessions[role] = create_session(
            path, provider, allow_cpu_fallback, threads, cache, spinning=spinning
        )
    if "fused" not in sessions and not {"text_encoder", "generator"} <= set(sessions):
        raise DeploymentError(f"{folder}: needs a fused graph or a text encoder and a generator")
    last = sessions.get("fused") or sessions["generator"]
    have = {o.name for o in last.get_outputs()}
    missing = [e["output"] for e in manifest.get("attention", []) if e["output"] not in have]
    if missing:
        raise DeploymentError(
            f"{folder}: {MODEL_JSON} lists attention output(s) {', '.join(missing)} that the "
            f"{precision} graph does not have"
        )
    on_gpu = all(s.get_providers()[0] != "CPUExecutionProvider" for s in sessions.values())
    bind = on_gpu if io_binding is None else bool(io_binding)
    device = "cuda" if on_gpu else "cpu"
    return Deployment(folder, manifest, tokenizer, sessions, provider, device, bind)


# --------------------------------------------------------------------------------------------
# image grids (PIL only)


def to_pixels(images: np.ndarray) -> np.ndarray:
    """(B, 3, H, W) in [-1, 1] -> (B, H, W, 3) uint8 for PIL, in numpy (the runtime has no torch)."""
    x = np.clip((np.asarray(images, dtype=np.float32) + 1.0) * 127.5 + 0.5, 0, 255)
    return x.astype(np.uint8).transpose(0, 2, 3, 1)


def _wrap(text: str, width_px: int, char_px: int = 6) -> list[str]:
    """Break ``text`` into lines that fit ``width_px`` in PIL's default bitmap font."""
    per_line = max(8, width_px // char_px)
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > per_line:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    lines.append(line)
    return [ln[:per_line] for ln in lines]


def save_grid(
    images: np.ndarray,
    path: str | Path,
    ncol: int = 8,
    pad: int = 2,
    captions: Sequence[str] | None = None,
    scale: int | None = None,
) -> Path:
    """Save (B, 3, H, W) images in [-1, 1] as one PNG grid, ``ncol`` per row.

    ``captions`` (one per row) are written above their rows. Small images are enlarged
    (nearest neighbour) to about 64 px so that a 32-px sample is visible and its caption fits;
    ``scale`` sets the factor.
    """
    from PIL import Image, ImageDraw

    pics = to_pixels(images)
    b, h, w, _ = pics.shape
    k = scale or max(1, 64 // max(h, w))
    if k > 1:
        pics = pics.repeat(k, axis=1).repeat(k, axis=2)
        h, w = h * k, w * k
    ncol = max(1, min(ncol, b))
    nrow = (b + ncol - 1) // ncol
    width = ncol * (w + pad) + pad
    labels = [_wrap(str(c), width - 2 * pad) for c in captions] if captions else [[]] * nrow
    line_h = 12
    heights = [len(labels[r]) * line_h if r < len(labels) else 0 for r in range(nrow)]
    grid = np.full((sum(heights) + nrow * (h + pad) + pad, width, 3), 255, dtype=np.uint8)
    tops, y = [], pad
    for r in range(nrow):
        tops.append(y + heights[r])
        y += heights[r] + h + pad
    for i in range(b):
        r, c = divmod(i, ncol)
        x = pad + c * (w + pad)
        grid[tops[r] : tops[r] + h, x : x + w] = pics[i]
    image = Image.fromarray(grid)
    if captions:
        draw = ImageDraw.Draw(image)
        for r in range(min(nrow, len(labels))):
            for j, line in enumerate(labels[r]):
                draw.text((pad, tops[r] - heights[r] + j * line_h), line, fill=(0, 0, 0))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def caption_warnings(
    captions: Sequence[str],
    max_words: int,
    known: Callable[[str], bool] | None = None,
    count: Callable[[str], int] | None = None,
    unknown_kept: bool = False,
) -> list[str]:
    """One line per caption that will not be read as written: out-of-vocabulary words and
    words past ``max_words`` (both are otherwise dropped without a word).

    ``known(word)`` tells a vocabulary word; ``count(text)`` the tokens a caption makes (for
    subword tokenizers; default: its known words); ``unknown_kept``: unknown words become
    ``<unk>`` tokens instead of being dropped.
    """
    out = []
    for text in dict.fromkeys(captions):
        words = tokenize_words(text)
        unknown = [w for w in words if known is not None and not known(w)]
        if unknown:
            fate = "read as <unk>" if unknown_kept else "dropped"
            out.append(
                f"caption {text!r}: {len(unknown)} word(s) not in the model's vocabulary, "
                f"{fate}: {', '.join(dict.fromkeys(unknown))}"
            )
        kept = [w for w in words if unknown_kept or known is None or known(w)]
        n = count(text) if count is not None else len(kept)
        if n > max_words:
            cut = " ".join(kept[max_words:]) if count is None else f"{n - max_words} token(s)"
            out.append(
                f"caption {text!r}: {n} tokens, more than the model's {max_words}; "
                f"truncated (dropped: {cut})"
            )
    return out


def generate_grid(
    folder: str | Path,
    texts: Sequence[str],
    out: str | Path,
    n: int = 8,
    seed: int = 0,
    provider: str = AUTO,
    allow_cpu_fallback: bool = False,
    stage: int = -1,
    threads: int | None = None,
    precision: str = "fp32",
) -> tuple[Path, np.ndarray]:
    """``n`` images per caption from a deployment folder, saved as a grid (one row a caption)."""
    if n < 1:
        raise T2IError("--n must be at least 1")
    dep = load_deployment(folder, provider, allow_cpu_fallback, threads, precision)
    for line in dep.caption_warnings(texts):
        warnings.warn(line, UserWarning, stacklevel=2)
    captions = [t for t in texts for _ in range(n)]
    images = dep.generate(captions, seed=seed)
    if not -len(images) <= stage < len(images):
        raise T2IError(f"--stage {stage}: the generator has {len(images)} stages")
    pick = images[stage]
    return save_grid(pick, out, ncol=n, captions=list(texts)), pick


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone command: the ONNX half of ``t2i-stages generate``."""
    p = argparse.ArgumentParser(
        description="Generate images from captions with an exported t2i-stages deployment "
        "(onnxruntime, numpy and PIL only)."
    )
    here = Path(__file__).resolve().parent
    default = here if (here / MODEL_JSON).is_file() else None
    p.add_argument("--onnx", default=default, required=default is None, help="deployment folder")
    p.add_argument("--text", action="append", required=True, help="a caption (repeatable)")
    p.add_argument("--n", type=int, default=8, help="images per caption (8)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (0)")
    p.add_argument(
        "--provider",
        choices=PROVIDER_CHOICES,
        default=AUTO,
        help="auto (CUDA if usable, else CPU), cpu, cuda or tensorrt",
    )
    p.add_argument("--allow-cpu-fallback", action="store_true", help="run on the CPU if needed")
    p.add_argument("--stage", type=int, default=-1, help="which stage's images (-1 = last)")
    p.add_argument("--threads", type=int, default=None, help="intra-op threads")
    p.add_argument("--out", required=True, help="PNG file for the grid")
    args = p.parse_args(argv)
    try:
        path, _ = generate_grid(
            args.onnx,
            args.text,
            args.out,
            args.n,
            args.seed,
            args.provider,
            args.allow_cpu_fallback,
            args.stage,
            args.threads,
        )
    except T2IError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
