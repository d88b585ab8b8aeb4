"""Recency: later records weigh more in the point model and the country levels (issue 22, drift)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import yaml

from salarymodel.config.settings import ConfigError, load_settings
from salarymodel.core.country_levels import CountryLevels, source_levels, weighted_median
from salarymodel.core.features import FeatureBuilder
from salarymodel.core.model import SalaryModel
from salarymodel.core.periods import recency_weights
from salarymodel.data.dataset import load_training_data

ROOT = Path(__file__).resolve().parents[2]
# A half-life so short that every record older than its source's latest
# period weighs exactly 0.0 (0.5 ** 100000 underflows) and the latest weighs 1.
INSTANT = 1e-5


@pytest.fixture(scope="module")
def records(settings, sources):
    return load_training_data(settings, sources, sample=3000, seed=11).records.reset_index(
        drop=True
    )


def recent(settings, training: bool, levels: bool):
    update = {
        "recency_half_life_months": INSTANT,
        "recency_training": training,
        "recency_levels": levels,
        # The yearly trend reads every year's records unweighted: off here.
        "trend": False,
    }
    return settings.country_levels.model_copy(update=update)


# ----- configuration ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"recency_half_life_months": 0}, "recency_half_life_months"),
        ({"recency_half_life_months": -6}, "recency_half_life_months"),
        ({"recency_training": True}, "needs recency_half_life_months"),
        ({"recency_levels": True}, "needs recency_half_life_months"),
    ],
)
def test_an_invalid_recency_is_refused(tmp_path: Path, changes: dict, named: str) -> None:
    data = yaml.safe_load((ROOT / "configs" / "salarymodel.yaml").read_text())
    data["country_levels"].update({"recency_half_life_months": None, **changes})
    path = tmp_path / "salarymodel.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=named):
        load_settings(path)


# ----- the levels ------------------------------------------------------------------------
def test_the_weighted_median_is_the_median_with_equal_weights(records) -> None:
    y = np.log(records["salary_usd"].to_numpy(float))
    odd = y[: len(y) - 1 + len(y) % 2]
    assert weighted_median(odd, np.ones(len(odd))) == float(np.median(odd))
    assert weighted_median(y, None) == float(np.median(y))
    # All the weight on one record: its value, wherever it sorts.
    weights = np.zeros(len(y))
    weights[7] = 1.0
    assert weighted_median(y, weights) == y[7]


def test_recency_levels_read_the_latest_period(records, settings) -> None:
    config = recent(settings, training=False, levels=True)
    weights = recency_weights(records, INSTANT)
    assert weights is not None and set(np.unique(weights).tolist()) == {0.0, 1.0}
    levels = CountryLevels.fit(records, config).by_source["aijobs"]
    survey = (records["source"] == "aijobs").to_numpy()
    latest = survey & (weights == 1.0)
    y = np.log(records["salary_usd"].to_numpy(float))
    countries = records["country"].tolist()
    expected = source_levels(
        y[latest],
        [countries[i] for i in np.flatnonzero(latest)],
        config.prior_strength,
        np.ones(int(latest.sum())),
    )
    assert levels.world == expected.world
    for country, level in levels.countries.items():
        # A country seen only in earlier years has no weight: its region's level.
        assert level == expected.countries.get(country, levels.of(None, _region(country)))
    unweighted = CountryLevels.fit(records, settings.country_levels).by_source["aijobs"]
    assert unweighted.countries != levels.countries
    # The count behind a level stays the records', for the answer's wording.
    assert levels.counts == unweighted.counts


def _region(country: str) -> str | None:
    from salarymodel.data import geography

    return geography.region(country)


# ----- the point model -------------------------------------------------------------------
def fit_and_score(records, settings, config, tampered) -> tuple[np.ndarray, np.ndarray]:
    builder = FeatureBuilder.fit(records, settings.features)
    matrix = builder.transform(records)
    scores = []
    for frame in (records, tampered):
        model = SalaryModel.fit(frame, builder, settings.model, matrix, country_levels=config)
        scores.append(model.predict_log(matrix, 1))
    return scores[0], scores[1]


def test_earlier_records_weigh_nothing_at_an_instant_half_life(records, settings) -> None:
    weights = recency_weights(records, INSTANT)
    assert weights is not None
    old = weights == 0.0
    assert 0 < old.sum() < len(records)
    # Earlier records' salaries tripled: a model that weighs them not at all
    # (trees and levels) cannot see it; one whose trees weigh them does.
    tampered = records.assign(
        salary_usd=np.where(old, records["salary_usd"] * 3, records["salary_usd"])
    )
    before, after = fit_and_score(records, settings, recent(settings, True, True), tampered)
    np.testing.assert_array_equal(after, before)
    before, after = fit_and_score(records, settings, recent(settings, False, True), tampered)
    assert np.abs(after - before).max() > 0.1
    # Trees weighted but levels not: the levels read the tripled salaries.
    before, after = fit_and_score(records, settings, recent(settings, True, False), tampered)
    assert np.abs(after - before).max() > 0.1


# ----- the cluster's fit -----------------------------------------------------------------
class _CapturingRegressor:
    """Stands in for lightgbm.DaskLGBMRegressor: keeps what ``fit`` was given."""

    given: ClassVar[dict] = {}

    def __init__(self, **params) -> None:
        self.booster_ = None

    def fit(self, matrix, label, **kwargs) -> None:
        _CapturingRegressor.given = {"label": label, **kwargs}


def test_the_cluster_weighs_each_partition_as_one_machine(records, settings, monkeypatch) -> None:
    import lightgbm

    from salarymodel.training.dask_cluster import ClusterRecords
    from salarymodel.training.dask_fits import fit_on_cluster

    monkeypatch.setattr(lightgbm, "DaskLGBMRegressor", _CapturingRegressor)
    order = np.random.default_rng(3).permutation(len(records))
    positions = [np.sort(chunk) for chunk in np.array_split(order, 3)]
    # Partitions as plain frames: dask.delayed computes them in this process.
    parts = [records.iloc[chunk] for chunk in positions]
    cluster = ClusterRecords(None, records, positions, parts)  # type: ignore[arg-type]
    rows = (records["year"] <= 2023).to_numpy()
    config = settings.country_levels.model_copy(
        update={"recency_half_life_months": 12.0, "recency_training": True}
    )
    fit_on_cluster(cluster, rows, settings.model_copy(update={"country_levels": config}), False)
    given = _CapturingRegressor.given
    sent = np.concatenate([p[rows[p]] for p in positions])
    labels = np.log(records["salary_usd"].to_numpy(float))
    np.testing.assert_array_equal(given["label"].compute(), labels[sent])
    expected = np.zeros(len(records))
    expected[rows] = recency_weights(records[rows], 12.0)
    weights = given["sample_weight"].compute()
    np.testing.assert_array_equal(weights, expected[sent])
    assert 0 < weights.min() < 1 == weights.max()
    # Off (the shipped setting): no weights at all, as on one machine.
    fit_on_cluster(cluster, rows, settings, False)
    assert _CapturingRegressor.given["sample_weight"] is None
