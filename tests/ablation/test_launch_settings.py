"""Launcher settings without training: flags that do not fit, GPU packing, threads per process,
Ray's placement check, the run lock, and `--launcher ray` where Ray cannot be imported."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from t2i_stages.ablation import LaunchSettings, RunOutcome, RunTask, read_ablation
from t2i_stages.ablation.execute import run_lock
from t2i_stages.ablation.launch_processes import ProcessLauncher, gpu_slots
from t2i_stages.ablation.launch_ray import fitting_nodes
from t2i_stages.ablation.spec import AblationError
from t2i_stages.cli.main import main
from t2i_stages.errors import T2IError

ROOT = Path(__file__).parents[2]


@pytest.mark.parametrize(
    "settings, message",
    [
        (LaunchSettings("local", jobs=2), "--jobs applies to --launcher processes, not local"),
        (LaunchSettings("ray", jobs=2), "--jobs applies to --launcher processes, not ray"),
        (LaunchSettings("processes", jobs=0), "--jobs 0: must be at least 1"),
        (LaunchSettings("processes", address="auto"), "--address applies to --launcher ray"),
        (LaunchSettings("local", cpus_per_run=2), "apply to --launcher processes or ray"),
        (LaunchSettings("processes", cpus_per_run=0), "--cpus-per-run 0: must be at least 1"),
        (LaunchSettings("processes", gpus_per_run=1.5), "--gpus-per-run 1.5: give a share"),
        (LaunchSettings("slurm"), "--launcher slurm: choose one of local, processes, ray"),
    ],
)
def test_settings_that_do_not_fit_the_launcher_are_one_line_errors(settings, message):
    with pytest.raises(T2IError, match=message.replace(".", r"\.")) as info:
        settings.check()
    assert "\n" not in str(info.value)


def test_the_cli_refuses_a_misplaced_flag_before_planning(write_ablation, capsys):
    path = write_ablation("name: s\nvariants:\n  - name: base\n")
    assert main(["ablate", str(path), "--jobs", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: --jobs applies to --launcher processes, not local"]


def test_gpu_slots_pack_shares_and_split_whole_gpus():
    assert gpu_slots(["0"], 0.25) == ["0"] * 4
    assert gpu_slots(["0", "1"], 0.5) == ["0", "1", "0", "1"]  # spread over the GPUs first
    assert gpu_slots(["0", "1"], 1 / 3) == ["0", "1"] * 3
    assert gpu_slots(["0", "1", "2", "3"], 2) == ["0,1", "2,3"]
    assert gpu_slots(["4", "6"], 1) == ["4", "6"]  # CUDA_VISIBLE_DEVICES names, kept
    assert gpu_slots([], 0) == []
    with pytest.raises(T2IError, match="no CUDA GPU is visible"):
        gpu_slots([], 0.25)
    with pytest.raises(T2IError, match="--gpus-per-run 3: this machine has 2 GPU"):
        gpu_slots(["0", "1"], 3)


def test_process_threads_never_oversubscribe_the_cores_unless_asked():
    cases = {  # (jobs, cpus, cores) -> (jobs, threads)
        (None, None, 2): (2, 1),
        (1, None, 2): (1, 2),
        (None, 2, 2): (1, 2),
        (None, None, 16): (16, 1),
        (4, None, 16): (4, 4),
        (None, 3, 16): (5, 3),
    }
    for (jobs, cpus, cores), want in cases.items():
        launcher = ProcessLauncher.for_machine(jobs, cpus, 0, cores, gpus_seen=[])
        assert (launcher.jobs, launcher.threads) == want, (jobs, cpus, cores)
        assert launcher.warning is None and launcher.jobs * launcher.threads <= cores
    over = ProcessLauncher.for_machine(4, None, 0, 2, gpus_seen=[])
    assert (over.jobs, over.threads) == (4, 1)
    assert "4 runs x 1 thread(s) on 2 core(s)" in over.warning


def test_process_gpu_packing_sets_the_jobs_and_refuses_more_than_fit():
    packed = ProcessLauncher.for_machine(None, None, 0.25, 16, gpus_seen=["0"])
    assert (packed.jobs, packed.threads, packed.gpu_slots) == (4, 4, ["0"] * 4)
    fewer = ProcessLauncher.for_machine(2, None, 0.25, 16, gpus_seen=["0", "1"])
    assert fewer.gpu_slots == ["0", "1"]  # the first slots: one run on each GPU
    with pytest.raises(T2IError, match="--jobs 5 with --gpus-per-run 0.25: 4 run"):
        ProcessLauncher.for_machine(5, None, 0.25, 16, gpus_seen=["0"])
    assert "GPU slots ['0', '0', '0', '0']" in packed.describe()


def test_ray_placement_needs_one_node_with_room_for_the_claim():
    nodes = [
        {"Alive": True, "NodeManagerAddress": "a", "Resources": {"CPU": 8.0}},
        {"Alive": True, "NodeManagerAddress": "b", "Resources": {"CPU": 4.0, "GPU": 1.0}},
        {"Alive": False, "NodeManagerAddress": "c", "Resources": {"CPU": 64.0, "GPU": 8.0}},
    ]
    assert fitting_nodes(nodes, 2, 0) == ["a", "b"]
    assert fitting_nodes(nodes, 2, 0.25) == ["b"]
    assert fitting_nodes(nodes, 8, 1) == []  # only the dead node has it


def test_the_study_file_declares_what_each_run_claims(write_ablation):
    path = write_ablation("name: s\nresources: {cpus: 2, gpus: 0.5}\nvariants:\n  - name: b\n")
    spec, _ = read_ablation(path)
    assert (spec.resources.cpus, spec.resources.gpus) == (2, 0.5)
    default, _ = read_ablation(write_ablation("name: s\nvariants:\n  - name: b\n", "d.yaml"))
    assert (default.resources.cpus, default.resources.gpus) == (None, 0)
    bad = write_ablation("name: s\nresources: {gpus: 1.5}\nvariants:\n  - name: b\n", "x.yaml")
    with pytest.raises(AblationError, match="resources.gpus: 1.5: give a share"):
        read_ablation(bad)


def test_tasks_and_outcomes_travel_as_plain_json():
    task = RunTask("/a.yaml", ["x=1"], "/out", "base", 3, "ab" * 32, "t2i-stages ablate", "ray")
    assert RunTask.from_dict(json.loads(json.dumps(task.to_dict()))) == task
    assert task.out == Path("/out/base/seed-3") and task.key == "base/seed-3"
    data = {**RunOutcome("base/seed-3", "done", step=2).to_dict(), "added_later": 1}
    assert RunOutcome.from_dict(data) == RunOutcome("base/seed-3", "done", step=2)


def test_a_run_lock_is_held_by_one_process_at_a_time(tmp_path):
    script = textwrap.dedent(
        f"""
        import sys, time
        from t2i_stages.ablation.execute import run_lock
        with run_lock({str(tmp_path)!r}, "base/seed-0") as held:
            print(held, flush=True)
            sys.stdin.readline()
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "True"
        with run_lock(tmp_path, "base/seed-0") as held:
            assert held is False  # the other process trains it
        with run_lock(tmp_path, "base/seed-1") as held:
            assert held is True
    finally:
        proc.communicate("\n", timeout=60)
    with run_lock(tmp_path, "base/seed-0") as held:
        assert held is True  # released with its process


_BLOCKED = """
import importlib.abc, sys
class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "ray":
            raise ImportError("ray is blocked in this test")
sys.meta_path.insert(0, _Block())
from t2i_stages.cli.main import main
sys.exit(main({argv!r}))
"""


def test_launcher_ray_without_ray_is_a_one_line_error(write_ablation):
    path = write_ablation("name: s\nvariants:\n  - name: base\n")
    argv = ["ablate", str(path), "--launcher", "ray"]
    proc = subprocess.run(
        [sys.executable, "-c", _BLOCKED.format(argv=argv)],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines() == [
        "error: --launcher ray needs Ray: pip install 't2i-stages[ray]' (or pip install ray)"
    ]
    assert not (path.parent / "runs").exists()
    # and the other launchers do not need it
    plan = subprocess.run(
        [sys.executable, "-c", _BLOCKED.format(argv=["ablate", str(path), "--plan"])],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert plan.returncode == 0, plan.stderr[-2000:]


class _FakeChild:
    """Stands in for a run's process: records how it was started and 'finishes' at once."""

    started: list[dict] = []

    def __init__(self, cmd, env, start_new_session, **kwargs):
        task = json.loads(Path(cmd[-2]).read_text())
        _FakeChild.started.append({"env": env, "session": start_new_session, "task": task})
        key = f"{task['variant']}/seed-{task['seed']}"
        Path(cmd[-1]).write_text(json.dumps({"key": key, "status": "done", "step": 2}))
        self.pid, self.returncode = 10_000 + len(_FakeChild.started), 0

    def poll(self):
        return 0


def test_packed_processes_each_see_their_gpu_and_their_threads(
    write_ablation, registry, tmp_path, monkeypatch
):
    """What four children sharing two GPUs are started with (no GPU needed: the process is a
    stand-in), and that the study reads their results."""
    from t2i_stages.ablation import launch_processes, make_launcher, plan_ablation
    from t2i_stages.ablation.launchers import Study

    path = write_ablation(
        "name: s\nseeds: [0, 1]\nvariants:\n  - name: a\n  - name: b\n"
        "    set: [generator.params.stages.1.params.fusion.type=word_attention]\n"
    )
    plan = plan_ablation(path, registry=registry, out_dir=tmp_path / "o", build_check=False)
    launcher = ProcessLauncher.for_machine(None, None, 0.5, 16, gpus_seen=["0", "1"])
    assert (launcher.jobs, launcher.threads) == (4, 4)
    _FakeChild.started = []
    monkeypatch.setattr(launch_processes.subprocess, "Popen", _FakeChild)
    study = Study(plan, registry, "t2i-stages ablate s.yaml", total=4)
    outcomes = list(launcher.launch(study, plan.runs))
    assert sorted(o.key for o in outcomes) == sorted(
        ["a/seed-0", "b/seed-0", "a/seed-1", "b/seed-1"]
    )
    assert all(o.status == "done" for o in outcomes)
    envs = [s["env"] for s in _FakeChild.started]
    assert sorted(e["CUDA_VISIBLE_DEVICES"] for e in envs) == ["0", "0", "1", "1"]
    assert {(e["T2I_STAGES_THREADS"], e["OMP_NUM_THREADS"]) for e in envs} == {("4", "4")}
    assert all(s["session"] for s in _FakeChild.started)  # Ctrl-C reaches the study alone
    assert {s["task"]["launcher"] for s in _FakeChild.started} == {"processes"}
    assert all(s["task"]["resume"] is False for s in _FakeChild.started)  # fresh folders
    # without a GPU claim a child sees no GPU (as Ray's num_gpus=0 tasks)
    _FakeChild.started = []
    cpu_only = ProcessLauncher.for_machine(2, None, 0, 2, gpus_seen=["0"])
    assert [o.status for o in cpu_only.launch(study, plan.runs[:2])] == ["done", "done"]
    assert [s["env"]["CUDA_VISIBLE_DEVICES"] for s in _FakeChild.started] == ["", ""]
    for name in ("processes", "ray"):
        with pytest.raises(T2IError, match=f"--device cuda with --launcher {name}: give each"):
            make_launcher(LaunchSettings(name), plan, "cuda")
    monkeypatch.setattr(launch_processes, "visible_gpus", lambda: [])  # past the device check
    with pytest.raises(T2IError, match="--gpus-per-run 0.5: no CUDA GPU is visible"):
        make_launcher(LaunchSettings("processes", gpus_per_run=0.5), plan, "cuda")
