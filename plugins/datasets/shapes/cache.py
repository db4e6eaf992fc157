"""Generating a shapes split into the cache, once: a content-keyed artefact that grows by
resolution.

Layout: ``cache_dir("shapes", root=params.cache_dir) / <hash of (content params, split, size)>/``
(``t2i_stages.artefacts``) holding ``manifest.json``, ``objects.npy`` (N, max_objects, 7) int64,
``offsets.npy``, ``background.npy``, ``mentions.npy`` (N, max_captions, max_objects, 7) int8,
``captions.json`` and one ``images_<r>.npy`` (N, r, r, 3) uint8 per resolution (memory-mapped when
read). The scenes and captions are built in a temporary folder and published whole; asking for a
new resolution later renders only that file into the published folder, under the artefact's
lock, and it appears under its final name only once complete. The manifest records the params
that shaped the content, the sha256 and size of every file and how long each step took; a file
whose size disagrees with it is made again. Rendering runs in worker processes, each writing its
own slice of a memory-mapped file.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from t2i_stages.plugin import Artefact, sha256_file

from .captions import scene_captions
from .params import ShapesParams
from .render import render_scene
from .scene import sample_scene

MANIFEST = "manifest.json"
FORMAT = "t2i-stages-shapes-cache"
CHUNK = 64
TEXT_FILES = ("objects.npy", "offsets.npy", "background.npy", "mentions.npy", "captions.json")


def split_artefact(p: ShapesParams, split: str, size: int) -> Artefact:
    """The cache artefact of a split: keyed by exactly the params that change its content."""
    return Artefact(
        "shapes", {"params": p.content(), "split": split, "size": size}, root=p.cache_dir
    )


def split_dir(p: ShapesParams, split: str, size: int) -> Path:
    return split_artefact(p, split, size).path


def _read_manifest(d: Path, p: ShapesParams, size: int) -> dict | None:
    try:
        m = json.loads((d / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if m.get("format") != FORMAT or m.get("params") != p.content() or m.get("size") != size:
        return None
    return m


def _file_ok(d: Path, manifest: dict, name: str) -> bool:
    info = manifest.get("files", {}).get(name)
    path = d / name
    return info is not None and path.is_file() and path.stat().st_size == info["bytes"]


def _write_manifest(d: Path, manifest: dict) -> None:
    tmp = d / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, d / MANIFEST)


def _record(d: Path, manifest: dict, name: str) -> None:
    path = d / name
    manifest.setdefault("files", {})[name] = {
        "sha256": sha256_file(path),
        "bytes": path.stat().st_size,
    }


# ---- worker tasks (module-level so worker processes can run them) ------------------------
def _text_task(params_json: str, sid: int, start: int, stop: int):
    p = ShapesParams.model_validate_json(params_json)
    objects, offsets, backgrounds, mentions, captions = [], [], [], [], []
    for i in range(start, stop):
        scene = sample_scene(p, sid, i)
        texts, ment = scene_captions(p, scene, sid, i)
        objects.append(scene.objects)
        offsets.append(scene.offsets)
        backgrounds.append(scene.background)
        mentions.append(ment.astype(np.int8))
        captions.append(texts)
    return (
        start,
        np.stack(objects),
        np.stack(offsets),
        np.stack(backgrounds),
        np.stack(mentions),
        captions,
    )


def _render_task(
    params_json: str, sid: int, start: int, stop: int, targets: list[tuple[int, str]]
) -> int:
    p = ShapesParams.model_validate_json(params_json)
    maps = [(r, np.load(path, mmap_mode="r+")) for r, path in targets]
    for i in range(start, stop):
        scene = sample_scene(p, sid, i)
        for r, mm in maps:
            mm[i] = render_scene(scene, r, p.grid, p.object_scale, p.supersample)
    for _, mm in maps:
        mm.flush()
    del maps
    return stop - start


def _workers(p: ShapesParams, work: int) -> int:
    if p.workers:
        return p.workers
    if work < 4 * CHUNK:
        return 1
    return max(1, min(os.cpu_count() or 1, 8))


def _run(tasks: list[tuple], fn: Callable, workers: int, done: Callable) -> None:
    if workers <= 1:
        for args in tasks:
            done(fn(*args))
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for result in pool.map(fn, *zip(*tasks, strict=True)):
            done(result)


def _generate_text(p: ShapesParams, split: str, size: int, sid: int, d: Path) -> dict:
    """Scenes and captions of the split into folder ``d``; returns its new manifest."""
    t0 = time.perf_counter()
    manifest = {
        "format": FORMAT,
        "params": p.content(),
        "key": p.content_key(),
        "split": split,
        "size": size,
        "files": {},
        "seconds": {},
    }
    n = size
    objects = np.zeros((n, p.max_objects, 7), np.int64)
    offsets = np.zeros((n, p.max_objects, 2), np.float64)
    background = np.zeros((n, 8), np.float64)
    mentions = np.zeros((n, p.max_captions, p.max_objects, 7), np.int8)
    captions: list[list[str]] = [[] for _ in range(n)]

    def store(result) -> None:
        start, o, off, bg, m, caps = result
        stop = start + len(caps)
        objects[start:stop], offsets[start:stop], background[start:stop] = o, off, bg
        mentions[start:stop] = m
        captions[start:stop] = caps

    params_json = p.model_dump_json()
    tasks = [(params_json, sid, s, min(s + 4 * CHUNK, n)) for s in range(0, n, 4 * CHUNK)]
    _run(tasks, _text_task, _workers(p, n // 4), store)
    for name, arr in (
        ("objects.npy", objects),
        ("offsets.npy", offsets),
        ("background.npy", background),
        ("mentions.npy", mentions),
    ):
        np.save(d / name, arr)
        _record(d, manifest, name)
    (d / "captions.json").write_text(json.dumps({"captions": captions}), encoding="utf-8")
    _record(d, manifest, "captions.json")
    manifest["seconds"]["text"] = round(time.perf_counter() - t0, 3)
    _write_manifest(d, manifest)
    return manifest


def _render_missing(
    p: ShapesParams, size: int, sid: int, d: Path, missing: list[int], manifest: dict
) -> None:
    """Render the ``missing`` resolutions into the published folder ``d`` (lock held)."""
    t0 = time.perf_counter()
    targets = []
    for r in missing:
        tmp = d / f"images_{r}.npy.tmp"
        np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(size, r, r, 3)).flush()
        targets.append((r, str(tmp)))
    params_json = p.model_dump_json()
    tasks = [(params_json, sid, s, min(s + CHUNK, size), targets) for s in range(0, size, CHUNK)]
    workers = _workers(p, size * sum(r * r for r in missing) // (64 * 64))
    _run(tasks, _render_task, workers, lambda _: None)
    for r, tmp in targets:
        name = f"images_{r}.npy"
        os.replace(tmp, d / name)
        _record(d, manifest, name)
    manifest["seconds"][f"render_{'_'.join(map(str, missing))}"] = round(
        time.perf_counter() - t0, 3
    )
    manifest["workers"] = workers
    _write_manifest(d, manifest)


def prepare_split(
    p: ShapesParams,
    split: str,
    size: int,
    sid: int,
    resolutions: list[int],
    log: Callable[[str], None] | None = None,
) -> tuple[Path, dict]:
    """Make sure the split and the asked resolutions are in the cache; return (folder, manifest).

    Under the artefact's lock, so that concurrent processes (DDP ranks, parallel tests) make
    each file once."""
    art = split_artefact(p, split, size)
    d = art.path
    with art.lock():
        manifest = _read_manifest(d, p, size) if art.ready() else None
        if manifest is None or not all(_file_ok(d, manifest, f) for f in TEXT_FILES):
            if log:
                log(f"shapes: generating {split} scenes and captions ({size} images) in {d}")
            with art.building() as tmp:
                manifest = _generate_text(p, split, size, sid, tmp)
        missing = [r for r in resolutions if not _file_ok(d, manifest, f"images_{r}.npy")]
        if missing:
            if log:
                log(f"shapes: rendering {split} images at {missing} px ({size} images) in {d}")
            _render_missing(p, size, sid, d, missing, manifest)
    return d, manifest


def verify_split(d: Path) -> list[str]:
    """Re-hash every file of a cached split; return the names whose hash differs from the manifest."""
    manifest = json.loads((Path(d) / MANIFEST).read_text(encoding="utf-8"))
    return [
        name
        for name, info in manifest["files"].items()
        if not (Path(d) / name).is_file() or sha256_file(Path(d) / name) != info["sha256"]
    ]
