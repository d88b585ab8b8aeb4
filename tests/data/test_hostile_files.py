"""Hostile files through the reading path: nothing crashes, nothing is held unbounded.

Skills cells are read by a bounded parser (never evaluated), every cell and
row has a length limit, a formula-like cell quarantines its row, and a file is
refused as soon as it passes a cap on its decompressed size or rows. The
cases are the corpus in tests/data/hostile/ (real rows, spoiled one way each);
the CLI is fuzzed with them in tests/workflows/test_hostile_cli.py.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pandas as pd
import pytest
from data.hostile import corpus

from salarymodel.data.csv_output import formula_mask, is_formula, neutralised, write_csv
from salarymodel.data.derivations import parse_skills
from salarymodel.data.reading import FileRefused, SourceFormatError, read_csv
from salarymodel.data.validation import FORMULA_PROBLEM
from salarymodel.retraining.intake import read_new_file
from salarymodel.vocabulary import MAX_SKILLS

SRC = Path(__file__).resolve().parents[2] / "src" / "salarymodel"


def _reasons(path: Path, settings, sources) -> dict[int, str]:
    new = read_new_file(path, settings, sources, quarantine_dir=None)  # no file written
    counts = new.prepared.counts
    assert counts.rows_in == counts.kept + counts.quarantined
    table = new.prepared.validation.quarantined
    return dict(zip(table["line"].astype(int), table["reason"], strict=True))


def test_no_eval_like_parsing_of_input_anywhere_in_the_package() -> None:
    offenders = [
        f"{path.name}:{number}"
        for path in SRC.rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"literal_eval\(|(?<![\w.])eval\(|\bexec\(|import ast\b", line)
    ]
    assert offenders == []


def test_skills_parser_reads_the_real_formats(settings) -> None:
    aliases = settings.features.skill_aliases
    assert parse_skills("['sql', 'python', 'power bi']", aliases, 2000) == [
        "sql",
        "python",
        "power bi",
    ]
    assert parse_skills('["c++", "k8s",]', aliases, 2000) == ["c++", "kubernetes"]
    assert parse_skills("python;sql", aliases, 2000) == ["python", "sql"]
    assert parse_skills("[]", aliases, 2000) == []
    assert parse_skills("['it\\'s']", aliases, 2000) == ["it's"]


@pytest.mark.parametrize(
    ("cell", "problem"),
    [
        (corpus.DEEP_NESTING, "more than 2,000"),
        (corpus.MINUS_RUN, "more than 2,000"),
        (corpus.PLUS_CHAIN, "more than 2,000"),
        ("[" * 1000, "does not end with ']'"),
        ("[" + "-" * 1000 + "1]", "not a list literal of quoted names"),
        ("[" + "1+" * 500 + "1]", "not a list literal of quoted names"),
        ("[['sql']]", "not a list literal of quoted names"),
        ("['sql' 'python']", "expected ','"),
        (str([f"s{i}" for i in range(MAX_SKILLS + 1)]), f"more than {MAX_SKILLS} names"),
        (";".join(f"s{i}" for i in range(MAX_SKILLS + 1)), f"more than {MAX_SKILLS} names"),
    ],
)
def test_skills_parser_refuses_hostile_cells_quickly(settings, cell: str, problem: str) -> None:
    started = time.perf_counter()
    with pytest.raises(ValueError, match=re.escape(problem)):
        parse_skills(cell, settings.features.skill_aliases, 2000)
    assert time.perf_counter() - started < 0.1
    # Without a length limit the parser is still linear and never recurses.
    with pytest.raises(ValueError):
        parse_skills(cell, settings.features.skill_aliases, None)


@pytest.mark.parametrize("name", ["skills_deep_nesting", "skills_minus_run", "skills_plus_chain"])
def test_a_hostile_skills_cell_quarantines_its_row(tmp_path, settings, sources, name) -> None:
    cell = {
        "skills_deep_nesting": corpus.DEEP_NESTING,
        "skills_minus_run": corpus.MINUS_RUN,
        "skills_plus_chain": corpus.PLUS_CHAIN,
    }[name]
    path = corpus.write_skills_case(tmp_path / "new.csv", cell, rows=30)
    reasons = _reasons(path, settings, sources)
    assert sorted(reasons) == list(range(2, 32))
    assert all("job_skills" in r and "(input_limits.max_cell_chars)" in r for r in reasons.values())


def test_cells_and_rows_over_their_limits_are_quarantined(tmp_path, settings, sources) -> None:
    limits = settings.input_limits
    survey = pd.read_csv(corpus.HERE / "salaries_1e12.csv", dtype=str, keep_default_na=False)
    survey["salary_in_usd"] = "150000"
    survey.loc[3, "job_title"] = "Data Scientist " * (limits.max_cell_chars // 15 + 1)
    filler = "x" * (limits.max_cell_chars - 10)
    extra = [f"note{i}" for i in range(limits.max_row_chars // len(filler) + 1)]
    for column in extra:
        survey[column] = ""
        survey.loc[7, column] = filler  # each cell within the cell limit, the row not
    survey.to_csv(tmp_path / "long.csv", index=False)
    reasons = _reasons(tmp_path / "long.csv", settings, sources)
    assert sorted(reasons) == [5, 9]
    assert reasons[5].startswith("job_title: ") and "max_cell_chars" in reasons[5]
    assert reasons[9].startswith("line: ") and "max_row_chars" in reasons[9]


def test_formula_titles_are_quarantined_naming_the_cell(settings, sources) -> None:
    reasons = _reasons(corpus.HERE / "formulas.csv", settings, sources)
    assert sorted(reasons) == list(range(2, 195))  # the 193 formulas, lines 2-194
    # The value is shown as Python writes it: quoted with ' or " (the cmd formula holds ').
    shown = re.compile(r"job_title = ['\"]=.*: " + re.escape(FORMULA_PROBLEM) + "$")
    assert all(shown.match(reason) for reason in reasons.values())


def test_a_signed_number_is_not_a_formula_but_signed_text_is(tmp_path, settings, sources) -> None:
    survey = pd.read_csv(corpus.HERE / "salaries_1e12.csv", dtype=str, keep_default_na=False)
    survey["salary_in_usd"] = "+150000"  # a number with its sign: valid
    survey.loc[0, "salary_in_usd"] = "-150000"  # a number, below the minimum: not a formula
    survey.loc[1, "salary_in_usd"] = "-1+150000"  # a formula in a numeric column
    survey.loc[2, "company_location"] = "@SUM(1+1)"
    survey.loc[3, "job_title"] = "\tData Scientist"
    survey.loc[4, "job_title"] = "+Data Scientist"
    survey.to_csv(tmp_path / "signs.csv", index=False)
    reasons = _reasons(tmp_path / "signs.csv", settings, sources)
    assert sorted(reasons) == [2, 3, 4, 5, 6]
    assert "below the configured minimum" in reasons[2] and FORMULA_PROBLEM not in reasons[2]
    for line, column in ((3, "salary_in_usd"), (4, "company_location"), (5, "job_title")):
        assert reasons[line].startswith(f"{column} = ") and FORMULA_PROBLEM in reasons[line]
    assert FORMULA_PROBLEM in reasons[6]


def test_formula_test_follows_owasp_leads() -> None:
    for cell in ("=1+1", "+cmd", "-2+3", "@SUM(A1)", "\tx", "\rx", "-", "+"):
        assert is_formula(cell), cell
    for cell in ("-5", "+1.5e3", "-0.25", "1,000", "Data - Scientist", "", None, 5, "x=1"):
        assert not is_formula(cell), cell
    values = pd.Series(["=1", "-5", None, "ok", "-x"], dtype="string")
    assert formula_mask(values).tolist() == [True, False, False, False, True]


def test_every_written_csv_neutralises_formulas(tmp_path) -> None:
    frame = pd.DataFrame(
        {
            "job_title": ["=cmd|' /C calc'!A0", "Data Scientist", "-2+3", None],
            "salary": [-5.0, 1.0, 2.0, 3.0],
            "=HYPERLINK(1)": ["@x", "+1", "-1", "\rx"],
        }
    )
    written = write_csv(frame, tmp_path / "out.csv", index=False)
    back = pd.read_csv(written, dtype=str, keep_default_na=False)
    assert back.columns.tolist() == ["job_title", "salary", "'=HYPERLINK(1)"]
    assert back["job_title"].tolist() == ["'=cmd|' /C calc'!A0", "Data Scientist", "'-2+3", ""]
    assert back["salary"].tolist() == ["-5.0", "1.0", "2.0", "3.0"]  # numbers stay numbers
    assert back["'=HYPERLINK(1)"].tolist() == ["'@x", "+1", "-1", "'\rx"]
    assert neutralised(frame)["job_title"][0] == "'=cmd|' /C calc'!A0"
    assert frame["job_title"][0] == "=cmd|' /C calc'!A0"  # the caller's frame is untouched


def test_no_module_writes_a_csv_past_the_writer() -> None:
    writers = [
        f"{path.name}:{number}"
        for path in SRC.rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if ".to_csv(" in line and path.name != "csv_output.py"
    ]
    assert writers == []


def test_the_quarantine_file_neutralises_the_formulas_it_keeps(tmp_path, settings, sources):
    path = corpus.HERE / "formulas.csv"
    new = read_new_file(path, settings, sources, quarantine_dir=tmp_path)
    table = pd.read_csv(new.prepared.quarantine_file, dtype=str, keep_default_na=False)
    assert len(table) == 193
    assert table["job_title"].str.startswith("'=").all()


# ----- caps on what a file expands to ------------------------------------------------------
def _limits(settings, **caps: int):
    return settings.input_limits.model_copy(update=caps)


def test_a_gzip_bomb_is_refused_at_the_byte_cap(tmp_path, settings) -> None:
    bomb = corpus.write_bomb(tmp_path / "bomb.csv.gz", 64 << 20)
    assert bomb.stat().st_size < 1 << 20  # a small file on disk
    with pytest.raises(FileRefused, match=r"more than 4,194,304 bytes .*max_file_bytes"):
        read_csv(bomb, _limits(settings, max_file_bytes=4 << 20))


def test_rows_past_the_row_cap_refuse_the_file(settings) -> None:
    path = corpus.HERE / "duplicates.csv.gz"
    with pytest.raises(FileRefused, match=r"more than 20,000 rows \(input_limits.max_rows\)"):
        read_csv(path, _limits(settings, max_rows=20_000))
    assert len(read_csv(path, _limits(settings, max_rows=corpus.DUPLICATES))) == corpus.DUPLICATES


def test_the_shipped_files_are_within_the_configured_caps(settings) -> None:
    for path in (corpus.SURVEY, corpus.POSTINGS):
        assert len(read_csv(path, settings.input_limits)) > 20_000


def test_a_nul_byte_past_the_first_bytes_refuses_the_file(settings) -> None:
    with pytest.raises(SourceFormatError, match=r"binary data \(a NUL byte at byte [\d,]+\)"):
        read_csv(corpus.HERE / "nul_bytes.csv", settings.input_limits)


def test_damaged_gzip_is_a_format_error(tmp_path, settings) -> None:
    whole = (corpus.HERE / "duplicates.csv.gz").read_bytes()
    (tmp_path / "cut.csv.gz").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(SourceFormatError, match="compressed data is damaged"):
        read_csv(tmp_path / "cut.csv.gz", settings.input_limits)


def test_latin1_bytes_in_a_utf8_file_quarantine_their_rows(settings, sources) -> None:
    reasons = _reasons(corpus.HERE / "mixed_encoding.csv", settings, sources)
    assert len(reasons) == 100
    assert all(r.startswith("job_title = ") and "not UTF-8" in r for r in reasons.values())


def test_trillion_salaries_are_quarantined(settings, sources) -> None:
    reasons = _reasons(corpus.HERE / "salaries_1e12.csv", settings, sources)
    assert len(reasons) == 200
    assert all("above the configured maximum" in r for r in reasons.values())


def test_a_write_that_fails_leaves_the_earlier_file_whole(aijobs_raw, tmp_path, monkeypatch):
    # A full disk mid-write once left the output cut short, an earlier good file lost.
    rows = aijobs_raw.sample(200, random_state=14).reset_index(drop=True)
    path = tmp_path / "scored.csv"
    write_csv(rows, path, index=False)
    before = path.read_bytes()
    real_to_csv = pd.DataFrame.to_csv

    def half_then_full(frame, target, **options):  # writes some rows, then the disk is full
        real_to_csv(frame.head(50), target, **options)
        raise OSError(28, "No space left on device", str(target))

    monkeypatch.setattr(pd.DataFrame, "to_csv", half_then_full)
    with pytest.raises(OSError, match="No space left on device") as failed:
        write_csv(rows.head(100), path, index=False)
    assert failed.value.filename == str(path)  # the file asked for, not the partial one
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["scored.csv"]  # no partial file left
    monkeypatch.undo()
    # Written whole, it replaces the earlier file; a .gz name still gets gzip.
    write_csv(rows.head(100), path, index=False)
    assert len(pd.read_csv(path)) == 100
    write_csv(rows.head(10), tmp_path / "rows.csv.gz", index=False)
    assert (tmp_path / "rows.csv.gz").read_bytes()[:2] == b"\x1f\x8b"
