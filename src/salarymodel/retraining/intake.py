"""A new file in: read, merged with the existing records, its held-out groups chosen."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from salarymodel.config.settings import Settings
from salarymodel.config.sources import SourcesConfig
from salarymodel.data.dataset import (
    PreparedSource,
    TrainingData,
    fingerprint,
    load_training_data,
    prepare_source,
)
from salarymodel.data.profiling import merge_repeats
from salarymodel.data.reading import SourceFormatError, read_csv, record_lines
from salarymodel.data.sources import adapt, detect_source, source_config

TAG_EXISTING = "data_fingerprint.existing"

TAG_NEW = "data_fingerprint.new"


# ----- the new file -------------------------------------------------------------------
@dataclass
class NewData:
    """A new file: its raw rows, and its records after validation and repeats."""

    path: Path
    source: str
    raw: pd.DataFrame
    prepared: PreparedSource

    @property
    def records(self) -> pd.DataFrame:
        return self.prepared.records

    @property
    def accepted_raw(self) -> pd.DataFrame:
        """The raw rows (as delivered, all columns) that passed validation."""
        lines = self.prepared.validation.kept["row_number"].astype(int).to_numpy()
        return self.raw.iloc[lines - 2]

    @property
    def quarantined_share(self) -> float:
        counts = self.prepared.counts
        return counts.quarantined / counts.rows_in if counts.rows_in else 0.0


def read_new_file(
    path: Path,
    settings: Settings,
    sources: SourcesConfig,
    source: str | None = None,
    quarantine_dir: Path | None = None,
) -> NewData:
    """Map a new file with its adapter, validate it and collapse its repeats.

    Raises ``SourceFormatError`` for a file that cannot be mapped at all (no
    rows, unknown columns, rows naming a source the model is not trained on).
    """
    raw = read_csv(path)
    if raw.empty:
        raise SourceFormatError(f"{path}: no data rows under the header")
    name = source or detect_source(list(raw.columns), sources)
    adapted = adapt(raw, name, source_config(sources, name), settings, record_lines(path, len(raw)))
    known = sources.training_sources
    unknown = ~adapted.records["source"].isin(known)
    if unknown.any():
        first = adapted.records[unknown].iloc[0]
        raise SourceFormatError(
            f"{path}: line {first['line']}: source: {first['source']!r} is not a "
            f"training source ({', '.join(known)}); a canonical file needs a 'source' column"
        )
    prepared = prepare_source(
        adapted, sources, settings, quarantine_dir, label=f"new.{name}", delivered=raw
    )
    return NewData(path, name, raw, prepared)


def merge_new(
    existing: TrainingData, new: NewData, settings: Settings
) -> tuple[TrainingData, np.ndarray, int]:
    """Existing and new records as one training table.

    Returns the merged data, a mask of the records that are new (not a repeat
    of an existing record), and how many new records repeat existing ones.
    """
    known = set(existing.records["repeat_id"])
    repeats = int(new.records["repeat_id"].isin(known).sum())
    records = merge_repeats([existing.records, new.records], settings)
    is_new = ~records["repeat_id"].isin(known).to_numpy()
    merged = TrainingData(
        records,
        [*existing.counts, new.prepared.counts],
        [*existing.findings, *new.prepared.findings],
        [*existing.quarantine_files, *filter(None, [new.prepared.quarantine_file])],
    )
    return merged, is_new, repeats


# ----- the held-out comparison -----------------------------------------------------------
def stable_share(ids: pd.Series, seed: int) -> np.ndarray:
    """A number in [0, 1) per id, the same on every run and machine."""
    keyed = (f"{seed}:" + ids.astype(str)).reset_index(drop=True)
    hashes = pd.util.hash_pandas_object(keyed, index=False).to_numpy()
    return (hashes % np.uint64(1_000_003)).astype(float) / 1_000_003


def holdout_mask(records: pd.DataFrame, is_new: np.ndarray, settings: Settings) -> np.ndarray:
    """Held-out rows: groups found only among new records, picked by a stable hash.

    A group with any existing record is never held out (the champion saw part
    of it), and a group is held out whole (repeats never straddle).
    """
    config = settings.retraining
    groups = records["group_id"]
    seen = set(groups[~is_new])
    only_new = is_new & ~groups.isin(seen).to_numpy()
    return only_new & (stable_share(groups, config.seed) < config.holdout_fraction)


def existing_sample(records: pd.DataFrame, is_new: np.ndarray, settings: Settings) -> np.ndarray:
    """A fixed sample of existing records (the same rows on every run over the same data)."""
    config = settings.retraining
    positions = np.flatnonzero(~is_new)
    share = stable_share(records["group_id"].iloc[positions], config.seed + 1)
    chosen = positions[np.argsort(share, kind="stable")[: config.existing_sample]]
    mask = np.zeros(len(records), bool)
    mask[chosen] = True
    return mask


@dataclass
class Merged:
    """The existing training data, the new records merged into it, and which are new."""

    existing: TrainingData
    data: TrainingData
    is_new: np.ndarray
    repeats_of_existing: int
    fingerprints: dict[str, str]

    @property
    def novel(self) -> int:
        return int(self.is_new.sum())


def merge_with_existing(
    new: NewData, settings: Settings, sources: SourcesConfig, sample: int | None
) -> Merged:
    """Stage 2: the existing training data with the new file's accepted records."""
    # Here, not at the top: `salarymodel drift` reads a new file with this module, and
    # the registry's module imports MLflow (seconds) that reading does not need.
    from salarymodel.registry.store import TAG_FINGERPRINT

    existing = load_training_data(settings, sources, sample=sample)
    data, is_new, repeats = merge_new(existing, new, settings)
    fingerprints = {
        TAG_EXISTING: str(existing.fingerprint["hash"]),
        TAG_NEW: str(fingerprint(new.records)["hash"]),
        TAG_FINGERPRINT: str(data.fingerprint["hash"]),
    }
    return Merged(existing, data, is_new, repeats, fingerprints)
