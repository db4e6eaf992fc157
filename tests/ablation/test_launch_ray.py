"""`--launcher ray` on a real local Ray cluster with two worker slots (one per module: Ray's
start is slow): the parity study's four runs finish, each with the CPU it claimed, with the
local launcher's metrics; a rerun skips all four; a study stopped by Ctrl-C resumes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import threading

import pytest
import ray
from launch_study import PARITY_RUNS, launch_record, run_values, wait_for

from t2i_stages.ablation import LaunchSettings, run_ablation
from t2i_stages.errors import T2IError

ON_RAY = LaunchSettings("ray")


@pytest.fixture(scope="module")
def ray_cluster():
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # Ray's socket paths must stay short
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _temp_dir=temp)
    yield ray.cluster_resources()
    ray.shutdown()
    shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def ray_parity(ray_cluster, parity_file, registry, tmp_path_factory):
    out = tmp_path_factory.mktemp("parity-ray")
    lines = []
    result = run_ablation(
        parity_file, registry=registry, out_dir=out, log=lines.append, launch=ON_RAY
    )
    return out, result, lines


def test_four_runs_finish_on_ray_each_with_the_cpu_it_claimed(ray_parity, ray_cluster):
    out, result, lines = ray_parity
    assert ray_cluster["CPU"] == 2
    assert sorted(result.trained) == sorted(PARITY_RUNS) and result.failed == []
    records = [launch_record(out, key) for key in PARITY_RUNS]
    for record in records:
        assert record["launcher"] == "ray" and record["outcome"] == "done"
        assert record["claimed"] == {"CPU": 1.0}  # what Ray assigned the task
        assert record["threads"] == 1
    # a fresh worker process per run, none of them this one
    assert len({r["pid"] for r in records}) == 4 and os.getpid() not in {r["pid"] for r in records}
    # two slots: never more than two runs at once
    events = sorted(
        [(r["started_at"], 1) for r in records] + [(r["finished_at"], -1) for r in records]
    )
    running = peak = 0
    for _, change in events:
        running += change
        peak = max(peak, running)
    assert peak <= 2
    assert any("launching 4 run(s) on ray" in line for line in lines)


def test_ray_gives_the_local_launchers_metrics(ray_parity, local_parity):
    out, _, _ = ray_parity
    assert run_values(out) == run_values(local_parity)
    assert (out / "table.csv").read_text() == (local_parity / "table.csv").read_text()


def test_a_rerun_on_ray_skips_all_four(ray_parity, parity_file, registry):
    out, _, _ = ray_parity
    before = {k: (out / k / "metrics.json").stat().st_mtime_ns for k in PARITY_RUNS}
    result = run_ablation(
        parity_file, registry=registry, out_dir=out, log=lambda *a: None, launch=ON_RAY
    )
    assert result.trained == [] and sorted(result.skipped) == sorted(PARITY_RUNS)
    assert {k: (out / k / "metrics.json").stat().st_mtime_ns for k in PARITY_RUNS} == before


def test_a_claim_no_node_holds_is_refused(ray_cluster, parity_file, registry, tmp_path):
    too_big = LaunchSettings("ray", cpus_per_run=3)
    with pytest.raises(T2IError, match="no node of the Ray cluster has that much") as info:
        run_ablation(parity_file, registry=registry, out_dir=tmp_path, log=lambda *a: None,
                     launch=too_big)  # fmt: skip
    assert "2 CPU, 0 GPU" in str(info.value)


def test_ctrl_c_stops_the_runs_at_a_checkpoint_and_the_next_launch_resumes_them(
    ray_cluster, write_ablation, registry, tmp_path
):
    path = write_ablation(
        "name: stop\nseeds: [0, 1]\nset: [train.max_steps=40, train.ckpt_every=3]\n"
        "variants:\n  - name: base\n"
    )
    out = tmp_path / "study"
    keys = ["base/seed-0", "base/seed-1"]

    def ctrl_c_once_both_checkpointed():  # 40 steps: room for one run starting late
        def both():
            return all(list((out / k / "checkpoints").glob("step_*/manifest.json")) for k in keys)

        if wait_for(both):
            os.kill(os.getpid(), signal.SIGINT)  # the launcher holds SIGINT while it waits

    threading.Thread(target=ctrl_c_once_both_checkpointed, daemon=True).start()
    lines = []
    result = run_ablation(path, registry=registry, out_dir=out, log=lines.append, launch=ON_RAY)
    assert result.stopped == "SIGINT", lines
    assert sorted(result.interrupted) == keys and result.trained == []
    stopped_at = {}
    for key in keys:
        assert not (out / key / "ablation-run.json").exists()
        assert launch_record(out, key)["outcome"] == "stopped"
        log = (out / key / "launch.log").read_text()
        assert "stopped by SIGINT at step" in log and "checkpoint written" in log
        stopped_at[key] = int(log.split("stopped by SIGINT at step ")[1].split(";")[0])
        assert 3 <= stopped_at[key] < 40

    again = run_ablation(path, registry=registry, out_dir=out, log=lambda *a: None, launch=ON_RAY)
    assert sorted(again.trained) == keys and again.stopped is None
    for key in keys:
        log = (out / key / "launch.log").read_text()
        assert f"(step {stopped_at[key]})" in log.split("resumed from ")[1].splitlines()[0]
        assert json.loads((out / key / "ablation-run.json").read_text())["step"] == 40
