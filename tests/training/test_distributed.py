"""Distributed training: disjoint shards, and a real 2-process gloo run through the CLI."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from t2i_stages.training.data import ResumableSampler

MICRO = Path(__file__).with_name("micro.yaml")


def test_shards_are_disjoint_and_cover_the_epoch():
    shards = [ResumableSampler(103, seed=1, rank=r, world_size=2).shard() for r in range(2)]
    assert not set(shards[0]) & set(shards[1])
    assert len(shards[0]) == len(shards[1]) == 51
    assert len(set(shards[0]) | set(shards[1])) == 102


def test_sampler_epochs_differ_and_skip_resumes_the_order():
    s = ResumableSampler(50, seed=3)
    s.set_epoch(0)
    e0 = list(s)
    s.set_epoch(1)
    assert list(s) != e0
    s.set_epoch(0, skip=7)
    assert list(s) == e0[7:]


def _run_cmd(out: Path, *extra: str, steps: int = 2) -> list[str]:
    return [
        sys.executable, "-m", "t2i_stages.cli.main", "run", str(MICRO), "--out", str(out),
        "--device", "cpu", "--set", f"train.max_steps={steps}", "--set", "train.ckpt_every=2",
        *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def one_node_two_processes(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp") / "run"
    proc = subprocess.run(
        _run_cmd(out, "--nproc-per-node", "2"), capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _nodes(outs: list[Path], *extra: str, steps: int = 2) -> list[subprocess.CompletedProcess]:
    """One `t2i-stages run --nnodes 2` per "machine" (both on localhost), started together."""
    port = _free_port()
    flags = ["--nnodes", "2", "--nproc-per-node", "1", "--rdzv-endpoint", f"localhost:{port}"]
    procs = [
        subprocess.Popen(
            _run_cmd(out, *flags, "--rdzv-id", f"test-{port}", *extra, steps=steps),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for out in outs
    ]
    done = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=300)
        done.append(subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr))
    return done


def test_ddp_with_two_gloo_processes_completes(one_node_two_processes):
    out = one_node_two_processes
    assert (out / "checkpoints" / "step_00000002" / "manifest.json").is_file()
    assert (out / "metrics.json").is_file()


def test_two_nodes_of_one_process_train_as_one_node_of_two(one_node_two_processes, tmp_path):
    """Multi-node DDP through the c10d rendezvous, as 2 "nodes" x 1 process on this machine:
    the same weights, bit for bit, as 1 node x 2 processes."""
    out = tmp_path / "run"
    for node in _nodes([out, out]):
        assert node.returncode == 0, node.stderr[-3000:]
    ckpt, reference = out / "checkpoints" / "step_00000002", one_node_two_processes
    names = sorted(p.name for p in ckpt.glob("*.safetensors"))
    assert "generator.safetensors" in names and "discriminator_1.safetensors" in names
    for name in names:
        mine = load_file(ckpt / name)
        theirs = load_file(reference / "checkpoints" / "step_00000002" / name)
        assert mine.keys() == theirs.keys()
        assert all(torch.equal(mine[k], theirs[k]) for k in mine), name
    values = lambda run: {  # noqa: E731
        k: v["values"] for k, v in json.loads((run / "metrics.json").read_text())["results"].items()
    }
    assert values(out) == values(reference)
    resolved = yaml.safe_load((out / "recipe.resolved.yaml").read_text())
    assert resolved["runtime"]["device"] == "cpu"


def test_a_node_that_cannot_see_the_checkpoints_stops_with_a_clear_error(
    one_node_two_processes, tmp_path
):
    """A resumed multi-node run whose nodes see different run folders (no shared storage):
    one rank finds the step-2 checkpoint, the other none; both stop instead of hanging."""
    seen, unseen = tmp_path / "shared", tmp_path / "local"
    shutil.copytree(one_node_two_processes, seen)
    nodes = _nodes([seen, unseen], "--resume", steps=4)
    assert all(node.returncode != 0 for node in nodes)
    errors = "".join(node.stderr for node in nodes)
    assert "the ranks resumed at different steps" in errors, errors[-3000:]
    assert "every machine must see the same run folder" in errors


def _args(*argv: str):
    from t2i_stages.cli.main import build_parser

    return build_parser().parse_args(["run", str(MICRO), *argv])


def test_torchrun_flags_for_one_machine_and_for_several(monkeypatch):
    from t2i_stages.cli.run import _without_launch_flags, torchrun_args

    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    assert torchrun_args(_args("--nproc-per-node", "4")) == ["--standalone", "--nproc-per-node=4"]
    several = _args("--nnodes", "2", "--rdzv-endpoint", "node0:29500")
    assert torchrun_args(several) == [
        "--nnodes=2", "--nproc-per-node=1", "--rdzv-backend=c10d",
        "--rdzv-endpoint=node0:29500", "--rdzv-id=t2i-stages",
    ]  # fmt: skip
    monkeypatch.setenv("SLURM_JOB_ID", "4242")  # every node of a SLURM job shares it
    assert torchrun_args(several)[-1] == "--rdzv-id=4242"
    argv = ["run", "r.yaml", "--nnodes=2", "--rdzv-endpoint", "h:1", "--rdzv-id", "x",
            "--nproc-per-node", "2", "--out", "runs/x"]  # fmt: skip
    assert _without_launch_flags(argv) == ["run", "r.yaml", "--out", "runs/x"]


def test_several_machines_need_a_meeting_point(capsys):
    from t2i_stages.cli.main import main

    cases = {
        ("--nnodes", "2"): "--nnodes: give --rdzv-endpoint HOST:PORT, where the machines meet",
        ("--rdzv-endpoint", "h:1"): "--rdzv-endpoint/--rdzv-id: give --nnodes N as well",
        ("--nnodes", "0"): "--nnodes 0: must be at least 1",
        ("--nnodes", "2", "--rdzv-endpoint", "node0"): "--rdzv-endpoint node0: give HOST:PORT",
    }
    for argv, message in cases.items():
        assert main(["run", str(MICRO), *argv]) == 2
        assert capsys.readouterr().err.strip() == f"error: {message}"


def test_a_torchrun_worker_exits_without_the_interpreter_teardown(monkeypatch, capsys):
    """Workers leave through os._exit (after flushing) so gloo's threads are never torn down
    by Python's finalization; a plain command exits as usual with main's code."""
    from t2i_stages.cli import main as cli

    exits: list[int] = []

    def fake_exit(code: int) -> None:
        exits.append(code)
        raise SystemExit("os._exit")

    monkeypatch.setattr(cli.os, "_exit", fake_exit)
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(SystemExit, match="os._exit"):
        cli.entry(["run", str(MICRO), "--nnodes", "0"])
    assert exits == [2]
    assert "error: --nnodes 0: must be at least 1" in capsys.readouterr().err

    monkeypatch.delenv("WORLD_SIZE")
    with pytest.raises(SystemExit) as plain:
        cli.entry(["run", str(MICRO), "--nnodes", "0"])
    assert plain.value.code == 2 and exits == [2]
