"""Source adapters: raw CSV files to canonical job records.

An adapter is a block in ``configs/sources.yaml``; this module reads a file,
drops the leaky columns, and fills each canonical field from its configured
column(s), value map and rule. Every output row keeps ``row_number`` (its
row, header = 1), ``line`` (where it starts in the file, which errors name)
and the ids that profiling uses to find repeats (``repeat_id``) and CV groups
(``group_id``).
"""

from __future__ import annotations

import bz2
import csv
import dataclasses
import gzip
import io
import lzma
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TextIO

import numpy as np
import pandas as pd

from salarymodel.config.data import InputLimitsConfig
from salarymodel.config.settings import Settings, load_settings, resolve_path
from salarymodel.config.sources import CANONICAL_FIELDS, FieldMapping, SourceConfig, SourcesConfig
from salarymodel.data.derivations import RULES, RuleContext
from salarymodel.data.validation import UNDECODABLE, Reason, cell_problems

CANONICAL_SOURCE = "canonical"


class SourceFormatError(ValueError):
    """A file that cannot be mapped at all (wrong columns, not a CSV, empty)."""


@dataclass(frozen=True)
class AdaptedSource:
    """Canonical records of one file, the raw frame they came from (leaky columns
    dropped), the file column(s) behind each canonical field, and the problems
    found in the file itself, by ``row_number``."""

    name: str
    records: pd.DataFrame
    raw: pd.DataFrame
    labels: dict[str, str] = dataclasses.field(default_factory=dict)
    file_problems: dict[int, list[Reason]] = dataclasses.field(default_factory=dict)


# What a file that is not CSV text starts with, and what to do about it.
_NOT_TEXT = (
    (b"\x1f\x8b", "gzip-compressed data; name the file *.csv.gz"),
    (b"PK\x03\x04", "a ZIP archive (an Excel workbook?); export it as CSV UTF-8"),
    (b"\xff\xfe", "UTF-16 text; re-save the file as UTF-8"),
    (b"\xfe\xff", "UTF-16 text; re-save the file as UTF-8"),
)
_PARSER_FIELDS = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
_PARSER_QUOTE = re.compile(r"EOF inside string starting at row (\d+)")


_OPENERS: dict[str, Callable[..., IO[Any]]] = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
# What a broken compressed stream raises (a truncated gzip: EOFError).
_STREAM_ERRORS = (EOFError, OSError, zlib.error, lzma.LZMAError)
_CHUNK_ROWS = 100_000  # rows parsed at a time: the row cap is checked between chunks


class FileRefused(SourceFormatError):
    """A file over one of the configured ``input_limits``: refused before it is held."""


def _open_bytes(path: Path) -> IO[bytes]:
    """The file's bytes, decompressed as a stream when its name says so."""
    return _OPENERS.get(path.suffix.lower(), open)(path, "rb")


def _sniff(path: Path) -> str | None:
    """Why the file is not CSV text, judged from its first bytes (None: it looks like text)."""
    try:
        with _open_bytes(path) as handle:
            head = handle.read(4096)
    except _STREAM_ERRORS as error:
        return f"named {path.suffix} but not {path.suffix[1:]} data ({error})"
    for magic, why in _NOT_TEXT:
        if head.startswith(magic):
            return why
    return "binary data (NUL bytes), not CSV text" if b"\x00" in head else None


class _CappedStream(io.RawIOBase):
    """Bytes from ``stream``, refusing the file once more than ``limit`` have come out
    of it, or a NUL byte has (CSV text never holds one).

    The cap is on what the stream yields, so a small gzip that expands to
    gigabytes is stopped after ``limit`` bytes, whatever its size on disk.
    """

    def __init__(self, stream: IO[bytes], limit: int, path: Path) -> None:
        super().__init__()
        self._stream, self._limit, self._path, self.read_bytes = stream, limit, path, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._stream.read(len(view))
        if b"\x00" in data:
            offset = self.read_bytes + data.index(b"\x00")
            raise FileRefused(
                f"{self._path}: binary data (a NUL byte at byte {offset:,}), not CSV text"
            )
        self.read_bytes += len(data)
        if self.read_bytes > self._limit:
            raise FileRefused(
                f"{self._path}: refused: more than {self._limit:,} bytes of text "
                "(input_limits.max_file_bytes; decompressed, if compressed)"
            )
        view[: len(data)] = data
        return len(data)


def _parser_message(error: pd.errors.ParserError) -> str:
    text = str(error)
    if found := _PARSER_FIELDS.search(text):
        header, line, seen = found.groups()
        return (
            f"line {line}: {seen} fields where the header has {header} "
            "(a comma inside a value that is not quoted?)"
        )
    if found := _PARSER_QUOTE.search(text):
        return f"line {int(found.group(1)) + 1}: a quoted value is never closed"
    return f"not a readable CSV: {text.strip()}"


def read_csv(path: Path, limits: InputLimitsConfig | None = None) -> pd.DataFrame:
    """Read a CSV (optionally .gz, .bz2, .xz) as text; every value stays a string until
    validated.

    ``keep_default_na=False`` matters: Namibia's ISO code "NA" is data, not a
    missing value. Only empty cells are missing. Bytes that are not UTF-8 do
    not fail the file: they are read as U+FFFD (pyarrow strings cannot hold
    Python's escaped bytes), and ``adapt`` sets their rows aside naming line
    and column. A file that is not CSV text at all (compressed, a workbook,
    UTF-16, NUL bytes) fails, saying what it is.

    The file is read as a stream, in chunks of rows, within ``limits``
    (``input_limits`` in the configuration when None): more text than
    ``max_file_bytes`` or more rows than ``max_rows`` refuses it
    (``FileRefused``) as soon as the cap is passed, before the rest is read.
    """
    limits = limits or load_settings().input_limits
    why = _sniff(path)
    if why is not None:
        raise SourceFormatError(f"{path}: {why}")
    chunks: list[pd.DataFrame] = []
    rows = 0
    try:
        with _open_bytes(path) as stream:
            capped = io.BufferedReader(_CappedStream(stream, limits.max_file_bytes, path))
            # A byte-order mark (Excel's "CSV UTF-8") is not data.
            text = io.TextIOWrapper(capped, encoding="utf-8-sig", errors="replace", newline="")
            reader = pd.read_csv(
                text, dtype=str, keep_default_na=False, na_values=[""], chunksize=_CHUNK_ROWS
            )
            with reader:
                for chunk in reader:
                    rows += len(chunk)
                    if rows > limits.max_rows:
                        raise FileRefused(
                            f"{path}: refused: more than {limits.max_rows:,} rows "
                            "(input_limits.max_rows)"
                        )
                    chunks.append(chunk)
    except pd.errors.EmptyDataError as error:
        raise SourceFormatError(f"{path}: the file is empty (no header line)") from error
    except pd.errors.ParserError as error:
        raise SourceFormatError(f"{path}: {_parser_message(error)}") from error
    except _STREAM_ERRORS as error:
        raise SourceFormatError(f"{path}: the compressed data is damaged ({error})") from error
    frame = pd.concat(chunks) if len(chunks) > 1 else chunks[0]
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def _open_text(path: Path) -> TextIO:
    return io.TextIOWrapper(_open_bytes(path), encoding="utf-8-sig", errors="replace", newline="")


def record_lines(path: Path, rows: int) -> np.ndarray | None:
    """The line of the file each record starts on, when that is not simply its row + 1.

    Blank lines (skipped on read) and quoted values spanning lines shift a
    record's line away from its row number; messages must name the line a
    person finds in an editor. None when every record is one line (the usual
    case, found by counting newlines) or the file cannot be re-read alike.
    """
    with _open_text(path) as handle:
        newlines = sum(chunk.count("\n") for chunk in iter(lambda: handle.read(1 << 20), ""))
    if newlines <= rows + 1:
        return None
    starts: list[int] = []
    with _open_text(path) as handle:
        reader = csv.reader(handle)
        try:
            next(reader, None)  # the header
            previous = reader.line_num
            for row in reader:
                if row:  # pandas skips blank lines too
                    starts.append(previous + 1)
                previous = reader.line_num
        except csv.Error:  # a field past csv's size limit: pandas read it, lines stay rows
            return None
    return np.array(starts) if len(starts) == rows else None


def _row_ids(raw: pd.DataFrame, columns: list[str]) -> pd.Series:
    """A stable hash of the given columns per row (the row number when no columns)."""
    if not columns:
        return pd.Series([f"row{i}" for i in range(len(raw))], index=raw.index)
    # hash_pandas_object uses a fixed key, so ids are stable across runs.
    hashes = pd.util.hash_pandas_object(raw[columns].fillna(""), index=False)
    return hashes.map("{:016x}".format)


def _required_columns(config: SourceConfig) -> list[str]:
    needed: list[str] = []
    for mapping in config.fields.values():
        if not mapping.optional:
            needed.extend(mapping.input_columns)
    return needed


def _field_values(raw: pd.DataFrame, mapping: FieldMapping, ctx: RuleContext) -> pd.Series | None:
    columns = mapping.input_columns
    if any(c not in raw.columns for c in columns):
        return None  # optional field the file does not carry: stays missing
    inputs = [raw[c] for c in columns]
    values = RULES[mapping.rule](inputs, ctx) if mapping.rule else inputs[0].astype(object)
    if mapping.values:
        recode = mapping.values
        values = values.map(lambda v: recode.get(str(v), v) if v is not None else None)
    return values.astype(object).where(values.notna(), None)


def field_labels(config: SourceConfig) -> dict[str, str]:
    """Each canonical field named by the file column(s) it is read from (what a user can fix)."""
    labels = {}
    for name, mapping in config.fields.items():
        columns = mapping.input_columns
        labels[name] = columns[0] if len(columns) == 1 else f"{name} (from {', '.join(columns)})"
    return labels


def file_problems(raw: pd.DataFrame, limits: InputLimitsConfig) -> dict[int, list[Reason]]:
    """Rows the file itself spoils, by ``row_number``: a repeated header line, bytes
    that are not UTF-8, and (``validation.cell_problems``) formula-like cells, cells
    and rows over ``limits``.

    A header line pasted in again (files concatenated by hand) has at least
    half of its cells, and two or more, equal to their own column names.
    """
    problems: dict[int, list[Reason]] = {}
    if raw.empty:
        return problems
    row_numbers = raw.index.to_numpy() + 2  # as ``adapt`` numbers records
    text = raw.astype("string")
    names = [c.strip().lower() for c in raw.columns]
    own_name = pd.concat(
        [text[c].str.strip().str.lower().eq(n) for c, n in zip(raw.columns, names, strict=True)],
        axis=1,
    ).fillna(False)
    header = (own_name.sum(axis=1) >= max(2, len(names) / 2)).to_numpy()
    for row in row_numbers[header]:
        problems[int(row)] = [Reason("line", "repeated header line")]
    undecodable_text = "not UTF-8 text (shown as \ufffd); re-save the file as UTF-8"
    for column in raw.columns:
        undecodable = text[column].str.contains(UNDECODABLE, regex=False).fillna(False).to_numpy()
        spoiled = undecodable & ~header  # a header line's only reason is being one
        for row, value in zip(row_numbers[spoiled], raw[column][spoiled], strict=True):
            problems.setdefault(int(row), []).append(Reason(column, undecodable_text, value))
    for row, reasons in cell_problems(raw, limits).items():
        if row not in problems:  # a header line or undecodable bytes say enough
            problems[row] = reasons
    return problems


def adapt(
    raw: pd.DataFrame,
    name: str,
    config: SourceConfig,
    settings: Settings,
    lines: np.ndarray | None = None,
) -> AdaptedSource:
    """Map a raw frame into canonical records with the source's configured adapter.

    Records keep ``row_number`` (row + 1: the key back to ``raw``, whose index
    is row - 1) and ``line``, the line in the file that messages name
    (``lines`` from :func:`record_lines`; the row number when not given).
    """
    unknown_rules = {m.rule for m in config.fields.values() if m.rule and m.rule not in RULES}
    if unknown_rules:
        raise SourceFormatError(f"source {name!r}: unknown rules {sorted(unknown_rules)}")
    missing = [c for c in _required_columns(config) if c not in raw.columns]
    if missing:
        raise SourceFormatError(
            f"source {name!r}: missing columns {missing}; the file has {list(raw.columns)}"
        )
    problems = file_problems(raw, settings.input_limits)
    # Ids come from the full row (leaky columns included: a repeat is a repeat),
    # features never see the leaky columns.
    repeat_columns = [c for c in config.repeat_key if c in raw.columns]
    repeat_ids = _row_ids(raw, repeat_columns)
    group_columns = [c for c in (config.group_key or config.repeat_key) if c in raw.columns]
    group_ids = name + ":" + _row_ids(raw, group_columns)
    raw = raw.drop(columns=[c for c in config.leaky_columns if c in raw.columns])
    ctx = RuleContext(settings)
    records = pd.DataFrame(index=raw.index)
    for field in CANONICAL_FIELDS:
        mapping = config.fields.get(field)
        values = _field_values(raw, mapping, ctx) if mapping else None
        records[field] = values if values is not None else pd.Series(None, index=raw.index)
    if config.fields.get("source") is None or records["source"].isna().all():
        records["source"] = name
    else:
        records["source"] = records["source"].fillna(name)
    if not repeat_columns:
        # No repeat key (e.g. the canonical format): a repeat is the same
        # canonical record, so ids stay stable across files (retrain merges them).
        content = records[list(CANONICAL_FIELDS)].astype(str)
        repeat_ids = _row_ids(content, list(content.columns))
        group_ids = name + ":" + repeat_ids
    records["row_number"] = raw.index.to_numpy() + 2
    records["line"] = records["row_number"] if lines is None else lines
    records["repeat_id"] = repeat_ids.to_numpy()
    records["group_id"] = group_ids.to_numpy()
    return AdaptedSource(
        name=name,
        records=records.reset_index(drop=True),
        raw=raw,
        labels=field_labels(config),
        file_problems=problems,
    )


def load_source(
    name: str,
    sources: SourcesConfig,
    settings: Settings,
    path: Path | None = None,
) -> AdaptedSource:
    """Read and adapt one configured source (its shipped file unless ``path`` is given)."""
    if name not in sources.sources:
        raise SourceFormatError(f"unknown source {name!r}; configured: {sorted(sources.sources)}")
    config = sources.sources[name]
    file = path or (resolve_path(config.file) if config.file else None)
    if file is None:
        raise SourceFormatError(f"source {name!r} has no file; pass one")
    raw = read_csv(file)
    return adapt(raw, name, config, settings, record_lines(file, len(raw)))


def _known_columns(config: SourceConfig) -> set[str]:
    """Every column a source's adapter reads or names."""
    known = {c for mapping in config.fields.values() for c in mapping.input_columns}
    named = [*config.leaky_columns, *config.repeat_key, *(config.group_key or [])]
    return known | set(named) | set(config.raw_feature_columns)


def detect_source(columns: list[str], sources: SourcesConfig) -> str:
    """The configured source whose required columns a file has.

    The adapter that needs the most columns is tried first, so the loose
    canonical format (only ``job_title`` required) is the last resort. A file
    that carries columns only another source knows (a survey file with its
    salary column missing, say) is not taken for the loose format: the error
    names the closest source and the columns it lacks.
    """
    ordered = sorted(
        sources.sources.items(), key=lambda item: len(_required_columns(item[1])), reverse=True
    )
    for position, (name, config) in enumerate(ordered):
        if not all(c in columns for c in _required_columns(config)):
            continue
        stricter = [(n, c) for n, c in ordered[:position] if len(_required_columns(c))]
        foreign = set(columns) - _known_columns(config)
        closest = max(
            stricter, key=lambda item: len(foreign & _known_columns(item[1])), default=None
        )
        if closest is None or not foreign & _known_columns(closest[1]):
            return name
        missing = [c for c in _required_columns(closest[1]) if c not in columns]
        raise SourceFormatError(
            f"the columns look like source {closest[0]!r}, but it needs {missing}, which the file "
            f"lacks; the file has {columns} (pass --source to read it as another format)"
        )
    raise SourceFormatError(
        f"no configured source matches the columns {columns}; "
        f"pass --source (one of {sorted(sources.sources)}) or add an adapter"
    )
