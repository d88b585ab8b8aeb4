"""Source adapters: raw CSV files to canonical job records.

An adapter is a block in ``configs/sources.yaml``; this module reads a file,
drops the leaky columns, and fills each canonical field from its configured
column(s), value map and rule. Every output row keeps ``row_number`` (the
line in the file, header = line 1) so errors name the row, and the ids that
profiling uses to find repeats (``repeat_id``) and CV groups (``group_id``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from salarymodel.config import (
    CANONICAL_FIELDS,
    FieldMapping,
    Settings,
    SourceConfig,
    SourcesConfig,
    resolve_path,
)
from salarymodel.derivations import RULES, RuleContext

CANONICAL_SOURCE = "canonical"
BOOKKEEPING_COLUMNS = ("row_number", "repeat_id", "group_id")


class SourceFormatError(ValueError):
    """A file that cannot be mapped at all (wrong columns, not a CSV, empty)."""


@dataclass(frozen=True)
class AdaptedSource:
    """Canonical records of one file and the raw frame they came from."""

    name: str
    records: pd.DataFrame
    raw: pd.DataFrame


def read_csv(path: Path) -> pd.DataFrame:
    """Read a CSV (optionally .gz) as text; every value stays a string until validated.

    ``keep_default_na=False`` matters: Namibia's ISO code "NA" is data, not a
    missing value. Only empty cells are missing.
    """
    try:
        frame = pd.read_csv(
            path, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8"
        )
    except UnicodeDecodeError as error:
        raise SourceFormatError(
            f"{path}: not UTF-8 text (byte {error.start}); re-save the file as UTF-8"
        ) from error
    except pd.errors.EmptyDataError as error:
        raise SourceFormatError(f"{path}: the file is empty (no header line)") from error
    except pd.errors.ParserError as error:
        raise SourceFormatError(f"{path}: not a readable CSV: {error}") from error
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


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


def adapt(raw: pd.DataFrame, name: str, config: SourceConfig, settings: Settings) -> AdaptedSource:
    """Map a raw frame into canonical records with the source's configured adapter."""
    unknown_rules = {m.rule for m in config.fields.values() if m.rule and m.rule not in RULES}
    if unknown_rules:
        raise SourceFormatError(f"source {name!r}: unknown rules {sorted(unknown_rules)}")
    missing = [c for c in _required_columns(config) if c not in raw.columns]
    if missing:
        raise SourceFormatError(
            f"source {name!r}: missing columns {missing}; the file has {list(raw.columns)}"
        )
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
    records["repeat_id"] = repeat_ids.to_numpy()
    records["group_id"] = group_ids.to_numpy()
    return AdaptedSource(name=name, records=records.reset_index(drop=True), raw=raw)


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
    return adapt(read_csv(file), name, config, settings)


def detect_source(columns: list[str], sources: SourcesConfig) -> str:
    """The configured source whose required columns a file has.

    The adapter that needs the most columns is tried first, so the loose
    canonical format (only ``job_title`` required) is the last resort.
    """
    ordered = sorted(
        sources.sources.items(), key=lambda item: len(_required_columns(item[1])), reverse=True
    )
    for name, config in ordered:
        if all(c in columns for c in _required_columns(config)):
            return name
    raise SourceFormatError(
        f"no configured source matches the columns {columns}; "
        f"pass --source (one of {sorted(sources.sources)}) or add an adapter"
    )
