"""The example plugin's own tests: registration, shapes, masking, gate, recipe, gradients.

Run after `pip install -e .` (the entry point must be installed): `pytest tests`. Like the
package, they import t2i-stages through `t2i_stages.plugin` only (and its command line).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from t2i_example_plugin.gated_attention import GatedCrossAttention

from t2i_stages.plugin import Condition, TextFeatures, load_recipe, load_registry

RECIPES = Path(__file__).parents[1] / "src" / "t2i_example_plugin" / "recipes"


@pytest.fixture(scope="module")
def registry():
    torch.set_num_threads(1)
    return load_registry()


def _text(b: int = 2, d: int = 64, t: int = 6) -> TextFeatures:  # dmgan.yaml's text_dim
    g = torch.Generator().manual_seed(0)
    lengths = torch.tensor([t, 2] + [t] * (b - 2))
    mask = torch.arange(t)[None, :] < lengths[:, None]
    return TextFeatures(
        torch.randn(b, d, t, generator=g), torch.randn(b, d, generator=g), mask, lengths
    )


def test_components_are_registered_from_this_package(registry):
    for kind, name in (("fusion", "gated_cross_attention"), ("stage", "gated_refine")):
        entry = registry.get(kind, name)
        assert entry.plugin.package == "t2i-stages-example-plugin" and not entry.plugin.builtin


def test_registering_imports_no_torch_and_validate_builds_nothing():
    """With this plugin installed, `plugins` and `validate` stay torch-free: the factories are
    imported when first built, and the stage states its output side (``out_resolution``)."""
    code = (
        "import sys\n"
        "from t2i_stages.cli.main import main\n"
        f"assert main(['validate', {str(RECIPES / 'gated-shapes.yaml')!r}]) == 0\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_attention_ignores_padded_words_and_the_gate_starts_nearly_closed():
    torch.manual_seed(0)
    block = GatedCrossAttention(channels=8, text_dim=32, heads=2, gate_bias=-2.0, scale=True)
    text = _text(d=32)
    h = torch.randn(2, 8, 4, 4)
    out, att = block(h, Condition(words=text.words, mask=text.mask))
    assert out.shape == h.shape and att.shape == (2, 6, 4, 4)
    assert torch.allclose(att.sum(1), torch.ones(2, 4, 4), atol=1e-5)
    assert att[1, 2:].abs().max() == 0  # caption 1 has two real words
    # changing a padded word changes nothing
    words = text.words.clone()
    words[1, :, 4] += 100.0
    out2, _ = block(h, Condition(words=words, mask=text.mask))
    assert torch.allclose(out, out2, atol=1e-6)
    # a very negative gate bias gives back h
    nn_block = GatedCrossAttention(8, 32, 2, gate_bias=-50.0, scale=True)
    same, _ = nn_block(h, Condition(words=text.words, mask=text.mask))
    assert torch.allclose(same, h, atol=1e-6)


def test_heads_must_divide_channels(registry):
    with pytest.raises(ValueError, match="heads"):
        GatedCrossAttention(channels=6, text_dim=4, heads=4, gate_bias=0.0, scale=True)


def test_the_recipe_validates_builds_and_backpropagates(registry):
    recipe = load_recipe(RECIPES / "gated-shapes.yaml", [], registry)
    gen = registry.build("generator", recipe.generator)
    stage = gen.stages[2]
    assert type(stage).__name__ == "GatedRefine"
    assert type(stage.fusion).__name__ == "GatedCrossAttention"
    text = _text()
    out = gen(torch.randn(2, gen.z_dim), torch.randn(2, gen.eps_dim), text)
    assert [tuple(i.shape) for i in out.images] == [(2, 3, 8, 8), (2, 3, 16, 16), (2, 3, 32, 32)]
    assert out.attention[1].shape == (2, 6, 16, 16)
    out.images[-1].square().mean().backward()
    assert stage.fusion.key.weight.grad.abs().sum() > 0
    assert stage.skip[1].weight.grad.abs().sum() > 0


def test_the_ablation_file_validates(tmp_path):
    cmd = [sys.executable, "-m", "t2i_stages.cli.main", "ablate", "--plan"]
    done = subprocess.run(
        [*cmd, str(RECIPES / "gated-ablation.yaml"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    variants = [line.split()[0].rstrip(":") for line in done.stdout.splitlines()[1:]]
    assert [v for v in variants if v in {"gated", "gated-stage-memory", "builtin-refine"}] == [
        "gated",
        "gated-stage-memory",
        "builtin-refine",
    ]
    assert "gated (reference)" in done.stdout
    builtin = done.stdout.split("builtin-refine:")[1]
    assert "resolved recipe differs at: generator" in builtin
