"""Evaluation: the folds and the one pass over them (verdicts: test_verdicts.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import StratifiedGroupKFold

from salarymodel.config.settings import ConfigError, load_settings
from salarymodel.core import range_calibration
from salarymodel.core.features import FeatureBuilder
from salarymodel.core.model import SalaryModel
from salarymodel.data.dataset import load_training_data
from salarymodel.data.role_family import with_role_family
from salarymodel.evaluation.baselines import PREDICTORS, fused_lightgbm
from salarymodel.evaluation.cv import assign_folds, cross_validate, evaluate_ranges
from salarymodel.evaluation.range_eval import _range_split
from salarymodel.evaluation.report import _pool_folds
from salarymodel.evaluation.workers import for_workers

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", autouse=True)
def read_once():
    """Each shipped file is read and adapted once for the module (1.6 s a time): every
    ``load_training_data`` here samples its own rows from those records, as it would
    from a fresh read (it copies what it keeps; nothing changes the records read)."""
    from salarymodel.data import dataset

    read = dataset.load_source
    kept: dict[tuple, object] = {}

    def once(name, sources, settings, path=None):
        if (name, path) not in kept:
            kept[name, path] = read(name, sources, settings, path)
        return kept[name, path]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dataset, "load_source", once)
        yield


# ----- folds ------------------------------------------------------------------------
@pytest.mark.parametrize(("rows", "n_folds", "seed"), [(1500, 5, 17), (3000, 5, 3), (600, 3, 1)])
def test_folds_are_scikit_learns_stratified_group_folds(
    settings, sources, rows: int, n_folds: int, seed: int
) -> None:
    # The gate compares a challenger and the champion on the same folds
    # (``cv.folds`` tag): the fast assignment must not move a single record.
    records = load_training_data(settings, sources, sample=rows, seed=seed, accepted=False).records
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    expected = np.full(len(records), -1)
    for fold, (_, test) in enumerate(
        splitter.split(records, records["source"], groups=records["group_id"])
    ):
        expected[test] = fold
    assert np.array_equal(assign_folds(records, n_folds, seed), expected)


def test_folds_refuse_more_folds_than_groups(settings, sources) -> None:
    records = load_training_data(settings, sources, sample=20, accepted=False).records.head(4)
    with pytest.raises(ValueError, match="at least as many groups"):
        assign_folds(records, 5, 17)


# ----- the one pass ------------------------------------------------------------------
@pytest.fixture(scope="module")
def small(settings, sources):
    return load_training_data(settings, sources, sample=1200, seed=5, accepted=False).records


@pytest.mark.slow
def test_one_pass_gives_what_separate_fits_give(small, settings) -> None:
    """Shared fold features, reused estimates and two workers change no number.

    The reference fits every fold one after the other, each range split with
    its own feature builder and point model, as the evaluation did before it
    became one pass.
    """
    report = cross_validate(small, settings, models=("fused_lightgbm",), ranges=True)
    one_core = for_workers(settings)
    records = with_role_family(small.reset_index(drop=True), settings)
    folds = assign_folds(records, settings.evaluation.n_folds, settings.evaluation.seed)
    oof = np.full(len(records), np.nan)
    cv_rows = []
    for fold in range(settings.evaluation.n_folds):
        test = folds == fold
        oof[test] = fused_lightgbm(records[~test], records[test], one_core)
        cv_rows += _range_split(records[~test], records[test], None, one_core, "cv")
    expected = _pool_folds(pd.DataFrame(cv_rows))
    assert np.array_equal(report.oof["fused_lightgbm"], oof)
    # The per-row table keeps each record's out-of-fold estimate and range.
    assert report.cv_rows is not None
    assert np.array_equal(report.cv_rows["estimate_usd"].to_numpy(), oof)
    assert (report.cv_rows["low_usd"] <= report.cv_rows["estimate_usd"]).all()
    assert report.cv_rows["country"].fillna("").equals(records["country"].fillna(""))
    pd.testing.assert_frame_equal(report.ranges, expected.reset_index(drop=True), check_exact=True)
    assert evaluate_ranges(small, settings, report=report) is report.ranges
    again = cross_validate(small, settings, models=("fused_lightgbm",), ranges=True)
    pd.testing.assert_frame_equal(again.ranges, report.ranges, check_exact=True)


@pytest.mark.slow
def test_no_fit_sees_its_test_rows(small, settings, monkeypatch) -> None:
    """Every vocabulary, point model, range model and baseline is fit without its test rows."""
    fitted: list[set[int]] = []  # row labels (positions in the records) each fit saw

    def recording(fit):
        def wrapper(*args, **kwargs):
            fitted.append(set(args[0].index))
            return fit(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(FeatureBuilder, "fit", recording(FeatureBuilder.fit))
    monkeypatch.setattr(SalaryModel, "fit", recording(SalaryModel.fit))
    monkeypatch.setattr(
        range_calibration, "fit_range_model", recording(range_calibration.fit_range_model)
    )
    for name in ("raw_lightgbm", "group_median", "global_median"):
        monkeypatch.setitem(PREDICTORS, name, recording(PREDICTORS[name]))
    report = cross_validate(small, settings, ranges=True)

    held_out = [set(np.flatnonzero(report.folds == f)) for f in np.unique(report.folds)]
    # Per fold: the fused model's builder and booster, the range model and its
    # proper-set booster, 2 sources x a single-source builder and booster, the
    # raw baseline, 2 medians.
    assert len(fitted) == 5 * 11
    for rows in fitted:
        assert any(not rows & test for test in held_out)


def test_workers_share_lightgbm_threads(settings) -> None:
    assert settings.evaluation.workers == 2 and settings.model.params["num_threads"] == 2
    shared = for_workers(settings)
    assert shared.model.params["num_threads"] == 1
    assert shared.ranges.params["num_threads"] == 1
    assert settings.model.params["num_threads"] == 2  # the configuration itself is untouched
    alone = settings.model_copy(
        update={"evaluation": settings.evaluation.model_copy(update={"workers": 1})}
    )
    assert for_workers(alone).model.params["num_threads"] == 2


def test_zero_workers_is_refused(tmp_path) -> None:
    text = (ROOT / "configs" / "salarymodel.yaml").read_text()
    assert "  workers: 2\n" in text
    (tmp_path / "salarymodel.yaml").write_text(text.replace("  workers: 2\n", "  workers: 0\n"))
    with pytest.raises(ConfigError, match="workers"):
        load_settings(tmp_path / "salarymodel.yaml")


@pytest.mark.slow
def test_every_lightgbm_call_of_a_pass_asks_for_the_same_threads(
    small, settings, monkeypatch, tmp_path
):
    """LightGBM keeps num_threads in one process-wide variable that every call sets.

    A prediction with OpenMP's default (0) while a fit with 1 thread ran on
    the other worker made that fit overrun its per-thread buffers: a
    segfault in lib_lightgbm during training. Every fit and prediction of
    the pass (CV, ranges, backtest, final model, explanations) asks for the
    fits' count.
    """
    import lightgbm as lgb

    from salarymodel.evaluation.baselines import fit_threads
    from salarymodel.training.job import evaluate_and_fit

    asked: list[object] = []
    train, predict = lgb.train, lgb.Booster.predict

    def recording_train(params, *args, **kwargs):
        asked.append(params.get("num_threads"))
        return train(params, *args, **kwargs)

    def recording_predict(self, data, *args, **kwargs):
        asked.append(kwargs.get("num_threads"))
        return predict(self, data, *args, **kwargs)

    monkeypatch.setattr(lgb, "train", recording_train)
    monkeypatch.setattr(lgb.Booster, "predict", recording_predict)
    data = type("Data", (), {"records": small, "fingerprint": "test"})()
    # The explanations on 200 of the 1,200 records: still run beside the folds.
    explained = settings.explanations.model_copy(update={"sample_size": 200})
    settings = settings.model_copy(update={"explanations": explained})
    evaluate_and_fit(data, settings, ("fused_lightgbm", "raw_lightgbm"), {}, explain_to=tmp_path)
    assert any(tmp_path.iterdir())  # the explanations ran, on the pool, next to the folds
    assert len(asked) > 50
    assert set(asked) == {fit_threads(for_workers(settings))} == {1}
