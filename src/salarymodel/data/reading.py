"""Reading a source file within the input limits: CSV text only, capped bytes and rows.

``read_csv`` streams a (possibly compressed) file in chunks of rows and refuses it
(``FileRefused``) as soon as it passes ``input_limits``; ``record_lines`` finds the
line each record starts on. ``data.sources`` maps what is read to canonical records.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import lzma
import re
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, TextIO

import numpy as np
import pandas as pd

from salarymodel.config.data import InputLimitsConfig
from salarymodel.config.settings import load_settings


class SourceFormatError(ValueError):
    """A file that cannot be mapped at all (wrong columns, not a CSV, empty)."""


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


_EXTRA_FIELDS_HINT = "(a comma inside a value that is not quoted, or one at the end of the line?)"


def _refuse_extra_first_fields(chunk: pd.DataFrame, path: Path) -> None:
    """A first data line with more fields than the header is an error, as any later one is.

    pandas does not fail on it: it takes the extra leading fields for row labels,
    and every value lands one column over (a title read as the country) without
    a word. The labels it made are the sign.
    """
    if isinstance(chunk.index, pd.RangeIndex):
        return
    header = len(chunk.columns)
    raise SourceFormatError(
        f"{path}: the first data line has {header + chunk.index.nlevels} fields where the "
        f"header has {header} {_EXTRA_FIELDS_HINT}"
    )


def _parser_message(error: pd.errors.ParserError) -> str:
    text = str(error)
    if found := _PARSER_FIELDS.search(text):
        header, line, seen = found.groups()
        return f"line {line}: {seen} fields where the header has {header} {_EXTRA_FIELDS_HINT}"
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
                    if not chunks:
                        _refuse_extra_first_fields(chunk, path)
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
    _refuse_repeated_names(path, list(frame.columns))
    return frame


_RENAMED = re.compile(r"(.+)\.\d+")  # pandas' name for a repeat: "job_title.1"


def _refuse_repeated_names(path: Path, columns: list[str]) -> None:
    """A header naming a column twice is an error: pandas renames the second
    ``job_title.1`` and one of the two would be read without a word.

    ``columns`` are pandas' names, trimmed. Only when they look like a repeat
    is the header line read again, for the names as written.
    """
    renamed = (_RENAMED.fullmatch(name) for name in columns)
    if len(set(columns)) == len(columns) and not any(m and m[1] in columns for m in renamed):
        return
    width = len(columns)
    with _open_text(path) as handle:
        header = pd.read_csv(handle, header=None, nrows=1, dtype=str, keep_default_na=False)
    names = [str(c).strip() for c in header.iloc[0].tolist()][:width] if len(header) else []
    seen: dict[str, int] = {}
    for position, name in enumerate(names, start=1):
        if name in seen and name:  # blank names (a spreadsheet's empty columns) are "Unnamed"
            raise SourceFormatError(
                f"{path}: the header names {name!r} twice (columns {seen[name]} and {position})"
            )
        seen[name] = position


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
