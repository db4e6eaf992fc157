"""Generate images from a Triton Inference Server serving ``t2i-stages export --triton``.

The server runs the graph only; the tokenizer and the noise stay here, on the client, read from
the deployment folder (``model.json``, ``vocab.json``): the same tokenizer and the same noise
draws as ``t2i-stages generate --onnx``, so one seed gives the same images up to the export's
parity tolerance.

    tritonserver --model-repository deploy/triton      # on the serving machine
    python examples/triton_client.py deploy/ --text "a red circle" --url localhost:8000 \\
        --out grid.png [--attention]

Needs ``pip install "tritonclient[http]"`` (``t2i-stages[triton]``), numpy and pillow, and either
t2i-stages or the deployment's own ``t2i_onnx_runtime.py`` (no torch). Not run against a server
in this repository's tests (none is available there); they check the request it builds.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

# model.json dtype -> Triton's wire datatype
WIRE_TYPES = {"int64": "INT64", "bool": "BOOL", "float32": "FP32", "float16": "FP16"}


def load_runtime(deploy: Path) -> Any:
    """The torch-free runtime: t2i-stages' if installed, else the deployment's copy."""
    try:
        from t2i_stages.export import runtime
    except ImportError:
        path = deploy / "t2i_onnx_runtime.py"
        spec = importlib.util.spec_from_file_location("t2i_onnx_runtime", path)
        runtime = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = runtime  # its dataclasses look their module up there
        spec.loader.exec_module(runtime)
    return runtime


def read_deployment(deploy: str | Path) -> tuple[dict[str, Any], Any, Any]:
    """(model.json, its tokenizer, the runtime module) of a deployment made with --triton."""
    deploy = Path(deploy)
    manifest = json.loads((deploy / "model.json").read_text(encoding="utf-8"))
    if "triton" not in manifest:
        raise SystemExit(f"{deploy}: exported without --triton (no triton entry in model.json)")
    runtime = load_runtime(deploy)
    tokenizer = runtime.WordTokenizer.load(deploy / manifest["tokenizer"]["file"])
    return manifest, tokenizer, runtime


def request_arrays(
    manifest: dict[str, Any], tokenizer: Any, runtime: Any, captions: list[str], seed: int
) -> dict[str, np.ndarray]:
    """The model's inputs by name: token ids and mask (max_words slots), z and eps."""
    ids, mask = tokenizer.batch(captions, int(manifest["tokenizer"]["max_words"]))
    z, eps = runtime.draw_noise(len(captions), manifest["z_dim"], manifest["eps_dim"], seed)
    arrays = {"token_ids": ids, "token_mask": mask, "z": z, "eps": eps}
    return {e["name"]: arrays[e["name"]] for e in manifest["inputs"]}


def infer_inputs(manifest: dict[str, Any], arrays: dict[str, np.ndarray]) -> list[Any]:
    """``tritonclient.http.InferInput``s, named and typed as ``model.json``'s inputs."""
    import tritonclient.http as http

    out = []
    for entry in manifest["inputs"]:
        arr = np.ascontiguousarray(arrays[entry["name"]])
        inp = http.InferInput(entry["name"], list(arr.shape), WIRE_TYPES[entry["dtype"]])
        inp.set_data_from_numpy(arr, binary_data=True)
        out.append(inp)
    return out


def requested_outputs(manifest: dict[str, Any], attention: bool = False) -> list[Any]:
    """The images, and the attention maps when asked for (and exported)."""
    import tritonclient.http as http

    names = [o["name"] for o in manifest["outputs"] if o["name"].startswith("image_")]
    if attention:
        names += [a["output"] for a in manifest.get("attention", [])]
    return [http.InferRequestedOutput(n, binary_data=True) for n in names]


def generate(
    deploy: str | Path,
    captions: list[str],
    url: str = "localhost:8000",
    seed: int = 0,
    attention: bool = False,
) -> dict[str, np.ndarray]:
    """One Triton request; returns the outputs by name (images in [-1, 1])."""
    import tritonclient.http as http

    manifest, tokenizer, runtime = read_deployment(deploy)
    arrays = request_arrays(manifest, tokenizer, runtime, captions, seed)
    outputs = requested_outputs(manifest, attention)
    client = http.InferenceServerClient(url=url)
    result = client.infer(
        manifest["triton"]["model"], infer_inputs(manifest, arrays), outputs=outputs
    )
    return {o.name(): result.as_numpy(o.name()) for o in outputs}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("deploy", type=Path, help="the deployment folder (model.json, vocab.json)")
    p.add_argument("--text", action="append", required=True, help="a caption (repeatable)")
    p.add_argument("--url", default="localhost:8000", help="Triton's HTTP endpoint")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--attention", action="store_true", help="also fetch the attention maps")
    p.add_argument("--out", type=Path, required=True, help="PNG grid of the last stage")
    args = p.parse_args(argv)
    outputs = generate(args.deploy, args.text, args.url, args.seed, args.attention)
    runtime = load_runtime(args.deploy)
    last = max((n for n in outputs if n.startswith("image_")), key=lambda n: int(n[6:]))
    runtime.save_grid(outputs[last], args.out, ncol=len(args.text), captions=None)
    for name, arr in outputs.items():
        print(f"{name}: {arr.shape} {arr.dtype}")
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
