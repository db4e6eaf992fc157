"""Built-in text encoders: the DAMSM bi-RNN, the CLIP text tower and any local HF encoder."""

from __future__ import annotations

from t2i_stages.plugin import ComponentSpec, hookimpl

from . import clip_text, damsm_rnn, hf_text


@hookimpl
def t2i_stages_text_encoders() -> dict[str, ComponentSpec]:
    return {
        "damsm_rnn": ComponentSpec(
            damsm_rnn.build_damsm_rnn,
            damsm_rnn.DamsmRnnParams,
            "DAMSM bidirectional LSTM/GRU (AttnGAN/DM-GAN), masked instead of packed; ONNX-exportable",
        ),
        "clip_text": ComponentSpec(
            clip_text.build_clip_text,
            clip_text.ClipTextParams,
            "CLIP text tower via transformers: local pretrained folder or tiny from-scratch model",
        ),
        "hf_text": ComponentSpec(
            hf_text.build_hf_text,
            hf_text.HfTextParams,
            "any Hugging Face encoder from a local folder (or one shipped in a pip package)",
        ),
    }
