r"""GR-GAN's ITM release format (BoO-18/GR-GAN ``code/model.py`` ``ITM_MODEL``, ``MLP``; its
CLIP fork ``CLIP/clip/model.py``): fingerprint, sizes from the shapes, key maps. No torch here.

``ITM_model%d.pth`` is ``torch.save(ITM.state_dict())`` of ``pretrain_ITM.py``: ``model.*``, the
whole OpenAI CLIP RN101 it loaded (frozen, cast to fp32: text transformer, ``visual.*`` ResNet,
``text_projection``, ``logit_scale``), and ``MLP.*``, the trained head. The text tower is
converted to the ``transformers`` CLIP layout the ``itm`` matcher builds on (OpenAI's fused
``attn.in_proj_weight`` is split into q/k/v, ``text_projection`` (W, E) becomes a bias-free
Linear's (E, W) weight); the ResNet keeps OpenAI's names (``openai_rn101.ModifiedResNet``).
The tables are in docs/importing-dfgan-grgan.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from t2i_stages.plugin import KeyMap

from .layout import Part, indices, need, shape

REPO = "BoO-18/GR-GAN 3d84ec5"
ANCHORS = (
    "MLP.emb_features.weight",
    "MLP.dense_word.weight",
    "model.token_embedding.weight",
    "model.visual.attnpool.positional_embedding",
)
HEAD_MAP = KeyMap(
    [
        (r"MLP\.emb_features\.weight", r"region_proj.weight"),
        (r"MLP\.emb_cnn_code\.(weight|bias)", r"code_proj.\1"),
        (r"MLP\.dense_sent\.(weight|bias)", r"sentence_proj.\1"),
        (r"MLP\.dense_word\.(weight|bias)", r"word_proj.\1"),
        (r"MLP\.LayerNorm\.(weight|bias)", r"word_norm.\1"),
    ]
)
"""ITM_MODEL.MLP -> the ``itm`` matcher's head (its trainable part, all 9 keys)."""

_LAYER = r"transformer\.resblocks\.(\d+)\."
_HF_LAYER = r"text_model.encoder.layers.\1."
TEXT_MAP = KeyMap(
    [
        (r"token_embedding\.weight", "text_model.embeddings.token_embedding.weight"),
        (r"positional_embedding", "text_model.embeddings.position_embedding.weight"),
        (_LAYER + r"attn\.out_proj\.(weight|bias)", _HF_LAYER + r"self_attn.out_proj.\2"),
        (_LAYER + r"ln_1\.(weight|bias)", _HF_LAYER + r"layer_norm1.\2"),
        (_LAYER + r"ln_2\.(weight|bias)", _HF_LAYER + r"layer_norm2.\2"),
        (_LAYER + r"mlp\.c_fc\.(weight|bias)", _HF_LAYER + r"mlp.fc1.\2"),
        (_LAYER + r"mlp\.c_proj\.(weight|bias)", _HF_LAYER + r"mlp.fc2.\2"),
        (r"ln_final\.(weight|bias)", r"text_model.final_layer_norm.\1"),
        (r"logit_scale", "logit_scale"),
        # split or transposed below (``text_tower``), never renamed as they are
        (_LAYER + r"attn\.in_proj_(weight|bias)", None),
        (r"text_projection", None),
        (r"visual\..*", None),  # the ResNet: ``visual_tower``
        # the attributes torch.jit's CLIP kept as tensors (not in GR-GAN's state dict)
        (r"input_resolution|context_length|vocab_size", None),
    ]
)
"""OpenAI CLIP's text tower -> ``transformers.CLIPModel`` (``clip.`` inside the matcher)."""


@dataclass(frozen=True)
class ItmConfig:
    """The sizes of a released ITM, read off its tensors."""

    vocab_size: int
    context_length: int
    width: int
    layers: int
    heads: int
    mlp_width: int
    embed_dim: int
    nef: int
    region_channels: int
    code_dim: int

    def describe(self) -> str:
        return (
            f"GR-GAN's ITM ({REPO}): CLIP text tower width {self.width} x {self.layers} layers, "
            f"ResNet image tower, MLP head nef {self.nef}"
        )

    def text_config(self) -> dict[str, Any]:
        """``transformers.CLIPTextConfig`` of the tower (OpenAI: QuickGELU, LayerNorm eps 1e-5,
        a head per 64 channels; ids 49406/49407 are the start/end tokens of its BPE)."""
        return {
            "vocab_size": self.vocab_size,
            "hidden_size": self.width,
            "intermediate_size": self.mlp_width,
            "num_hidden_layers": self.layers,
            "num_attention_heads": self.heads,
            "max_position_embeddings": self.context_length,
            "hidden_act": "quick_gelu",
            "layer_norm_eps": 1e-5,
            "bos_token_id": self.vocab_size - 2,
            "eos_token_id": self.vocab_size - 1,
            "pad_token_id": 0,
        }


def find_itm(tensors: dict[str, Any], source: str) -> Part | None:
    """The ITM_MODEL state dict inside a file's tensors (any prefix), or None."""
    from .layout import find_part

    return find_part(tensors, ANCHORS, source)


def itm_config(part: Part) -> ItmConfig:
    """The release's sizes; a layout the ``itm`` matcher cannot hold is a one-line error."""
    t = part.tensors
    vocab, width = shape(part, "model.token_embedding.weight", 2)
    (context, w2) = shape(part, "model.positional_embedding", 2)
    need(w2 == width, part, f"positional_embedding width {w2} != token embedding width {width}")
    need(width % 64 == 0, part, f"text width {width} is not a multiple of 64 (OpenAI: 64/head)")
    layers = indices(t, r"model\.transformer\.resblocks\.(\d+)\..*")
    need(layers == list(range(len(layers))) and bool(layers), part, "no text transformer blocks")
    mlp_width = shape(part, "model.transformer.resblocks.0.mlp.c_fc.weight", 2)[0]
    tw, embed = shape(part, "model.text_projection", 2)
    need(tw == width, part, f"text_projection has {tw} rows, the text width is {width}")
    nef, region = shape(part, "MLP.emb_features.weight", 4)[:2]
    code_dim = shape(part, "model.visual.attnpool.c_proj.weight", 2)[0]
    for key, want in (
        ("MLP.dense_word.weight", (nef, width)),
        ("MLP.dense_sent.weight", (nef, embed)),
        ("MLP.emb_cnn_code.weight", (nef, code_dim)),
        ("MLP.LayerNorm.weight", (nef,)),
    ):
        got = shape(part, key, len(want))
        need(got == want, part, f"'{key}' has shape {got}, the ITM's MLP gives {want}")
    return ItmConfig(
        vocab_size=vocab,
        context_length=context,
        width=width,
        layers=len(layers),
        heads=width // 64,
        mlp_width=mlp_width,
        embed_dim=embed,
        nef=nef,
        region_channels=region,
        code_dim=code_dim,
    )


def text_tower(part: Part, cfg: ItmConfig) -> dict[str, Any]:
    """The text tower's tensors under ``transformers.CLIPModel`` names."""
    clip = {k[len("model.") :]: v for k, v in part.tensors.items() if k.startswith("model.")}
    out, _ = TEXT_MAP.apply(clip, part.source, cfg.describe())
    w = cfg.width
    for i in range(cfg.layers):
        ours = f"text_model.encoder.layers.{i}.self_attn"
        weight = clip[f"transformer.resblocks.{i}.attn.in_proj_weight"]
        bias = clip[f"transformer.resblocks.{i}.attn.in_proj_bias"]
        for j, name in enumerate(("q_proj", "k_proj", "v_proj")):  # nn.MultiheadAttention order
            out[f"{ours}.{name}.weight"] = weight[j * w : (j + 1) * w].contiguous()
            out[f"{ours}.{name}.bias"] = bias[j * w : (j + 1) * w].contiguous()
    out["text_projection.weight"] = clip["text_projection"].t().contiguous()  # x @ P == Linear
    return out


def visual_tower(part: Part) -> dict[str, Any]:
    """The ResNet image tower under OpenAI's own names (``visual.*``)."""
    return {k[len("model.") :]: v for k, v in part.tensors.items() if k.startswith("model.visual.")}
