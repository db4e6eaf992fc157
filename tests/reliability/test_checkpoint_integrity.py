"""Checkpoint integrity: every flipped byte is caught, bad checkpoints are skipped by name,
pickle payloads never run, and a run checks its disk before the first step."""

from __future__ import annotations

import builtins
import io
import json
import pickle
import random
import shutil
import zipfile
from pathlib import Path

import pytest
import torch
from rel_helpers import QUIET

from t2i_stages import checkpoint as ck
from t2i_stages.checkpoint import (
    CheckpointError,
    latest_good_checkpoint,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
    verify_checkpoint,
)
from t2i_stages.errors import T2IError
from t2i_stages.plugins.datasets.legacy_pickle import safe_load_pickle
from t2i_stages.training import train


@pytest.fixture(scope="module")
def run(micro, registry, tmp_path_factory):
    """A 2-step micro run with a checkpoint after each step."""
    out = tmp_path_factory.mktemp("ckpt-run")
    recipe = micro("train.max_steps=2", "train.ckpt_every=1", "train.sample_every=100")
    summary = train(recipe, registry, out, **QUIET)
    return out, summary


def _copy(run, tmp_path) -> Path:
    out, _ = run
    dst = tmp_path / "checkpoints"
    shutil.copytree(out / "checkpoints", dst)
    return dst


def _flip(path: Path, pos: int, mask: int = 0xFF) -> None:
    data = bytearray(path.read_bytes())
    data[pos] ^= mask
    path.write_bytes(bytes(data))


def _rewrite_manifest(folder: Path) -> None:
    """What an attacker would do: recompute every hash so the manifest matches the files."""
    manifest = json.loads((folder / ck.MANIFEST).read_text())
    manifest["files"] = {n: ck._sha256(folder / n) for n in manifest["files"]}
    manifest["manifest_sha256"] = ck.manifest_digest(manifest)
    (folder / ck.MANIFEST).write_text(json.dumps(manifest))


def test_a_checkpoint_holds_every_part_and_loads(run):
    out, _ = run
    folders = list_checkpoints(out / "checkpoints")
    assert [p.name for p in folders] == ["step_00000001", "step_00000002"]
    names = {p.name for p in folders[-1].iterdir()}
    assert {
        "generator.safetensors",
        "generator_ema.safetensors",
        "discriminator_0.safetensors",
        "discriminator_1.safetensors",
        "matcher.safetensors",
        "optimizers.pt",
        "rng.json",
        "rng.safetensors",
        "state.json",
        "recipe.resolved.yaml",
        "manifest.json",
    } <= names
    ckpt = load_checkpoint(folders[-1])
    assert ckpt.state["step"] == 2
    assert set(ckpt.optimizers) == {"generator", "discriminator_0", "discriminator_1"}
    assert {"python", "numpy", "torch", "generators"} <= set(ckpt.rng)
    assert not list((out / "checkpoints").glob(".tmp-*")), "temporary folder left behind"


def test_one_flipped_byte_in_any_file_is_detected_and_named(run, tmp_path):
    folder = list_checkpoints(_copy(run, tmp_path))[-1]
    rng = random.Random(0)
    files = sorted(p.name for p in folder.iterdir())
    for name in files:
        size = (folder / name).stat().st_size
        for pos in {0, size // 2, size - 1, rng.randrange(size)}:
            _flip(folder / name, pos)
            with pytest.raises(CheckpointError) as err:
                verify_checkpoint(folder)
            assert name in str(err.value), (name, pos, str(err.value))
            assert len(str(err.value).splitlines()) == 1
            _flip(folder / name, pos)  # restore
    verify_checkpoint(folder)


def test_every_single_bit_flip_of_the_manifest_is_detected(run, tmp_path):
    folder = list_checkpoints(_copy(run, tmp_path))[-1]
    manifest = folder / ck.MANIFEST
    original = manifest.read_bytes()
    for pos in range(len(original)):
        _flip(manifest, pos, 0x01)
        with pytest.raises(CheckpointError, match="manifest.json"):
            verify_checkpoint(folder)
        manifest.write_bytes(original)


def test_truncated_or_missing_files_are_detected(run, tmp_path):
    folder = list_checkpoints(_copy(run, tmp_path))[-1]
    gen = folder / "generator.safetensors"
    gen.write_bytes(gen.read_bytes()[:-10])
    with pytest.raises(CheckpointError, match=r"generator\.safetensors: SHA-256 does not match"):
        load_checkpoint(folder)
    gen.unlink()
    with pytest.raises(CheckpointError, match=r"generator\.safetensors: file listed .* missing"):
        load_checkpoint(folder)
    (folder / ck.MANIFEST).unlink()
    with pytest.raises(CheckpointError, match="missing or unreadable manifest"):
        load_checkpoint(folder)


def test_a_bad_newest_checkpoint_is_reported_and_the_previous_one_offered(run, tmp_path):
    root = _copy(run, tmp_path)
    _flip(root / "step_00000002" / "discriminator_1.safetensors", 100)
    warnings: list[str] = []
    ckpt = latest_good_checkpoint(root, warn=warnings.append)
    assert ckpt is not None and ckpt.path.name == "step_00000001"
    (warning,) = warnings
    assert "step_00000002" in warning and "discriminator_1.safetensors" in warning
    assert "trying the previous one" in warning


def test_resume_refuses_to_start_over_when_no_checkpoint_verifies(run, micro, registry, tmp_path):
    out, _ = run
    dst = tmp_path / "run"
    shutil.copytree(out, dst)
    for folder in list_checkpoints(dst / "checkpoints"):
        _flip(folder / "state.json", 0)
    recipe = micro("train.max_steps=3", "train.ckpt_every=1", "train.sample_every=100")
    with pytest.raises(CheckpointError, match="none of the 2 checkpoints verifies"):
        train(recipe, registry, dst, resume=True, **QUIET)


def test_files_not_in_the_manifest_are_never_loaded(run, tmp_path):
    folder = list_checkpoints(_copy(run, tmp_path))[-1]
    shutil.copy(folder / "generator.safetensors", folder / "intruder.safetensors")
    assert "intruder" not in load_checkpoint(folder).components
    manifest = json.loads((folder / ck.MANIFEST).read_text())
    manifest["files"]["../outside.safetensors"] = "0" * 64
    manifest["manifest_sha256"] = ck.manifest_digest(manifest)
    (folder / ck.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="not a plain checkpoint file name"):
        load_checkpoint(folder)


def _unpickle_unsafely(data: bytes):
    """What an unsafe loader does with a pickle: run it (shows a payload is live)."""
    return pickle.Unpickler(io.BytesIO(data)).load()


class _Payload:
    """Unpickling this runs exec(), which creates ``marker``: the classic pickle attack."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (builtins.exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


def test_pickle_payload_in_optimizer_state_is_refused_without_running(run, tmp_path):
    folder = list_checkpoints(_copy(run, tmp_path))[-1]
    marker = tmp_path / "pwned.txt"
    torch.save({"generator": _Payload(marker)}, folder / "optimizers.pt")
    # the payload is live: unpickling its data.pkl, as an unrestricted torch load would, runs it
    # (so this test can fail)
    with zipfile.ZipFile(folder / "optimizers.pt") as z:
        _unpickle_unsafely(z.read(next(n for n in z.namelist() if n.endswith("data.pkl"))))
    assert marker.exists()
    marker.unlink()
    # 1) as dropped in: the hash no longer matches, nothing is unpickled
    with pytest.raises(CheckpointError, match=r"optimizers\.pt: SHA-256 does not match"):
        load_checkpoint(folder)
    # 2) with a rewritten manifest (hashes are not signatures): weights_only refuses it
    _rewrite_manifest(folder)
    with pytest.raises(CheckpointError, match=r"optimizers\.pt: refused to load") as err:
        load_checkpoint(folder)
    assert len(str(err.value).splitlines()) == 1
    assert not marker.exists()


def test_pickle_payload_in_a_legacy_dataset_pickle_is_refused(tmp_path):
    marker = tmp_path / "pwned.txt"
    path = tmp_path / "filenames.pickle"
    path.write_bytes(pickle.dumps(_Payload(marker), protocol=2))
    _unpickle_unsafely(path.read_bytes())  # live payload (this test can fail)
    assert marker.exists()
    marker.unlink()
    with pytest.raises(T2IError, match="filenames.pickle: not a plain-data pickle"):
        safe_load_pickle(path)
    assert not marker.exists()


def test_stale_temporaries_are_removed_and_steps_sort_numerically(tmp_path):
    root = tmp_path / "checkpoints"
    stale = root / ".tmp-step_00000007-999999999"
    stale.mkdir(parents=True)
    (stale / "generator.safetensors").write_bytes(b"half")
    rng = {"python": random.getstate(), "numpy": __import__("numpy").random.get_state()}
    rng["torch"] = torch.get_rng_state()
    comps = {"generator": {"w": torch.ones(3)}}
    for step in (99_999_999, 100_000_000):
        save_checkpoint(root, step, comps, {"generator": {}}, rng, {}, "name: x\n", keep=5)
    assert not stale.exists()
    assert [p.name for p in list_checkpoints(root)] == ["step_99999999", "step_100000000"]
    assert load_checkpoint(list_checkpoints(root)[-1]).state["step"] == 100_000_000


def test_size_estimate_matches_a_written_checkpoint(run):
    out, summary = run
    trainer = summary["trainer"]
    folder = list_checkpoints(out / "checkpoints")[-1]
    actual = sum(p.stat().st_size for p in folder.iterdir())
    estimate = trainer.check_output_space()
    assert 0.9 * actual <= estimate <= 1.5 * actual, (estimate, actual)


def test_no_training_starts_when_a_checkpoint_cannot_fit(micro, registry, tmp_path, monkeypatch):
    free = shutil._ntuple_diskusage(total=10**9, used=10**9 - 1000, free=1000)
    monkeypatch.setattr(ck.shutil, "disk_usage", lambda path: free)
    recipe = micro("train.max_steps=2", "train.sample_every=100")
    with pytest.raises(CheckpointError, match=r"0\.0 MiB free, but a checkpoint needs about"):
        train(recipe, registry, tmp_path / "run", **QUIET)
    assert not (tmp_path / "run" / "history.jsonl").exists()
    assert list_checkpoints(tmp_path / "run" / "checkpoints") == []


def test_unwritable_output_folders_are_refused_before_training(micro, registry, tmp_path):
    recipe = micro("train.max_steps=2", "train.sample_every=100")
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(T2IError, match="cannot create the run folder"):
        train(recipe, registry, blocker / "run", **QUIET)
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoints").write_text("not a folder")
    with pytest.raises(CheckpointError, match="output folder is not writable"):
        train(recipe, registry, out, **QUIET)
    assert not (out / "history.jsonl").exists()
