"""The training table: every configured source adapted, profiled, validated.

Per source: rows in = kept + quarantined; repeats are then collapsed (or
kept) by the configured policy. The fingerprint hashes the canonical records
that the model sees, so two runs on the same data can prove it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from salarymodel.config import Settings, SourcesConfig, resolve_path
from salarymodel.profiling import Finding, apply_repeat_policy, profile_source
from salarymodel.sources import AdaptedSource, load_source
from salarymodel.validation import validate_records, write_quarantine


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

    @property
    def fingerprint(self) -> dict[str, object]:
        return fingerprint(self.records)


def fingerprint(records: pd.DataFrame) -> dict[str, object]:
    """A content hash of canonical records plus row counts per source."""
    view = records[
        [
            "job_title",
            "job_category",
            "experience_level",
            "company_size",
            "country",
            "company_country",
            "remote_ratio",
            "employment_type",
            "year",
            "salary_usd",
            "source",
        ]
    ].astype(str)
    view = view.assign(
        skills=records["skills"].map(lambda s: ";".join(s) if isinstance(s, list) else "")
    )
    hashes = pd.util.hash_pandas_object(view, index=False).to_numpy()
    digest = hashlib.sha256(hashes.tobytes()).hexdigest()[:16]
    per_source = {str(k): int(v) for k, v in records["source"].value_counts().sort_index().items()}
    return {"hash": digest, "rows": len(records), "rows_per_source": per_source}  # fmt: skip


def prepare_source(
    adapted: AdaptedSource, sources: SourcesConfig, settings: Settings, quarantine_dir: Path | None
) -> tuple[pd.DataFrame, SourceCounts, list[Finding], Path | None]:
    """Profile, validate and de-repeat one adapted source."""
    config = sources.sources[adapted.name]
    findings = profile_source(adapted, config, settings)
    # Raw columns ride along (prefixed) for the plain-LightGBM baseline only.
    for column in config.raw_feature_columns:
        adapted.records[f"raw.{column}"] = adapted.raw[column].to_numpy()
    result = validate_records(adapted.records, settings, raw_columns=list(adapted.raw.columns))
    quarantine_file = None
    if quarantine_dir is not None and len(result.quarantined):
        quarantine_file = write_quarantine(
            result.quarantined, quarantine_dir / f"{adapted.name}.quarantine.csv"
        )
    kept = apply_repeat_policy(result.kept, settings)
    counts = SourceCounts(
        source=adapted.name,
        rows_in=result.rows_in,
        kept=len(result.kept),
        quarantined=len(result.quarantined),
        after_repeats=len(kept),
        reasons=dict(result.reason_counts),
    )
    return kept, counts, findings, quarantine_file


def load_training_data(
    settings: Settings,
    sources: SourcesConfig,
    paths: dict[str, Path] | None = None,
    sample: int | None = None,
    seed: int = 0,
) -> TrainingData:
    """Adapt, profile, validate and de-repeat every training source.

    ``paths`` overrides a source's shipped file; ``sample`` keeps a random
    sample of that many raw rows per source (for tests and quick runs).
    """
    quarantine_dir = resolve_path(settings.validation.quarantine_dir)
    frames, counts, findings, files = [], [], [], []
    for name in sources.training_sources:
        adapted = load_source(name, sources, settings, (paths or {}).get(name))
        if sample is not None and sample < len(adapted.records):
            keep = adapted.records.sample(n=sample, random_state=seed).index.sort_values()
            adapted = AdaptedSource(name, adapted.records.loc[keep], adapted.raw.loc[keep])
        kept, source_counts, source_findings, file = prepare_source(
            adapted, sources, settings, quarantine_dir
        )
        frames.append(kept)
        counts.append(source_counts)
        findings.extend(source_findings)
        if file:
            files.append(file)
    records = pd.concat(frames, ignore_index=True)
    return TrainingData(records, counts, findings, files)
