"""OpenAI CLIP's ResNet image tower (``ModifiedResNet``, e.g. RN101), written in this project,
and a reader that takes its weights out of OpenAI's TorchScript file without running it.

OpenAI publishes ``RN101.pt`` as a TorchScript archive: a zip holding ``data.pkl`` (a pickle of
the module tree), the tensor storages (``data/<n>``) and TorchScript source code. ``torch.jit.load``
would compile and run that code. :func:`read_torchscript_state_dict` instead unpickles
``data.pkl`` with an unpickler that only accepts tensor rebuilding, storage types and
``OrderedDict``; every ``__torch__.*`` module class becomes an inert attribute holder, and any other
global is refused. The code files are never read.

The tower follows CLIP's published architecture: a 3-conv stem with average pooling,
bottleneck blocks whose strided steps use average pooling (anti-aliasing), and an
attention-pooling head. GR-GAN's ITM uses ``layer3`` (1024 x 14 x 14 at 224 px) as regions and the
attention-pool output (512) as the global code (architectures.md §5.3).
"""

from __future__ import annotations

import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from t2i_stages.plugin import T2IError

_STORAGE_DTYPES = {
    "FloatStorage": torch.float32,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "DoubleStorage": torch.float64,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}


class _StorageType:
    def __init__(self, dtype: torch.dtype):
        self.dtype = dtype


class _Inert:
    """Stands in for a TorchScript module class: only collects the attributes it is built with."""

    def __setstate__(self, state: Any) -> None:
        self.__dict__["_state"] = state if isinstance(state, dict) else {}


def _rebuild_tensor(storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
    return storage.as_strided(tuple(size), tuple(stride), int(offset))


def read_torchscript_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a TorchScript archive, named as ``module.state_dict()`` would name them."""
    path = Path(path)
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise T2IError(f"{path}: not a TorchScript archive (zip): {exc}") from None
    with archive:
        pkl = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if not pkl:
            raise T2IError(f"{path}: no data.pkl in the archive; is this a TorchScript model file?")
        prefix = pkl[0][: -len("data.pkl")]
        storages: dict[str, torch.Tensor] = {}

        class _Reader(pickle.Unpickler):
            def find_class(self, module: str, name: str) -> Any:
                if module == "torch._utils" and name == "_rebuild_tensor_v2":
                    return _rebuild_tensor
                if module == "torch" and name in _STORAGE_DTYPES:
                    return _StorageType(_STORAGE_DTYPES[name])
                if module == "collections" and name == "OrderedDict":
                    return OrderedDict
                if module.startswith("__torch__"):
                    return _Inert
                raise T2IError(
                    f"{path}: refusing to load '{module}.{name}' from data.pkl (only tensors and "
                    "module attributes are read)"
                )

            def persistent_load(self, pid: Any) -> torch.Tensor:
                if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
                    raise T2IError(f"{path}: unexpected persistent id in data.pkl")
                kind, key = pid[1], str(pid[2])
                if not isinstance(kind, _StorageType):
                    raise T2IError(f"{path}: unexpected storage type in data.pkl")
                if key not in storages:
                    raw = bytearray(archive.read(f"{prefix}data/{key}"))
                    storages[key] = (
                        torch.frombuffer(raw, dtype=kind.dtype)
                        if raw
                        else torch.empty(0, dtype=kind.dtype)
                    )
                return storages[key]

        with archive.open(pkl[0]) as fh:
            root = _Reader(fh).load()
    out: dict[str, torch.Tensor] = {}

    def walk(obj: Any, prefix_: str) -> None:
        state = getattr(obj, "_state", None)
        if state is None:
            return
        for name, value in state.items():
            if isinstance(value, torch.Tensor):
                out[prefix_ + name] = value.clone()
            elif isinstance(value, _Inert):
                walk(value, f"{prefix_}{name}.")

    walk(root, "")
    if not out:
        raise T2IError(f"{path}: no tensors found in the archive")
    return out


def read_rn101_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """The tower's tensors from OpenAI's TorchScript file, or from a ``.safetensors`` of its
    ``visual.*`` tensors (what ``t2i-stages import itm`` writes from GR-GAN's ITM file)."""
    path = Path(path)
    if path.suffix != ".safetensors":
        return read_torchscript_state_dict(path)
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise T2IError(f"{path}: not a readable safetensors file ({exc})") from None


class Bottleneck(nn.Module):
    """CLIP's bottleneck: 1x1, 3x3, avg-pool (if strided), 1x1 x4; avg-pool + 1x1 shortcut."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.avgpool = nn.AvgPool2d(stride) if stride > 1 else nn.Identity()
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = None
        if stride > 1 or inplanes != planes * 4:
            self.downsample = nn.Sequential(
                OrderedDict(
                    [
                        ("-1", nn.AvgPool2d(stride)),
                        ("0", nn.Conv2d(inplanes, planes * 4, 1, bias=False)),
                        ("1", nn.BatchNorm2d(planes * 4)),
                    ]
                )
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(self.avgpool(out)))
        identity = self.downsample(x) if self.downsample is not None else x
        return F.relu(out + identity)


class AttentionPool2d(nn.Module):
    """Attention pooling: the mean token attends over all positions (with learned positions)."""

    def __init__(self, spacial_dim: int, embed_dim: int, num_heads: int, output_dim: int):
        super().__init__()
        self.positional_embedding = nn.Parameter(
            torch.randn(spacial_dim**2 + 1, embed_dim) / embed_dim**0.5
        )
        self.k_proj = nn.Linear(embed_dim, embed_dim)
        self.q_proj = nn.Linear(embed_dim, embed_dim)
        self.v_proj = nn.Linear(embed_dim, embed_dim)
        self.c_proj = nn.Linear(embed_dim, output_dim)
        self.num_heads = num_heads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(2).permute(2, 0, 1)  # (HW, B, C)
        x = torch.cat([x.mean(dim=0, keepdim=True), x], dim=0)
        x = x + self.positional_embedding[:, None, :].to(x.dtype)
        out, _ = F.multi_head_attention_forward(
            query=x[:1], key=x, value=x, embed_dim_to_check=x.shape[-1], num_heads=self.num_heads,
            q_proj_weight=self.q_proj.weight, k_proj_weight=self.k_proj.weight,
            v_proj_weight=self.v_proj.weight, in_proj_weight=None,
            in_proj_bias=torch.cat([self.q_proj.bias, self.k_proj.bias, self.v_proj.bias]),
            bias_k=None, bias_v=None, add_zero_attn=False, dropout_p=0.0,
            out_proj_weight=self.c_proj.weight, out_proj_bias=self.c_proj.bias,
            use_separate_proj_weight=True, training=self.training, need_weights=False,
        )  # fmt: skip
        return out.squeeze(0)


class ModifiedResNet(nn.Module):
    """CLIP's ResNet image tower. ``forward`` returns (pooled embedding, layer3 map)."""

    def __init__(
        self,
        layers: tuple[int, int, int, int],
        output_dim: int,
        heads: int,
        input_resolution: int = 224,
        width: int = 64,
    ):
        super().__init__()
        self.input_resolution = input_resolution
        self.conv1 = nn.Conv2d(3, width // 2, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width // 2)
        self.conv2 = nn.Conv2d(width // 2, width // 2, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width // 2)
        self.conv3 = nn.Conv2d(width // 2, width, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(width)
        self.avgpool = nn.AvgPool2d(2)
        self._inplanes = width
        self.layer1 = self._make_layer(width, layers[0])
        self.layer2 = self._make_layer(width * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(width * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(width * 8, layers[3], stride=2)
        self.region_channels = width * 16
        self.attnpool = AttentionPool2d(input_resolution // 32, width * 32, heads, output_dim)
        self.output_dim = output_dim

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        mods = [Bottleneck(self._inplanes, planes, stride)]
        self._inplanes = planes * 4
        mods += [Bottleneck(self._inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = self.avgpool(F.relu(self.bn3(self.conv3(x))))
        x = self.layer2(self.layer1(x))
        regions = self.layer3(x)
        pooled = self.attnpool(self.layer4(regions))
        return pooled, regions

    @classmethod
    def from_state_dict(
        cls, state: dict[str, torch.Tensor], prefix: str = "visual."
    ) -> ModifiedResNet:
        """Infer the size from an OpenAI CLIP state dict and load the ``visual.*`` weights."""
        sub = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        if "conv1.weight" not in sub or "attnpool.positional_embedding" not in sub:
            raise T2IError(
                "this CLIP file has no ResNet image tower (expected visual.conv1, visual.attnpool)"
            )
        width = int(sub["conv1.weight"].shape[0]) * 2
        layers = tuple(
            len({k.split(".")[1] for k in sub if k.startswith(f"layer{i}.")}) for i in (1, 2, 3, 4)
        )
        grid = round((sub["attnpool.positional_embedding"].shape[0] - 1) ** 0.5)
        output_dim = int(sub["attnpool.c_proj.weight"].shape[0])
        model = cls(
            layers, output_dim, heads=width * 32 // 64, input_resolution=grid * 32, width=width
        )
        sub = {k: v.float() if v.is_floating_point() else v for k, v in sub.items()}
        own = model.state_dict()
        missing = [k for k in own if k not in sub and not k.endswith("num_batches_tracked")]
        if missing:
            raise T2IError(f"the CLIP file does not fit a ResNet tower: missing {missing[0]}")
        model.load_state_dict({k: v for k, v in sub.items() if k in own}, strict=False)
        return model
