"""The torch-free runtime: tokenizer, provider checks (no silent CPU fallback), IO binding,
manifest errors, and the ONNX path with torch (and the package) blocked."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import onnxruntime
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from t2i_stages.export import runtime as rt
from t2i_stages.text import WordVocab

_REAL_SESSION = onnxruntime.InferenceSession

VOCAB = WordVocab.build(["a red circle at the top", "two blue squares below"], extra=["x1"])

BLOCKER = """
import importlib.abc, sys
BLOCKED = {blocked!r}
class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{{name}} is blocked in this test")
        return None
sys.meta_path.insert(0, _Block())
"""


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=60), max_words=st.integers(1, 12))
def test_tokenizer_matches_the_word_vocabulary(text, max_words):
    tok = rt.WordTokenizer(VOCAB.itos)
    assert tok.encode(text, max_words) == VOCAB.encode(text, max_words)


def test_tokenizer_reads_vocab_json_and_rejects_other_files(tmp_path):
    VOCAB.save(tmp_path / "vocab.json")
    tok = rt.WordTokenizer.load(tmp_path / "vocab.json")
    ids, mask = tok.batch(["A RED circle, unknownword!", ""], 6)
    assert ids.dtype == np.int64 and mask.dtype == bool
    assert mask.sum(1).tolist() == [4, 0]
    assert ids[0, 3] == VOCAB.stoi["<unk>"]
    (tmp_path / "bad.json").write_text('{"words": ["a"]}')
    with pytest.raises(rt.DeploymentError, match="not a t2i-stages word vocabulary"):
        rt.WordTokenizer.load(tmp_path / "bad.json")


def test_noise_is_reproducible_and_shaped():
    z, eps = rt.draw_noise(3, 5, 2, seed=7)
    z2, eps2 = rt.draw_noise(3, 5, 2, seed=7)
    assert z.shape == (3, 5) and eps.shape == (3, 2) and z.dtype == np.float32
    assert np.array_equal(z, z2) and np.array_equal(eps, eps2)
    assert rt.draw_noise(3, 5, 0, seed=7)[1] is None


def test_cuda_request_on_this_machine(demo_export):
    """Without a usable CUDA the request is a clear error; with one the session is on CUDA."""
    folder = demo_export("dmgan").folder
    try:
        dep = rt.load_deployment(folder, "cuda")
    except rt.ProviderError as exc:
        msg = str(exc)
        assert "provider 'cuda' was requested" in msg
        assert "CPUExecutionProvider" in msg and "--provider cpu" in msg
        assert "\n" not in msg
    else:  # a machine with a working CUDA provider
        assert all(p[0] == "CUDAExecutionProvider" for p in dep.providers.values())
        assert dep.io_binding


class _FakeSession:
    """Wraps a real CPU session but reports what a silent fallback reports."""

    def __init__(self, path, so=None, providers=None):
        self.requested = providers
        self._s = _REAL_SESSION(path, so, providers=["CPUExecutionProvider"])

    def get_providers(self):
        return ["CPUExecutionProvider"]

    def __getattr__(self, name):
        return getattr(self._s, name)


@pytest.mark.parametrize("provider", ["cuda", "tensorrt"])
def test_silent_fallback_is_detected_and_only_allowed_on_request(
    demo_export, monkeypatch, provider
):
    folder = demo_export("dmgan").folder
    every = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: every)
    monkeypatch.setattr(onnxruntime, "InferenceSession", _FakeSession)
    monkeypatch.setattr(onnxruntime, "preload_dlls", lambda *a, **k: None, raising=False)
    with pytest.raises(rt.ProviderError, match=f"provider '{provider}' was requested"):
        rt.load_deployment(folder, provider)
    with pytest.warns(RuntimeWarning, match="continuing on the CPU"):
        dep = rt.load_deployment(folder, provider, allow_cpu_fallback=True)
    first = dep.sessions["generator"].requested[0]
    assert (first[0] if isinstance(first, tuple) else first) == rt.PROVIDERS[provider]
    assert dep.device == "cpu" and not dep.io_binding
    assert dep.generate(["a red circle"])[-1].shape[0] == 1


def test_io_binding_path_gives_the_same_images(demo_export):
    folder = demo_export("grgan").folder
    plain = rt.load_deployment(folder, "cpu")
    bound = rt.load_deployment(folder, "cpu", io_binding=True)
    assert bound.io_binding and not plain.io_binding
    a = plain.generate(["a red circle", ""], seed=4)
    b = bound.generate(["a red circle", ""], seed=4)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


def test_bad_folders_and_arguments_are_one_line_errors(tmp_path, demo_export):
    with pytest.raises(rt.DeploymentError, match="not a deployment folder"):
        rt.load_deployment(tmp_path, "cpu")
    (tmp_path / "model.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(rt.DeploymentError, match="format"):
        rt.load_deployment(tmp_path, "cpu")
    folder = demo_export("dmgan").folder
    with pytest.raises(rt.DeploymentError, match="no fp16 graphs"):
        rt.load_deployment(folder, "cpu", precision="fp16")
    with pytest.raises(rt.ProviderError, match="unknown provider 'rocm'"):
        rt.load_deployment(folder, "rocm")
    dep = rt.load_deployment(folder, "cpu")
    ids, mask = dep.tokenize(["a", "b"])
    with pytest.raises(rt.T2IError, match="batch"):
        dep.run(ids, mask, np.zeros((3, dep.z_dim), np.float32), np.zeros((2, dep.eps_dim)))


def _run_blocked(code: str, blocked: tuple[str, ...], cwd) -> subprocess.CompletedProcess:
    script = BLOCKER.format(blocked=blocked) + textwrap.dedent(code)
    return subprocess.run(
        [sys.executable, "-c", script], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_onnx_generate_runs_with_torch_blocked(demo_export, tmp_path):
    folder = demo_export("grgan").folder
    code = f"""
        import json, sys
        try:
            import torch
        except ImportError:
            pass
        else:
            raise SystemExit("torch was importable")
        from t2i_stages.cli.main import main
        from t2i_stages.export.api import generate
        res = generate(["a red circle", ""], {str(tmp_path / "api.png")!r},
                       onnx={str(folder)!r}, n=2, provider="cpu")
        argv = ["generate", "--text", "a red circle", "--onnx", {str(folder)!r}, "--n", "3",
                "--seed", "1", "--provider", "cpu", "--threads", "1",
                "--out", {str(tmp_path / "cli.png")!r}]
        assert main(argv) == 0  # the whole command line, parser included
        assert not [m for m in sys.modules if m == "torch" or m.startswith("torch.")]
        print(json.dumps({{"shape": list(res.images[-1].shape), "backend": res.backend}}))
    """
    proc = _run_blocked(code, ("torch",), tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    r = demo_export("grgan").generator.resolutions[-1]
    assert info == {"shape": [4, 3, r, r], "backend": "onnxruntime"}
    from PIL import Image

    shown = r * max(1, 64 // r)  # small images are enlarged for the grid
    line = 12  # one caption line above each row
    assert Image.open(tmp_path / "api.png").size == (
        2 * (shown + 2) + 2,
        2 * (line + shown + 2) + 2,
    )
    assert Image.open(tmp_path / "cli.png").size == (3 * (shown + 2) + 2, line + shown + 4)


def test_standalone_runtime_script_needs_neither_torch_nor_the_package(demo_export, tmp_path):
    deploy = tmp_path / "deploy"
    shutil.copytree(demo_export("dmgan").folder, deploy)
    code = f"""
        import runpy, sys
        sys.argv = ["t2i_onnx_runtime.py", "--text", "a red circle", "--n", "2",
                    "--provider", "cpu", "--out", "grid.png"]
        runpy.run_path({str(deploy / "t2i_onnx_runtime.py")!r}, run_name="__main__")
    """
    proc = _run_blocked(code, ("torch", "t2i_stages"), tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "grid.png").is_file()
    plain = f"""
        import runpy, sys
        sys.argv = ["t2i_onnx_runtime.py", "--text", "x", "--out", "g.png"]
        runpy.run_path({str(deploy / "t2i_onnx_runtime.py")!r}, run_name="__main__")
    """
    proc = _run_blocked(plain, ("torch", "t2i_stages"), tmp_path)  # default provider: auto
    assert proc.returncode == 0, proc.stderr[-2000:]  # CUDA where usable, else the CPU
    assert (tmp_path / "g.png").is_file()
    cuda = plain.replace('"--text", "x"', '"--text", "x", "--provider", "cuda"')
    proc = _run_blocked(cuda, ("torch", "t2i_stages"), tmp_path)
    if proc.returncode != 0:
        assert proc.returncode == 2
        assert "error: provider 'cuda' was requested" in proc.stderr
