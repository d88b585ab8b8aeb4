"""Source adapters: raw CSV files to canonical job records.

An adapter is a block in ``configs/sources.yaml``; this module reads a file,
drops the leaky columns, and fills each canonical field from its configured
column(s), value map and rule. Every output row keeps ``row_number`` (its
row, header = 1), ``line`` (where it starts in the file, which errors name)
and the ids that profiling uses to find repeats (``repeat_id``) and CV groups
(``group_id``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from salarymodel.config.data import InputLimitsConfig
from salarymodel.config.settings import Settings, resolve_path
from salarymodel.config.sources import CANONICAL_FIELDS, FieldMapping, SourceConfig, SourcesConfig
from salarymodel.data.derivations import RULES, RuleContext
from salarymodel.data.reading import SourceFormatError, read_csv, record_lines
from salarymodel.data.validation import UNDECODABLE, Reason, cell_problems

CANONICAL_SOURCE = "canonical"


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


def _row_ids(raw: pd.DataFrame, columns: list[str]) -> pd.Series:
    """A stable hash of the given columns per row (the row number when no columns)."""
    if not columns:
        return pd.Series([f"row{i}" for i in range(len(raw))], index=raw.index)
    # hash_pandas_object uses a fixed key, so ids are stable across runs.
    hashes = pd.util.hash_pandas_object(raw[columns].fillna(""), index=False)
    # Text even for a file without rows (mapping an empty series keeps its uint64 dtype,
    # and "source:" + ids then fails).
    return hashes.map("{:016x}".format).astype(object)


def source_config(sources: SourcesConfig, name: str) -> SourceConfig:
    """A configured source's adapter; a name no source has is a ``SourceFormatError``
    that lists the configured ones (a user's ``--source`` typo, not a crash)."""
    if name not in sources.sources:
        raise SourceFormatError(f"unknown source {name!r}; configured: {sorted(sources.sources)}")
    return sources.sources[name]


# The canonical field that holds the answer: a file of jobs to score may leave it out.
TARGET_FIELD = "salary_usd"


def for_scoring(sources: SourcesConfig) -> SourcesConfig:
    """The sources as a file of jobs to score reads them: the pay column, which is
    what the model is asked for, is optional (a survey or postings file without it
    is a list of jobs, not a broken file). Training still requires it."""
    scoring = {}
    for name, config in sources.sources.items():
        target = config.fields.get(TARGET_FIELD)
        fields = dict(config.fields)
        if target is not None:
            fields[TARGET_FIELD] = target.model_copy(update={"optional": True})
        scoring[name] = config.model_copy(update={"fields": fields})
    return sources.model_copy(update={"sources": scoring})


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
    config = source_config(sources, name)
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
