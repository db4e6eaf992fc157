"""Every file of a run folder is read through t2i_stages.run_files: damage is one line naming it."""

from __future__ import annotations

import pytest

from t2i_stages.errors import T2IError
from t2i_stages.run_files import read_json, read_yaml
from t2i_stages.training.report import write_run_report


@pytest.mark.parametrize(
    "content, expected",
    [
        (b'{"results": ', "cannot be read as JSON"),
        (b"\xff\xfe\x00binary", "cannot be read as JSON"),
        (b"[1, 2]", "holds a list, not a dict"),
    ],
)
def test_a_damaged_json_file_is_one_line_naming_it(tmp_path, content, expected):
    path = tmp_path / "metrics.json"
    path.write_bytes(content)
    with pytest.raises(T2IError) as info:
        read_json(path)
    (line,) = str(info.value).splitlines()
    assert line.startswith(f"{path}: ") and expected in line


def test_a_missing_or_damaged_yaml_file_names_it(tmp_path):
    with pytest.raises(T2IError, match="missing from the run folder"):
        read_yaml(tmp_path / "recipe.changes.yaml")
    bad = tmp_path / "recipe.changes.yaml"
    bad.write_text("- [unclosed\n")
    with pytest.raises(T2IError, match=r"recipe.changes.yaml: cannot be read as YAML"):
        read_yaml(bad)


def test_the_run_report_names_a_damaged_metrics_file(tmp_path):
    (tmp_path / "metrics.json").write_text("{truncated")
    with pytest.raises(T2IError, match=r"metrics.json: cannot be read as JSON"):
        write_run_report(tmp_path, "run")
    assert not (tmp_path / "report.html").exists()
