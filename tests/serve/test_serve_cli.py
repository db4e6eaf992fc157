"""`t2i-stages serve` as a user runs it: a real process with torch (and the onnx package)
unimportable in it and in every worker process it starts, serving through real HTTP; and the
command's one-line errors (exit code 2)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import httpx
import pytest

from t2i_stages.cli.main import main
from t2i_stages.export.runtime import cuda_gpu_present

BLOCKED = ("torch", "torchvision", "transformers", "cleanfid", "onnx")

# Imported by every Python process that has this folder on PYTHONPATH (uvicorn's worker
# processes included); a blocked import attempt is written down even when the code catches it.
SITECUSTOMIZE = """
import importlib.abc, os, sys
BLOCKED, LOG = {blocked!r}, os.environ["T2I_TEST_BLOCK_LOG"]
class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            with open(LOG, "a") as f:
                f.write(f"{{os.getpid()}} {{name}}\\n")
            raise ImportError(f"{{name}} is blocked in this test")
        return None
sys.meta_path.insert(0, _Block())
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_runs_and_serves_with_torch_blocked(demo_deploy, tmp_path, workers):
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(textwrap.dedent(SITECUSTOMIZE.format(blocked=BLOCKED)))
    log = tmp_path / "blocked.log"
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")]),
        "T2I_TEST_BLOCK_LOG": str(log),
    }
    argv = [sys.executable, "-m", "t2i_stages.cli.main", "serve", str(demo_deploy)]
    argv += ["--port", str(port), "--provider", "cpu", "--threads", "1", "--log-level", "warning"]
    argv += ["--workers", str(workers), "--header-timeout-s", "0.5"]
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        with httpx.Client(base_url=url, timeout=30) as client:
            while True:
                assert proc.poll() is None, proc.stdout.read()
                assert time.monotonic() < deadline, "the server did not get ready"
                try:
                    if client.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
            replies = [
                client.post("/v1/generate", json={"captions": ["a red circle"], "n": 2, "seed": 1})
                for _ in range(4)
            ]
            assert [r.status_code for r in replies] == [200] * 4
            assert (
                len({r.json()["results"][0]["samples"][1]["images"][0]["png"] for r in replies})
                == 1
            )
            assert client.get("/v1/model").json()["recipe"]["name"] == "grgan"
            assert "t2i_batch_rows_bucket" in client.get("/metrics").text
            # the header deadline reaches the server, and each worker process (through the env)
            with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: loc")
                reply = b"".join(iter(lambda: sock.recv(65536), b""))
            assert reply.startswith(b"HTTP/1.1 408"), reply
            assert b"within 0.5 s" in reply
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    assert proc.returncode == 0, out[-3000:]
    assert not log.exists(), f"blocked imports were attempted:\n{log.read_text()}"
    # the hook was live: the same interpreter set-up cannot import torch
    check = subprocess.run(
        [sys.executable, "-c", "import torch"], env=env, capture_output=True, text=True
    )
    assert check.returncode != 0 and "blocked in this test" in check.stderr


def test_serve_errors_are_one_line_and_exit_2(tmp_path, demo_deploy, capsys):
    assert main(["serve", str(tmp_path)]) == 2
    assert "not a deployment folder (no model.json)" in capsys.readouterr().err
    assert main(["serve", str(demo_deploy), "--max-batch", "0"]) == 2
    assert capsys.readouterr().err.startswith("error: --max-batch: Input should be greater")
    assert main(["serve", str(demo_deploy), "--workers", "0"]) == 2
    assert "--workers must be at least 1" in capsys.readouterr().err
    assert main(["serve", str(demo_deploy), "--max-images", "500"]) == 2
    assert "--max-images 500 is larger than --max-queue 256" in capsys.readouterr().err
    if not cuda_gpu_present():
        assert main(["serve", str(demo_deploy), "--provider", "cuda"]) == 2
        err = capsys.readouterr().err
        assert "provider 'cuda' was requested" in err and len(err.strip().splitlines()) == 1
        assert main(["serve", str(demo_deploy), "--provider", "cuda", "--workers", "2"]) == 2
        assert "provider 'cuda' was requested" in capsys.readouterr().err  # before any worker


def test_the_serve_package_imports_only_the_torch_free_runtime():
    """Read from the source (imports inside functions too): from the project, only the errors
    and the export's runtime; from outside, nothing of the training stack."""
    import ast
    from pathlib import Path

    folder = Path(__file__).resolve().parents[2] / "serve"
    allowed = {"t2i_stages.errors", "t2i_stages.export.runtime"}
    found = {}
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            else:
                continue
            for name in names:
                found.setdefault(name, set()).add(path.name)
    project = {n for n in found if n.startswith("t2i_stages")}
    assert project == allowed, project
    heavy = {n for n in found if n.split(".")[0] in BLOCKED}
    assert heavy == set(), {n: found[n] for n in heavy}
    assert {"starlette.applications", "uvicorn", "prometheus_client"} <= set(found)
