"""Randomly initialised stand-ins for the pretrained assets the paper-size recipes load.

Speed benchmarks of the COCO-setting recipes need the *architectures* of CLIP ViT-B/16, OpenAI's
RN101 and torchvision's Inception-v3, not their trained weights (a step costs the same FLOPs
either way), and this machine has no internet. ``make_stand_in_home(folder)`` writes files of
the right formats into an assets home (``T2I_STAGES_HOME`` layout) so that the recipes build
unchanged: a CLIP folder (random ViT-B/16 CLIP, word-level tokenizer over the shapes words),
``clip/RN101.pt`` (a TorchScript archive of a random RN101 image tower) and the Inception-v3
``.pth``. Never use these for quality numbers.
"""

from __future__ import annotations

from pathlib import Path

CLIP_FOLDERS = ("hf/clip-vit-base-patch16",)  # the ITM text tower (CMD's B/32 is eval-only)
MARKER = "STAND-IN-RANDOM-WEIGHTS.txt"


def _clip_folder(folder: Path, patch: int, words: list[str]) -> None:
    import torch
    from transformers import CLIPConfig, CLIPModel

    from t2i_stages.text import word_level_hf_tokenizer

    tok = word_level_hf_tokenizer(words)
    text = {  # CLIP ViT-B text tower (the vocabulary is the stand-in tokenizer's)
        "vocab_size": len(tok), "hidden_size": 512, "intermediate_size": 2048,
        "num_hidden_layers": 12, "num_attention_heads": 8, "max_position_embeddings": 77,
        "bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id,
        "pad_token_id": tok.pad_token_id,
    }  # fmt: skip
    vision = {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
              "num_attention_heads": 12, "image_size": 224, "patch_size": patch}  # fmt: skip
    torch.manual_seed(0)
    model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=512))
    model.save_pretrained(folder)
    tok.save_pretrained(folder)


def _rn101_archive(path: Path) -> None:
    import torch

    from t2i_stages.plugins.matchers.openai_rn101 import ModifiedResNet

    class Clip(torch.nn.Module):  # the attribute layout of OpenAI's archive: visual.*
        def __init__(self) -> None:
            super().__init__()
            self.visual = ModifiedResNet(
                (3, 4, 23, 3), output_dim=512, heads=32, input_resolution=224, width=64
            )

        def forward(self, x):
            return self.visual(x)[0]

    torch.manual_seed(0)
    model = Clip().eval()
    traced = torch.jit.trace(model, torch.randn(1, 3, 224, 224), check_trace=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    traced.save(str(path))


def _inception(path: Path) -> None:
    import torch
    import torchvision

    torch.manual_seed(0)
    net = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), path)


def make_stand_in_home(home: Path, words: list[str] | None = None) -> Path:
    """Write (once) the stand-in assets under ``home``; returns ``home``."""
    home = Path(home)
    if (home / MARKER).is_file():
        return home
    if words is None:
        from t2i_stages.plugins.datasets.shapes import shapes_vocab

        words = list(shapes_vocab().itos)
    for rel in CLIP_FOLDERS:
        _clip_folder(home / rel, 16 if rel.endswith("16") else 32, list(words))
    _rn101_archive(home / "clip" / "RN101.pt")
    _inception(home / "torchvision" / "inception_v3_google-0cc3c7bd.pth")
    (home / MARKER).write_text("Random weights of the paper architectures, for speed only.\n")
    return home
