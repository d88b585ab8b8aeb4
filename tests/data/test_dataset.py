"""The training data's fingerprint: hashed once per records frame, never left stale."""

from __future__ import annotations

import pytest


def test_the_fingerprint_is_hashed_once_per_records_frame(
    project, settings, sources, monkeypatch: pytest.MonkeyPatch
) -> None:
    from salarymodel.data import dataset

    data = dataset.load_training_data(settings, sources, sample=300)
    real, calls = dataset.fingerprint, []

    def counted(records):
        calls.append(len(records))
        return real(records)

    monkeypatch.setattr(dataset, "fingerprint", counted)
    first = data.fingerprint
    assert data.fingerprint is first and data.fingerprint == real(data.records)
    assert len(calls) == 1  # a retrain reads it for tags, data.json and metadata: one hash
    # Another frame (a merge assigns one) is hashed anew: no stale fingerprint.
    data.records = data.records.iloc[:-1]
    assert data.fingerprint["rows"] == first["rows"] - 1
    assert data.fingerprint["hash"] != first["hash"]
    assert len(calls) == 2


def test_every_canonical_field_is_part_of_the_fingerprint(project, settings, sources) -> None:
    """A change to any field (a location or a month too, not only the fields that
    predate them) is changed data: the gate and the retrain compare these hashes."""
    from salarymodel.config.sources import CANONICAL_FIELDS
    from salarymodel.data import dataset

    records = dataset.load_training_data(settings, sources, sample=300).records
    first = dataset.fingerprint(records)["hash"]
    unchanged = []
    for field in CANONICAL_FIELDS:
        changed = records.copy()
        changed[field] = changed[field].astype(object)
        value = changed.at[0, field]
        changed.at[0, field] = ["rust"] if field == "skills" else f"{value}-changed"
        if dataset.fingerprint(changed)["hash"] == first:
            unchanged.append(field)
    assert unchanged == []
