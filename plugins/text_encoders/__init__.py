"""Built-in text encoders: the DAMSM bi-RNN, the CLIP text tower and any local HF encoder."""

from __future__ import annotations

from t2i_stages.plugin import ComponentSpec, hookimpl

from .params import ClipTextParams, DamsmRnnParams, HfTextParams


@hookimpl
def t2i_stages_text_encoders() -> dict[str, ComponentSpec]:
    return {
        "damsm_rnn": ComponentSpec(
            "t2i_stages.plugins.text_encoders.damsm_rnn:build_damsm_rnn",
            DamsmRnnParams,
            "DAMSM bidirectional LSTM/GRU (AttnGAN/DM-GAN), masked instead of packed; ONNX-exportable",
        ),
        "clip_text": ComponentSpec(
            "t2i_stages.plugins.text_encoders.clip_text:build_clip_text",
            ClipTextParams,
            "CLIP text tower via transformers: local pretrained folder or tiny from-scratch model",
        ),
        "hf_text": ComponentSpec(
            "t2i_stages.plugins.text_encoders.hf_text:build_hf_text",
            HfTextParams,
            "any Hugging Face encoder from a local folder (or one shipped in a pip package)",
        ),
    }
