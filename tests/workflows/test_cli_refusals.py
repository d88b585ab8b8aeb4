"""The CLI says no before its work: a bad --output, a --sample below 1, a file of no usable rows.

Each refusal comes before the registry, so the project here has no store (no
model trained): were a check late or missing, the command would get as far as
the registry and name the missing store instead, or fail as ``unexpected``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from salarymodel.cli.app import app
from salarymodel.cli.outputs import check_output

runner = CliRunner()
PROC = Path("/proc")


def _refused(args: list[str]) -> str:
    result = runner.invoke(app, args)
    said = " ".join(result.output.split())  # Rich may wrap a long line
    assert result.exit_code == 2, said
    assert "unexpected" not in said and "tracking store" not in said, said
    return said


def _commands(survey: Path) -> dict[str, list[str]]:
    return {
        "predict": ["predict", "--input", str(survey)],
        "explain": ["explain"],
        "report": ["report"],
        "drift": ["drift", "--data", str(survey)],
    }


@pytest.fixture()
def survey(project, aijobs_raw) -> Path:
    path = project / "survey.csv"
    aijobs_raw.sample(40, random_state=11).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("command", ["predict", "explain", "report", "drift"])
def test_an_output_under_a_file_is_refused_naming_it(project, survey, command) -> None:
    blocker = project / "notes.txt"
    blocker.write_text("a file where a folder was meant\n")
    output = blocker / "out" / ("scored.csv" if command == "predict" else "")
    said = _refused([*_commands(survey)[command], "--output", str(output)])
    assert f"--output {output}: {blocker} is a file, not a folder" in said
    assert blocker.read_text() == "a file where a folder was meant\n"


@pytest.mark.parametrize("command", ["explain", "report", "drift"])
def test_an_existing_file_as_the_output_folder_is_refused(project, survey, command) -> None:
    output = project / "notes.txt"
    output.write_text("kept\n")
    said = _refused([*_commands(survey)[command], "--output", str(output)])
    assert f"--output {output}: is a file, not a folder" in said
    assert output.read_text() == "kept\n" and not (project / "models").exists()


@pytest.mark.skipif(not PROC.is_dir(), reason="no /proc: a folder no file can be made in")
@pytest.mark.parametrize("command", ["predict", "explain", "report", "drift"])
def test_an_output_where_no_file_can_be_made_is_refused(project, survey, command) -> None:
    output = PROC / "salarymodel-out"
    said = _refused([*_commands(survey)[command], "--output", str(output)])
    assert f"--output {output}: cannot write in /proc: " in said


def test_the_check_creates_nothing_and_keeps_an_existing_file(project, survey) -> None:
    before = survey.read_bytes()
    assert check_output(survey, "file") == survey  # opened for appending: not truncated
    assert survey.read_bytes() == before
    missing = project / "new" / "deeper"
    assert check_output(missing / "scored.csv", "file") == missing / "scored.csv"
    assert check_output(missing, "folder") == missing
    assert not (project / "new").exists()  # the command makes it when it writes
    assert sorted(p.name for p in project.iterdir()) == ["configs", "data", "survey.csv"]


@pytest.mark.parametrize(
    ("command", "value"), [("train", "0"), ("train", "-5"), ("retrain", "0"), ("retrain", "-1")]
)
def test_a_sample_below_one_is_refused_naming_the_option(survey, command, value) -> None:
    extra = ["--data", str(survey)] if command == "retrain" else []
    said = _refused([command, *extra, "--sample", value])
    assert "Invalid value for '--sample'" in said


def test_drift_refuses_a_file_whose_rows_are_all_set_aside(project, aijobs_raw) -> None:
    rows = aijobs_raw.sample(30, random_state=12)
    rows["salary_in_usd"] = "nan"  # the tester's file: every pay cell unreadable
    path = project / "allbad.csv"
    rows.to_csv(path, index=False)
    said = _refused(["drift", "--data", str(path), "--output", str(project / "drift"), "--json"])
    quarantine = project / "drift" / "new.aijobs.quarantine.csv"
    assert f"{path}: no usable rows: all 30 were set aside; " in said
    assert f"quarantined rows with their reasons: {quarantine}" in said
    assert quarantine.exists() and not (project / "drift" / "drift.json").exists()
