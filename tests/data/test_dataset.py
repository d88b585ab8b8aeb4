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
