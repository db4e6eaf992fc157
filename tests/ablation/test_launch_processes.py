"""`--launcher processes`: the parity study as two local processes gives the local launcher's
metrics; a run whose process is killed fails alone, and the next launch resumes it."""

from __future__ import annotations

import json
import os
import signal
import threading

import pytest
import yaml
from launch_study import PARITY_RUNS, launch_record, run_values, wait_for

from t2i_stages.ablation import LaunchSettings, run_ablation
from t2i_stages.ablation.spec import AblationError
from t2i_stages.cli.main import main

TWO_AT_ONCE = LaunchSettings("processes", jobs=2, cpus_per_run=1)


@pytest.fixture(scope="module")
def processes_parity(parity_file, registry, tmp_path_factory):
    out = tmp_path_factory.mktemp("parity-processes")
    result = run_ablation(
        parity_file, registry=registry, out_dir=out, log=lambda *a: None, launch=TWO_AT_ONCE
    )
    return out, result


def test_processes_give_the_local_launchers_metrics(processes_parity, local_parity):
    out, result = processes_parity
    assert sorted(result.trained) == sorted(PARITY_RUNS) and result.failed == []
    assert run_values(out) == run_values(local_parity)
    assert (out / "table.csv").read_text() == (local_parity / "table.csv").read_text()
    runs = (out / "runs.csv").read_text().replace(str(out), "STUDY")
    assert runs == (local_parity / "runs.csv").read_text().replace(str(local_parity), "STUDY")


def test_each_process_ran_at_its_thread_share(processes_parity):
    out, _ = processes_parity
    pids = set()
    for key in PARITY_RUNS:
        record = launch_record(out, key)
        assert record["launcher"] == "processes" and record["outcome"] == "done"
        assert record["threads"] == 1 and record["claimed"]["CPU"] == 1
        pids.add(record["pid"])
        resolved = yaml.safe_load((out / key / "recipe.resolved.yaml").read_text())
        assert resolved["runtime"]["threads"]["chosen"] == 1
        assert "measured step" in (out / key / "launch.log").read_text()  # its own console
    assert len(pids) == 4 and os.getpid() not in pids


def test_a_killed_run_fails_alone_and_the_next_launch_resumes_it(
    write_ablation, registry, tmp_path
):
    path = write_ablation(
        "name: crash\nseeds: [0, 1]\nset: [train.max_steps=15, train.ckpt_every=3]\n"
        "variants:\n  - name: base\n"
    )
    out = tmp_path / "study"
    victim = out / "base" / "seed-1"
    killed = {}

    def kill_after_a_checkpoint():
        if wait_for(lambda: list((victim / "checkpoints").glob("step_*/manifest.json"))):
            killed["pid"] = int(json.loads((victim / "launch.json").read_text())["pid"])
            os.kill(killed["pid"], signal.SIGKILL)  # a crash: no chance to checkpoint

    killer = threading.Thread(target=kill_after_a_checkpoint, daemon=True)
    killer.start()
    lines = []
    with pytest.raises(AblationError) as info:
        run_ablation(path, registry=registry, out_dir=out, log=lines.append, launch=TWO_AT_ONCE)
    killer.join(timeout=60)
    assert killed, "the run finished before it could be killed"
    message = str(info.value)
    assert "1 run(s) failed (base/seed-1: its process ended (signal 9)" in message
    assert "\n" not in message
    assert (out / "base" / "seed-0" / "ablation-run.json").is_file()  # the other one finished
    assert not (victim / "ablation-run.json").exists()
    assert (out / "table.csv").is_file()  # the finished run is compared all the same

    assert main(["ablate", str(path), "--out", str(out), "--launcher", "processes"]) == 0
    log = (victim / "launch.log").read_text()
    resumed = [ln for ln in log.splitlines() if ln.startswith("resumed from")]
    assert resumed and "(step 0)" not in resumed[-1], log[-2000:]
    marker = json.loads((victim / "ablation-run.json").read_text())
    assert marker["step"] == 15
    assert launch_record(out, "base/seed-1")["outcome"] == "done"
