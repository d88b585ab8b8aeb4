"""The predictors compared on every split: the fused model and its baselines.

Each takes a training and a test frame and returns USD estimates for the test rows;
baselines always run on the same split as the model.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from salarymodel.config.settings import Settings
from salarymodel.core.features import FeatureBuilder
from salarymodel.core.model import SalaryModel
from salarymodel.vocabulary import (
    FUSED_MODEL,
    GLOBAL_MEDIAN_MODEL,
    GROUP_MEDIAN_MODEL,
    RAW_MODEL,
    SINGLE_SOURCE_MODEL,
)

RAW_PREFIX = "raw."

Predictor = Callable[[pd.DataFrame, pd.DataFrame, Settings], np.ndarray]


def fit_threads(settings: Settings) -> int:
    """The LightGBM thread count of this process's fits, which its predictions must pass too.

    LightGBM keeps the count in one process-wide variable that every call
    sets: a prediction asking for another count while a fit runs on another
    thread makes the fit overrun its per-thread buffers (a segfault).
    """
    return int(settings.model.params.get("num_threads", 0))


# ----- predictors -----------------------------------------------------------
FoldFeatures = tuple[FeatureBuilder, np.ndarray, np.ndarray]


def fold_features(train: pd.DataFrame, test: pd.DataFrame, settings: Settings) -> FoldFeatures:
    """A feature builder fit on ``train`` only, and both sides' matrices."""
    builder = FeatureBuilder.fit(train, settings.features)
    return builder, builder.transform(train), builder.transform(test)


def fused_lightgbm(
    train: pd.DataFrame,
    test: pd.DataFrame,
    settings: Settings,
    features: FoldFeatures | None = None,
) -> np.ndarray:
    """The product model fit on ``train``: USD estimates for ``test``."""
    builder, train_matrix, test_matrix = features or fold_features(train, test, settings)
    model = SalaryModel.fit(
        train, builder, settings.model, train_matrix, country_levels=settings.country_levels
    )
    return np.exp(model.predict_log(test_matrix, fit_threads(settings)))


def _per_source(fit_predict: Predictor) -> Predictor:
    """Train and score one model per source; each test row gets its source's model."""

    def predict(train: pd.DataFrame, test: pd.DataFrame, settings: Settings) -> np.ndarray:
        out = np.full(len(test), np.nan)
        for source in test["source"].unique():
            in_test = (test["source"] == source).to_numpy()
            source_train = train[train["source"] == source]
            out[in_test] = fit_predict(source_train, test[in_test], settings)
        return out

    return predict


def _raw_matrix(
    frame: pd.DataFrame, columns: list[str], vocab: dict[str, dict | None]
) -> np.ndarray:
    matrix = np.full((len(frame), len(columns)), np.nan)
    for j, column in enumerate(columns):
        values = frame[column].astype(object)
        codes = vocab[column]
        if codes is None:
            matrix[:, j] = pd.to_numeric(values, errors="coerce")
        else:
            matrix[:, j] = np.fromiter(
                (codes.get(v, np.nan) for v in values), np.float64, len(values)
            )
    return matrix


def raw_lightgbm_one_source(
    train: pd.DataFrame, test: pd.DataFrame, settings: Settings
) -> np.ndarray:
    """Plain LightGBM on a source's raw columns: numbers as numbers, text as categories."""
    import lightgbm as lgb

    columns = [c for c in train.columns if c.startswith(RAW_PREFIX) and train[c].notna().any()]
    vocab: dict[str, dict | None] = {}
    for column in columns:
        numeric = pd.to_numeric(train[column], errors="coerce")
        if numeric.notna().mean() > 0.99:
            vocab[column] = None
        else:
            vocab[column] = {v: i for i, v in enumerate(train[column].dropna().unique())}
    categorical = [j for j, c in enumerate(columns) if vocab[c] is not None]
    data = lgb.Dataset(
        _raw_matrix(train, columns, vocab),
        label=np.log(train["salary_usd"].to_numpy(float)),
        categorical_feature=categorical,
    )
    booster = lgb.train(
        dict(settings.model.params), data, num_boost_round=settings.model.num_boost_round
    )
    estimates = booster.predict(
        _raw_matrix(test, columns, vocab), num_threads=fit_threads(settings)
    )
    return np.exp(estimates)


def global_median(train: pd.DataFrame, test: pd.DataFrame, settings: Settings) -> np.ndarray:
    return np.full(len(test), float(train["salary_usd"].median()))


def group_median(train: pd.DataFrame, test: pd.DataFrame, settings: Settings) -> np.ndarray:
    """Median of the most specific backoff group with enough training records."""
    config = settings.evaluation
    out = np.full(len(test), np.nan)
    for keys in config.group_median_backoff:
        stats = train.groupby(keys, dropna=False)["salary_usd"].agg(["median", "size"])
        stats = stats[stats["size"] >= config.group_median_min_count]
        joined = test[keys].join(stats, on=keys)["median"].to_numpy(float)
        out = np.where(np.isnan(out), joined, out)
    return np.where(np.isnan(out), float(train["salary_usd"].median()), out)


PREDICTORS: dict[str, Predictor] = {
    FUSED_MODEL: fused_lightgbm,
    SINGLE_SOURCE_MODEL: _per_source(fused_lightgbm),
    RAW_MODEL: _per_source(raw_lightgbm_one_source),
    GROUP_MEDIAN_MODEL: group_median,
    GLOBAL_MEDIAN_MODEL: global_median,
}
