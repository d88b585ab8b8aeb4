"""Bad data files, the way operators deliver them, through the reading path of `retrain`.

Each case is a small real sample of the shipped survey or postings file,
spoiled one way. A file that cannot be read at all fails with a message
naming what is wrong (and the line, where there is one); a file that can be
read has its bad rows quarantined, each naming its line and the file's own
column. The counts always add up, and every good row is accepted: the
accepted rows plus the quarantine file give back the delivered file exactly.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest

from salarymodel.data.reading import SourceFormatError, read_csv
from salarymodel.retraining.intake import NewData, read_new_file

SAMPLE = 400


@pytest.fixture()
def survey(aijobs_raw) -> pd.DataFrame:
    return aijobs_raw.sample(SAMPLE, random_state=11).reset_index(drop=True)


def _read(path: Path, settings, sources, source: str | None = None) -> NewData:
    return read_new_file(path, settings, sources, source, quarantine_dir=path.parent / "quarantine")


def _quarantine(new: NewData) -> pd.DataFrame:
    assert new.prepared.quarantine_file is not None
    return pd.read_csv(new.prepared.quarantine_file, dtype=str, keep_default_na=False)


def _reasons(new: NewData) -> dict[int, str]:
    table = new.prepared.validation.quarantined
    return dict(zip(table["row_number"].astype(int), table["reason"], strict=True))


def _assert_nothing_lost(new: NewData, delivered: pd.DataFrame, bad_lines: set[int]) -> None:
    """Counts add up, exactly the bad lines are quarantined, and accepted + quarantined
    rows are the delivered file, cell for cell."""
    counts = new.prepared.counts
    assert counts.rows_in == len(delivered) == counts.kept + counts.quarantined
    assert set(_reasons(new)) == bad_lines
    expected_good = [line for line in range(2, len(delivered) + 2) if line not in bad_lines]
    assert new.prepared.validation.kept["row_number"].astype(int).tolist() == expected_good
    quarantined = _quarantine(new)
    assert quarantined["line"].astype(int).tolist() == sorted(bad_lines)
    parts = [new.accepted_raw, quarantined.drop(columns=["line", "reason"])]
    back = pd.concat(parts).fillna("")
    back.index = [*(line - 2 for line in expected_good), *(line - 2 for line in sorted(bad_lines))]
    pd.testing.assert_frame_equal(back.sort_index(), delivered.fillna(""), check_dtype=False)


def test_bytes_that_are_not_utf8_quarantine_their_rows_naming_line_and_column(
    survey, settings, sources, tmp_path
) -> None:
    spoiled = survey.copy()
    spoiled.loc[3, "job_title"] = "Data Scientist Zürich"
    spoiled.loc[40, "employee_residence"] = "Österreich"
    path = tmp_path / "latin1.csv"
    spoiled.to_csv(path, index=False, encoding="latin-1")  # what an old spreadsheet saves
    new = _read(path, settings, sources)
    reasons = _reasons(new)
    assert reasons[5].startswith("job_title = 'Data Scientist Z\ufffdrich': not UTF-8 text")
    assert reasons[42].startswith("employee_residence = '\ufffdsterreich': not UTF-8 text")
    assert "re-save the file as UTF-8" in reasons[5]
    delivered = read_csv(path)  # as read: the undecodable bytes are U+FFFD
    _assert_nothing_lost(new, delivered, {5, 42})


@pytest.mark.parametrize(
    ("write", "why"),
    [
        (lambda frame, path: frame.to_csv(path, index=False, encoding="utf-16"), "UTF-16 text"),
        (
            lambda frame, path: path.write_bytes(gzip.compress(frame.to_csv(index=False).encode())),
            r"gzip-compressed data; name the file \*\.csv\.gz",
        ),
        (lambda frame, path: path.write_bytes(b"PK\x03\x04" + bytes(200)), "a ZIP archive"),
        (lambda frame, path: path.write_bytes(b"job_title\x00\x01\x02"), "binary data"),
    ],
)
def test_files_that_are_not_csv_text_fail_saying_what_they_are(
    survey, settings, sources, tmp_path, write, why
) -> None:
    path = tmp_path / "file.csv"
    write(survey, path)
    with pytest.raises(SourceFormatError, match=why):
        _read(path, settings, sources)


def test_a_byte_order_mark_is_not_data(survey, settings, sources, tmp_path) -> None:
    path = tmp_path / "excel.csv"
    survey.to_csv(path, index=False, encoding="utf-8-sig")  # Excel's "CSV UTF-8"
    new = _read(path, settings, sources)
    assert new.source == "aijobs" and new.prepared.counts.kept == SAMPLE


def test_missing_columns_are_named(survey, settings, sources, tmp_path) -> None:
    path = tmp_path / "no_salary.csv"
    survey.drop(columns=["salary_in_usd"]).to_csv(path, index=False)
    # Detected: the survey's other columns say what the file is meant to be.
    with pytest.raises(SourceFormatError, match=r"look like source 'aijobs'.*\['salary_in_usd'\]"):
        _read(path, settings, sources)
    with pytest.raises(SourceFormatError, match=r"missing columns \['salary_in_usd'\]"):
        _read(path, settings, sources, source="aijobs")


def test_bad_salaries_are_quarantined_naming_line_and_column(
    survey, settings, sources, tmp_path
) -> None:
    spoiled = survey.copy()
    spoiled.loc[0, "salary_in_usd"] = "$120,000"
    spoiled.loc[1, "salary_in_usd"] = "-85000"
    spoiled.loc[2, "salary_in_usd"] = "1200"  # monthly pay in a yearly column
    spoiled.loc[3, "salary_in_usd"] = "90000000"
    spoiled.loc[4, "salary_in_usd"] = None
    path = tmp_path / "salaries.csv"
    spoiled.to_csv(path, index=False)
    new = _read(path, settings, sources)
    reasons = _reasons(new)
    assert reasons[2] == "salary_in_usd = '$120,000': not a number"
    assert reasons[3].startswith("salary_in_usd = -85000: below the configured minimum of 5,000")
    assert reasons[4].startswith("salary_in_usd = 1200: below the configured minimum of 5,000")
    assert reasons[5].startswith("salary_in_usd = 90000000: above the configured maximum")
    assert reasons[6] == "salary_in_usd: missing"
    _assert_nothing_lost(new, read_csv(path), {2, 3, 4, 5, 6})
    assert new.prepared.counts.reasons == {
        "salary_in_usd: not a number": 1,
        "salary_in_usd: below the configured minimum of 5,000 USD a year "
        "(validation.salary_usd_min)": 2,
        "salary_in_usd: above the configured maximum of 5,000,000 USD a year "
        "(validation.salary_usd_max)": 1,
        "salary_in_usd: missing": 1,
    }


def test_salary_bounds_come_from_the_configuration(survey, settings, sources, tmp_path) -> None:
    path = tmp_path / "survey.csv"
    survey.to_csv(path, index=False)
    salaries = survey["salary_in_usd"].astype(float)
    floor = float(salaries.quantile(0.1))
    strict = settings.model_copy(
        update={"validation": settings.validation.model_copy(update={"salary_usd_min": floor})}
    )
    new = _read(path, strict, sources)
    below = {int(i) + 2 for i in survey.index[salaries < floor]}
    assert below and set(_reasons(new)) == below
    assert all(f"minimum of {floor:,.0f} USD" in r for r in _reasons(new).values())
    assert _read(path, settings, sources).prepared.counts.quarantined == 0


def test_a_repeated_header_line_is_quarantined_alone(survey, settings, sources, tmp_path) -> None:
    lines = survey.to_csv(index=False).splitlines()
    lines.insert(101, lines[0])  # two files pasted together: line 102 is a header again
    path = tmp_path / "pasted.csv"
    path.write_text("\n".join(lines) + "\n")
    new = _read(path, settings, sources)
    assert _reasons(new) == {102: "line: repeated header line"}
    _assert_nothing_lost(new, read_csv(path), {102})


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("", "the file is empty"),
        ("\n\n", "the file is empty"),
        ("work_year,job_title,salary_in_usd\n", "no data rows under the header"),
    ],
)
def test_empty_files_fail_clearly(settings, sources, tmp_path, content: str, why: str) -> None:
    path = tmp_path / "empty.csv"
    path.write_text(content)
    with pytest.raises(SourceFormatError, match=why):
        _read(path, settings, sources)


def test_broken_lines_are_named(survey, settings, sources, tmp_path) -> None:
    lines = survey.to_csv(index=False).splitlines()
    ragged = [*lines[:30], lines[30] + ",extra,fields", *lines[31:]]
    path = tmp_path / "ragged.csv"
    path.write_text("\n".join(ragged) + "\n")
    with pytest.raises(SourceFormatError, match="line 31: 13 fields where the header has 11"):
        _read(path, settings, sources)
    unclosed = [*lines[:30], lines[30].replace(",", ',"', 1), *lines[31:]]
    path.write_text("\n".join(unclosed) + "\n")
    with pytest.raises(SourceFormatError, match="line 31: a quoted value is never closed"):
        _read(path, settings, sources)


@pytest.mark.parametrize("spoiled", ["every", "first"])
def test_a_first_data_line_with_fields_past_the_header_is_refused(
    spoiled, survey, settings, sources, tmp_path
) -> None:
    # pandas once took the extra fields for row labels: every value moved one column
    # over (the title read as the residence) and the file scored without a word.
    lines = survey.head(20).to_csv(index=False).splitlines()
    rows = (
        [line + "," for line in lines[1:]] if spoiled == "every" else [lines[1] + ",", *lines[2:]]
    )
    path = tmp_path / "trailing.csv"
    path.write_text("\n".join([lines[0], *rows]) + "\n")
    with pytest.raises(
        SourceFormatError, match="first data line has 12 fields where the header has 11"
    ):
        read_csv(path)
    with pytest.raises(SourceFormatError, match="or one at the end of the line"):
        _read(path, settings, sources)
    # The same file without the stray comma reads whole, values in their columns.
    path.write_text("\n".join(lines) + "\n")
    read = read_csv(path)
    assert read["job_title"].tolist() == survey.head(20)["job_title"].tolist()


def test_a_header_naming_a_column_twice_is_refused(survey, settings, sources, tmp_path) -> None:
    # pandas renamed the second one "job_title.1", and which title was read went unsaid.
    rows = survey.head(20).copy()
    rows.insert(3, "job_title ", rows["job_title"].str.upper())  # the same name, padded
    path = tmp_path / "twice.csv"
    rows.to_csv(path, index=False)
    with pytest.raises(SourceFormatError, match="names 'job_title' twice \\(columns 4 and 5\\)"):
        _read(path, settings, sources)
    # A spreadsheet's blank columns are not names said twice.
    blank = survey.head(20).copy()
    blank[""] = ""
    blank[" "] = ""
    blank.to_csv(path, index=False)
    assert len(read_csv(path)) == 20


def test_every_kind_of_bad_row_at_once_loses_no_good_row(
    postings_raw, settings, sources, tmp_path
) -> None:
    """Postings this time: bad rows of several kinds among real ones."""
    sample = postings_raw.sample(300, random_state=5).reset_index(drop=True)
    spoiled = sample.copy()
    spoiled.loc[10, "salary_year_avg"] = "n/a"
    spoiled.loc[11, "salary_year_avg"] = "0"
    spoiled.loc[12, "job_title"] = "x" * 201
    spoiled.loc[13, "job_posted_date"] = "last tuesday"
    spoiled.loc[14] = list(spoiled.columns)  # a header line in the middle
    path = tmp_path / "postings.csv"
    spoiled.to_csv(path, index=False)
    new = _read(path, settings, sources)
    reasons = _reasons(new)
    assert new.source == "postings"
    assert reasons[12] == "salary_year_avg = 'n/a': not a number"
    assert reasons[13].startswith("salary_year_avg = 0: below the configured minimum")
    assert reasons[14].startswith("job_title = 'xxxx") and "at most 200 characters" in reasons[14]
    assert reasons[15] == "job_posted_date = 'last tuesday': not a date (expected YYYY-MM-DD)"
    assert reasons[16] == "line: repeated header line"
    _assert_nothing_lost(new, read_csv(path), {12, 13, 14, 15, 16})


def test_messages_name_the_line_an_editor_shows(survey, settings, sources, tmp_path) -> None:
    """Blank lines and a quoted title over two lines shift later rows' lines."""
    spoiled = survey.copy()
    spoiled.loc[5, "job_title"] = "Data\nScientist"  # quoted by the writer: row 7 spans 2 lines
    spoiled.loc[20, "salary_in_usd"] = "oops"  # row 22
    lines = spoiled.to_csv(index=False).splitlines()
    lines.insert(12, "")  # a blank line in the middle: pandas skips it
    path = tmp_path / "edited.csv"
    path.write_text("\n".join(lines) + "\n")
    physical = path.read_text().splitlines()
    expected = next(i + 1 for i, text in enumerate(physical) if "oops" in text)
    assert expected == 22 + 2  # one line for the title's break, one blank line
    new = _read(path, settings, sources)
    quarantined = new.prepared.validation.quarantined
    assert quarantined[["row_number", "line"]].values.tolist() == [[22, expected]]
    assert _quarantine(new)["line"].tolist() == [str(expected)]
    assert new.prepared.counts.kept == SAMPLE - 1
    assert new.prepared.validation.kept["job_title"].eq("Data\nScientist").sum() == 1
