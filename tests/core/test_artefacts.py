"""Content-keyed artefacts (t2i_stages.artefacts): one folder per key, published whole, built once."""

from __future__ import annotations

import multiprocessing
import os
import time

import pytest
import torch

from t2i_stages.artefacts import (
    MARKER,
    Artefact,
    load_state,
    save_state,
    write_config,
)
from t2i_stages.assets import cache_dir

KEY = {"params": {"seed": 0, "sizes": [1, 2]}, "split": "train", "size": 8}


def _files(tag: str, slow: float = 0.0):
    def build(tmp):
        for i in range(4):
            (tmp / f"part{i}.txt").write_text(f"{tag}:{i}")
            time.sleep(slow)

    return build


def test_ensure_builds_once_and_publishes_under_the_cache_rule(tmp_path, monkeypatch):
    monkeypatch.setenv("T2I_STAGES_HOME", str(tmp_path / "home"))
    calls = []
    art = Artefact("things", KEY)
    assert art.path.parent == cache_dir("things") == tmp_path / "home" / "cache" / "things"
    assert not art.ready() and art.config() is None

    def build(tmp):
        calls.append(tmp)
        _files("a")(tmp)
        write_config(tmp, {"complete": False, "steps": 3})

    assert art.ensure(build) == art.path
    assert art.ready() and art.config() == {"complete": False, "steps": 3}
    assert sorted(p.name for p in art.path.iterdir()) == sorted(
        [MARKER, "config.json", *(f"part{i}.txt" for i in range(4))]
    )
    assert Artefact("things", dict(reversed(list(KEY.items())))).ensure(build) == art.path
    assert len(calls) == 1  # the same content (in any key order) is found again
    assert not calls[0].exists()  # the temporary folder became the artefact
    assert [p.name for p in art.path.parent.iterdir() if p.name.startswith(".")] == []
    # a root override replaces $T2I_STAGES_HOME/cache, as for the shapes cache_dir param
    other = Artefact("things", KEY, root=tmp_path / "mine")
    assert other.path == tmp_path / "mine" / "things" / art.path.name and not other.ready()


def test_a_different_key_or_kind_gives_a_different_folder(tmp_path):
    a = Artefact("things", KEY, root=tmp_path)
    assert Artefact("things", {**KEY, "size": 9}, root=tmp_path).path != a.path
    assert (
        Artefact("things", {**KEY, "params": {"seed": 1, "sizes": [1, 2]}}, root=tmp_path).path
        != a.path
    )
    assert Artefact("other", KEY, root=tmp_path).path.name == a.path.name
    assert Artefact("other", KEY, root=tmp_path).path != a.path
    assert len(a.path.name) == 24 and len(a.digest) == 64


def test_a_half_made_folder_is_never_ready_and_is_rebuilt(tmp_path):
    art = Artefact("things", KEY, root=tmp_path)
    art.path.mkdir(parents=True)
    (art.path / "part0.txt").write_text("half")  # e.g. an older tool's interrupted write
    assert not art.ready()
    (art.path / MARKER).write_text('{"sha256": "someone else"}')
    assert not art.ready()
    (art.path / MARKER).write_text("{not json")
    assert not art.ready()
    art.ensure(_files("new"))
    assert art.ready() and (art.path / "part0.txt").read_text() == "new:0"
    assert (art.path / "part3.txt").read_text() == "new:3"


def test_a_failed_build_publishes_nothing_and_leaves_nothing(tmp_path):
    art = Artefact("things", KEY, root=tmp_path)
    with pytest.raises(RuntimeError, match="boom"):
        with art.building() as tmp:
            (tmp / "part0.txt").write_text("x")
            raise RuntimeError("boom")
    assert not art.path.exists() and not art.ready()
    assert [p.name for p in art.path.parent.iterdir() if not p.name.endswith(".lock")] == []


def _killed_builder(root: str) -> None:
    art = Artefact("things", KEY, root=root)
    with art.building() as tmp:
        (tmp / "part0.txt").write_text("x")
        os._exit(1)  # killed mid-build: no clean-up runs


def test_a_killed_build_is_not_taken_for_a_whole_one(tmp_path):
    proc = multiprocessing.get_context("fork").Process(
        target=_killed_builder, args=(str(tmp_path),)
    )
    proc.start()
    proc.join(30)
    assert proc.exitcode == 1
    art = Artefact("things", KEY, root=tmp_path)
    assert not art.ready() and not art.path.exists()  # only a .tmp- folder nobody reads
    assert art.ensure(_files("b")) and (art.path / "part1.txt").read_text() == "b:1"


def test_replacing_a_published_artefact_keeps_it_whole(tmp_path):
    art = Artefact("things", KEY, root=tmp_path)
    art.ensure(_files("old"))
    with art.building() as tmp:  # e.g. a resumed pretraining publishing its finished weights
        _files("new")(tmp)
        write_config(tmp, {"complete": True})
    assert art.ready() and art.config() == {"complete": True}
    assert {p.read_text() for p in art.path.glob("part*.txt")} == {f"new:{i}" for i in range(4)}
    assert [p.name for p in art.path.parent.iterdir() if p.name.startswith(".")] == []


def _ensure_in_child(root: str, log: str, tag: str) -> None:
    def build(tmp):
        with open(log, "a") as fh:
            fh.write(tag + "\n")
        _files(tag, slow=0.05)(tmp)

    Artefact("things", KEY, root=root).ensure(build)


def _publish_in_child(root: str, tag: str) -> None:
    with Artefact("things", KEY, root=root).building() as tmp:  # no lock while building
        _files(tag, slow=0.05)(tmp)


@pytest.mark.parametrize("mode", ["ensure", "unlocked builders"])
def test_concurrent_builders_do_not_corrupt(tmp_path, mode):
    ctx = multiprocessing.get_context("fork")
    log = tmp_path / "builds.log"
    if mode == "ensure":
        procs = [
            ctx.Process(target=_ensure_in_child, args=(str(tmp_path), str(log), f"p{i}"))
            for i in range(4)
        ]
    else:
        procs = [
            ctx.Process(target=_publish_in_child, args=(str(tmp_path), f"p{i}")) for i in range(4)
        ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    art = Artefact("things", KEY, root=tmp_path)
    assert art.ready()
    tags = {p.read_text().split(":")[0] for p in art.path.glob("part*.txt")}
    assert len(tags) == 1 and len(list(art.path.glob("part*.txt"))) == 4  # one builder's, whole
    if mode == "ensure":
        assert len(log.read_text().split()) == 1  # built once, the others waited and found it
    assert [p.name for p in art.path.parent.iterdir() if p.name.startswith(".")] == []


def test_the_lock_nests_within_a_thread(tmp_path):
    art = Artefact("things", KEY, root=tmp_path)
    with art.lock(), art.lock():
        art.ensure(_files("n"))  # ensure and building take the lock again without deadlock
    assert art.ready()


def test_safetensors_state_round_trip(tmp_path):
    state = {"w": torch.arange(12.0).reshape(3, 4).t(), "b": torch.ones(2, dtype=torch.bfloat16)}
    path = save_state(tmp_path, state, "net.safetensors", note="x")
    assert path == tmp_path / "net.safetensors"
    back = load_state(tmp_path, "net.safetensors")
    assert set(back) == {"w", "b"} and torch.equal(back["w"], state["w"])
    assert back["b"].dtype == torch.bfloat16
