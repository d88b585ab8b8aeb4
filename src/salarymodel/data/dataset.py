"""The training table: every configured source adapted, profiled, validated.

Per source: rows in = kept + quarantined; repeats are then collapsed (or
kept) by the configured policy, within each file and across files (the
shipped ones and those promoted retrains accepted, see ``accepted_files``).
The fingerprint hashes the canonical records that the model sees, so two
runs on the same data can prove it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from salarymodel.config.settings import Settings, resolve_path
from salarymodel.config.sources import CANONICAL_FIELDS, SourcesConfig
from salarymodel.data.csv_output import write_csv
from salarymodel.data.profiling import Finding, apply_repeat_policy, merge_repeats, profile_source
from salarymodel.data.sources import AdaptedSource, load_source
from salarymodel.data.validation import (
    ValidationResult,
    quarantine_table,
    validate_records,
    write_quarantine,
)


@dataclass(frozen=True)
class SourceCounts:
    """What happened to one source's rows."""

    source: str
    rows_in: int
    kept: int
    quarantined: int
    after_repeats: int
    reasons: dict[str, int]


@dataclass
class TrainingData:
    """Canonical, validated records ready for features, with their provenance."""

    records: pd.DataFrame
    counts: list[SourceCounts]
    findings: list[Finding]
    quarantine_files: list[Path] = field(default_factory=list)
    # (records frame, its fingerprint): one hash per frame, however often it is read.
    _fingerprint: tuple[pd.DataFrame, dict[str, object]] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    @property
    def fingerprint(self) -> dict[str, object]:
        """``fingerprint(self.records)``, hashed once per records frame.

        A retrain reads the merged data's fingerprint for its tags, the run's
        ``data.json`` and the bundle's metadata; each read hashed every record again.
        """
        if self._fingerprint is None or self._fingerprint[0] is not self.records:
            self._fingerprint = (self.records, fingerprint(self.records))
        return self._fingerprint[1]


# Every canonical field is part of the content (a changed location is changed
# data); skills are lists, joined below so equal lists hash equal.
_HASHED_FIELDS = tuple(field for field in CANONICAL_FIELDS if field != "skills")


def fingerprint(records: pd.DataFrame) -> dict[str, object]:
    """A content hash of canonical records plus row counts per source."""
    view = records[list(_HASHED_FIELDS)].astype(str)
    view = view.assign(
        skills=records["skills"].map(lambda s: ";".join(s) if isinstance(s, list) else "")
    )
    hashes = pd.util.hash_pandas_object(view, index=False).to_numpy()
    digest = hashlib.sha256(hashes.tobytes()).hexdigest()[:16]
    per_source = {str(k): int(v) for k, v in records["source"].value_counts().sort_index().items()}
    return {"hash": digest, "rows": len(records), "rows_per_source": per_source}  # fmt: skip


@dataclass
class PreparedSource:
    """One adapted source after profiling, validation and de-repeating."""

    records: pd.DataFrame
    counts: SourceCounts
    findings: list[Finding]
    validation: ValidationResult
    quarantine_file: Path | None = None


def prepare_source(
    adapted: AdaptedSource,
    sources: SourcesConfig,
    settings: Settings,
    quarantine_dir: Path | None,
    label: str | None = None,
    delivered: pd.DataFrame | None = None,
) -> PreparedSource:
    """Profile, validate and de-repeat one adapted source.

    ``label`` names the file in counts and the quarantine file (default: the
    source). The quarantine file holds the bad rows of ``delivered`` (the file
    as read, all columns; default: the adapted raw frame).
    """
    config = sources.sources[adapted.name]
    findings = profile_source(adapted, config, settings)
    # Raw columns ride along (prefixed) for the plain-LightGBM baseline only.
    for column in config.raw_feature_columns:
        adapted.records[f"raw.{column}"] = adapted.raw[column].to_numpy()
    result = validate_records(
        adapted.records, settings, labels=adapted.labels, file_problems=adapted.file_problems
    )
    quarantine_file = None
    if quarantine_dir is not None and len(result.quarantined):
        table = quarantine_table(
            result.quarantined, adapted.raw if delivered is None else delivered
        )
        quarantine_file = write_quarantine(
            table, quarantine_dir / f"{label or adapted.name}.quarantine.csv"
        )
    kept = apply_repeat_policy(result.kept, settings)
    counts = SourceCounts(
        source=label or adapted.name,
        rows_in=result.rows_in,
        kept=len(result.kept),
        quarantined=len(result.quarantined),
        after_repeats=len(kept),
        reasons=dict(result.reason_counts),
    )
    return PreparedSource(kept, counts, findings, result, quarantine_file)


# ----- accepted new data ------------------------------------------------------------
# A retrain that promotes its challenger keeps the accepted rows of its new file
# (raw columns as delivered, so adapting them again gives the same records and
# ids) under ``retraining.accepted_dir/<source>/<UTC time>-<hash>.csv.gz``.
# They are part of the existing training data from then on. The file is first
# written under a pending name carrying the retrain's MLflow run id,
# ``<UTC time>-<hash>.csv.gz.<run id>.pending``, and renamed only after the
# alias moved; a pending file a killed retrain left behind is settled against
# the registry by the next retrain (``retraining.reconcile_accepted``).
ACCEPTED_SUFFIX = ".csv.gz"
PENDING_SUFFIX = ".pending"


@dataclass(frozen=True)
class AcceptedFile:
    """A file of new rows a promoted retrain accepted."""

    source: str
    path: Path


def accepted_files(settings: Settings, sources: SourcesConfig) -> list[AcceptedFile]:
    """Accepted files, oldest first (names start with their UTC time)."""
    folder = resolve_path(settings.retraining.accepted_dir)
    if not folder.is_dir():
        return []
    files = [
        AcceptedFile(path.parent.name, path)
        for path in folder.glob(f"*/*{ACCEPTED_SUFFIX}")
        if path.parent.name in sources.sources
    ]
    return sorted(files, key=lambda f: f.path.name)


def stage_accepted(
    raw_rows: pd.DataFrame, source: str, name: str, run_id: str, settings: Settings
) -> Path:
    """Write accepted raw rows under a pending name (not yet part of the training data).

    The name carries ``run_id``, which ties the file to the version registered
    from that run. The file is complete before that version is registered, so
    a half-written one (a kill while writing) is never committed.
    """
    folder = resolve_path(settings.retraining.accepted_dir) / source
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}{ACCEPTED_SUFFIX}.{run_id}{PENDING_SUFFIX}"
    write_csv(raw_rows, path, index=False, compression="gzip")
    return path


def pending_accepted(settings: Settings) -> list[tuple[Path, str]]:
    """Pending accepted files, each with the run id it belongs to."""
    folder = resolve_path(settings.retraining.accepted_dir)
    found = sorted(folder.glob(f"*/*{PENDING_SUFFIX}"))
    return [(path, path.name.split(".")[-2]) for path in found]


def accepted_path(pending: Path) -> Path:
    """Where a pending file goes once committed."""
    return pending.with_name(pending.name.split(ACCEPTED_SUFFIX)[0] + ACCEPTED_SUFFIX)


def commit_accepted(pending: Path) -> Path:
    """Make a staged file part of the training data (an atomic rename)."""
    final = accepted_path(pending)
    pending.replace(final)
    return final


def load_training_data(
    settings: Settings,
    sources: SourcesConfig,
    paths: dict[str, Path] | None = None,
    sample: int | None = None,
    seed: int = 0,
    accepted: bool = True,
) -> TrainingData:
    """Adapt, profile, validate and de-repeat every training source.

    ``paths`` overrides a source's shipped file; ``sample`` keeps a random
    sample of that many raw rows per source (for tests and quick runs).
    With ``accepted``, the files earlier retrains accepted follow the shipped
    ones (never sampled); repeats are collapsed across all of them.
    """
    quarantine_dir = resolve_path(settings.validation.quarantine_dir)
    prepared = []
    for name in sources.training_sources:
        adapted = load_source(name, sources, settings, (paths or {}).get(name))
        if sample is not None and sample < len(adapted.records):
            keep = adapted.records.sample(n=sample, random_state=seed).index.sort_values()
            adapted = replace(adapted, records=adapted.records.loc[keep], raw=adapted.raw.loc[keep])
        prepared.append(prepare_source(adapted, sources, settings, quarantine_dir))
    for file in accepted_files(settings, sources) if accepted else []:
        adapted = load_source(file.source, sources, settings, file.path)
        label = f"{file.source}:{file.path.name.removesuffix(ACCEPTED_SUFFIX)}"
        prepared.append(prepare_source(adapted, sources, settings, None, label))
    records = merge_repeats([p.records for p in prepared], settings)
    return TrainingData(
        records,
        [p.counts for p in prepared],
        [f for p in prepared for f in p.findings],
        [p.quarantine_file for p in prepared if p.quarantine_file],
    )
