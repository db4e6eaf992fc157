"""The pure helpers of the issue-11 benchmark scripts: statistics, tables, docs sections, curves."""

from __future__ import annotations

import json
import math
from pathlib import Path

import bench_common as bc  # benchmarks/ is on sys.path (conftest.py)
import compare_families as cf
import demo_learning_curve as lc
import pytest


def test_summarize_drops_missing_and_uses_sample_std():
    s = bc.summarize([1.0, 3.0, None, float("nan"), "x"])
    assert s["n"] == 2 and s["mean"] == 2.0 and s["median"] == 2.0
    assert s["std"] == pytest.approx(math.sqrt(2))
    assert bc.summarize([5.0])["std"] is None
    assert bc.summarize([]) == {"mean": None, "std": None, "median": None, "n": 0}


def test_mean_std_cells():
    assert bc.fmt_mean_std(bc.summarize([0.5, 0.7])) == "0.600 ± 0.14"
    assert bc.fmt_mean_std(bc.summarize([686.4])) == "686"
    assert bc.fmt_mean_std(bc.summarize([None])) == "n/a"
    assert bc.fmt_num(0.0300) == "0.0300"
    assert bc.fmt_num(float("nan")) == "n/a"


def test_replace_section_appends_then_updates_in_place():
    text = "# Benchmarks\n\n## Other\n\nkeep me\n"
    once = bc.replace_section(text, "demo", "## Demo\n\nfirst")
    assert once.startswith(text.rstrip("\n"))
    assert "<!-- demo:start -->\n## Demo\n\nfirst\n<!-- demo:end -->" in once
    tail = "\n## After\n\nalso kept\n"
    twice = bc.replace_section(once + tail, "demo", "## Demo\n\nsecond")
    assert "first" not in twice and "second" in twice
    assert "keep me" in twice and twice.endswith(tail)
    assert twice.count("<!-- demo:start -->") == 1
    other = bc.replace_section(twice, "other_bench", "x")
    assert "second" in other and other.count("<!-- other_bench:end -->") == 1


def test_replace_section_refuses_a_lone_marker():
    with pytest.raises(ValueError):
        bc.replace_section("<!-- demo:start -->\nno end\n", "demo", "x")
    with pytest.raises(ValueError):
        bc.replace_section("no start\n<!-- demo:end -->\n", "demo", "x")


def test_section_finding_keeps_a_written_finding_only():
    body = f"## S\n\nnumbers\n\n{bc.FINDING_PLACEHOLDER}"
    text = bc.replace_section("", "s", body)
    assert bc.section_finding(text, "s") is None
    text = text.replace(bc.FINDING_PLACEHOLDER, "Finding: GR-GAN is first on CMD.")
    assert bc.section_finding(text, "s") == "Finding: GR-GAN is first on CMD."
    assert bc.section_finding("no markers", "s") is None


def test_write_json_is_strict(tmp_path):
    path = bc.write_json(tmp_path / "a" / "r.json", {"x": float("nan"), "y": [1.0, float("inf")]})
    assert json.loads(path.read_text()) == {"x": None, "y": [1.0, None]}


def test_flatten_results_names_cmd_by_space_and_keeps_errors():
    results = {
        "attribute_accuracy": {"values": {"attr_acc[shape]": 0.9, cf.SCP: 0.8}},
        "fid": {"values": {"FD[oracle]": 12.0}, "params": {"extractor": "oracle"}},
        "cmd": {"values": {"CMD": 3.0, "ITDis": 0.5}, "params": {"space": "held_out"}},
        "cmd#2": {"values": {"CMD": 1.0, "ITDis": 0.1}, "params": {"space": "matcher"}},
        "r_precision": {"error": "boom"},
    }
    values, errors = cf.flatten_results(results)
    assert values["CMD[held_out]"] == 3.0 and values["ITDis[matcher]"] == 0.1
    assert values["FD[oracle]"] == 12.0 and values[cf.SCP] == 0.8
    assert errors == {"r_precision": "boom"}


def _record(fam: str, seed: int, scp: float | None) -> dict:
    metrics = {"attr_acc[shape]": 0.5, "attr_acc[all_mentioned]": 0.4, "FD[oracle]": 10.0 + seed}
    if scp is not None:
        metrics[cf.SCP] = scp
    timing = {"setup_seconds": 1.0, "train_seconds": 2.0, "eval_seconds": 1.0}
    return {"family": fam, "seed": seed, "metrics": metrics, "timing": timing, "matcher": None}


def test_aggregate_and_tables_show_na_for_a_missing_key():
    recs = [_record("grgan", 0, 0.8), _record("grgan", 1, 0.6), _record("attngan", 0, None)]
    agg = cf.aggregate(recs, ["grgan", "attngan"])
    assert agg["grgan"]["FD[oracle]"]["mean"] == 10.5 and agg["grgan"]["seeds"] == [0, 1]
    assert cf.attribute_keys(agg)[-1] == cf.SCP
    md = cf.tables(agg, ["grgan", "attngan"])
    assert "| GR-GAN | 0.500 ± 0 | 0.400 ± 0 | 0.700 ± 0.14 |" in md
    assert "| AttnGAN | 0.500 | 0.400 | n/a |" in md


def test_metric_list_is_one_held_out_encoder_for_every_metric():
    held = {"type": "damsm", "params": {"pretrain": {"steps": 5}}}
    metrics = cf.metric_list(held, 1000)
    shared = [m for m in metrics if m.get("params", {}).get("held_out_matcher")]
    assert {m["type"] for m in shared} == {"r_precision", "cmd"}
    assert all(m["params"]["held_out_seed"] == 1000 for m in shared)
    assert {"type": "cmd", "params": {"space": "matcher"}} in metrics


def _point(minutes: float, step: int, scp: float | None) -> dict:
    metrics = {} if scp is None else {lc.SCP: scp}
    return {"train_seconds": minutes * 60, "step": step, "metrics": metrics, "eval_seconds": 1.0}


def test_target_sentence_reports_when_the_target_was_reached():
    pts = [_point(0, 0, 0.1), _point(2.5, 100, 0.79), _point(5, 200, 0.81), _point(7.5, 300, 0.7)]
    assert lc.first_reaching(pts)["step"] == 200
    text = lc.target_sentence(pts, 7.5)
    assert "first reached 0.80 at the 5.00-minute evaluation (step 200: 0.810)" in text
    assert "at 2.50 min (step 100), had 0.790" in text
    assert "in 0 of the 1 later evaluations" in text


def test_target_sentence_when_missing_or_never_reached():
    assert "did **not** reach 0.80" in lc.target_sentence([_point(1, 10, 0.5)], 1)
    assert lc.target_sentence([_point(1, 10, None)], 1).startswith("shape+colour+position: n/a")


def test_curve_table_has_a_row_per_point():
    pts = [_point(0, 0, 0.1), _point(2.5, 100, 0.5)]
    md = lc.curve_table(pts)
    assert md.splitlines()[0].startswith("| train min | step |")
    assert "| 2.50 | 100 |" in md and len(md.splitlines()) == 4


def test_gpu_packing_table_reports_the_speed_up_and_what_did_not_fit():
    import gpu_packing as gp

    assert [gp.packed_runs(s) for s in (1, 0.5, 0.25, 0.125, 1 / 3)] == [1, 2, 4, 8, 3]
    row = {"failed": [], "error": None, "peak_gpu_mib": 2048.0}
    rows = [
        {**row, "gpus_per_run": 1, "concurrent": 1, "finished": 4, "wall_seconds": 400.0},
        {**row, "gpus_per_run": 0.25, "concurrent": 4, "finished": 4, "wall_seconds": 160.0},
        {**row, "gpus_per_run": 0.125, "concurrent": 8, "finished": 2, "wall_seconds": 90.0,
         "failed": ["out of memory"]},
    ]  # fmt: skip
    lines = gp.table(rows).splitlines()
    assert lines[2].split(" | ")[1:6] == ["1", "4", "yes", "6.67", "1.00"]
    assert lines[3].split(" | ")[1:6] == ["4", "4", "yes", "2.67", "2.50"]
    assert "no (a run failed)" in lines[4] and "| n/a |" in lines[4]  # no speed-up claimed


def test_sample_strip_reads_run_labels_and_refuses_a_folder_that_is_no_run(tmp_path, capsys):
    import sample_strip as ss

    assert ss.parse_run("runs/a=GR-GAN, 30 min") == (Path("runs/a"), "GR-GAN, 30 min")
    assert ss.parse_run("runs/b") == (Path("runs/b"), "b")
    assert ss.main([f"{tmp_path}=x", "--out", str(tmp_path / "o.png")]) == 2
    assert "not a run folder" in capsys.readouterr().err
    assert not (tmp_path / "o.png").exists()
