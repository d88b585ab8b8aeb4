"""Honest evaluation: grouped K-fold CV, per source, always next to baselines.

Folds are assigned by ``group_id`` (a record, its collapsed repeats and a
posting's reposts share one), stratified by source, so no copy of a record
sits on both sides of a split. Every model below is scored on the same folds:

- ``fused_lightgbm``: the product: one LightGBM on both sources' features.
- ``single_source``: the same features and model, trained on one source only.
- ``raw_lightgbm``: plain LightGBM on one source's raw (non-leaky) columns.
- ``group_median``: median salary of the most specific group with enough
  training records (backoff order from the config).
- ``global_median``: the training median.

One pass over the folds does it all: a fold's fused model and the range
procedure share that fold's feature builder and matrices (both fit on the
fold's training rows only), the range evaluation takes the fused model's
out-of-fold estimates, and every fit is a job on the worker pool
(``salarymodel.evaluation.workers``) next to the other folds' fits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, as_completed
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from salarymodel.config import Settings
from salarymodel.core.features import FeatureBuilder
from salarymodel.core.model import SalaryModel
from salarymodel.core.timing import Stopwatch
from salarymodel.data.role_family import with_role_family
from salarymodel.evaluation.backtest import (
    BacktestFold,
    BacktestReport,
    assemble,
    backtest_folds,
    drift_corrected,
    pool_range_rows,
)
from salarymodel.evaluation.folds import assign_folds
from salarymodel.evaluation.workers import for_workers, worker_pool
from salarymodel.vocabulary import ALL

RAW_PREFIX = "raw."
MODEL_NAMES = ("fused_lightgbm", "single_source", "raw_lightgbm", "group_median", "global_median")

Predictor = Callable[[pd.DataFrame, pd.DataFrame, Settings], np.ndarray]


def metrics(salary_usd: np.ndarray, estimate_usd: np.ndarray) -> dict[str, float]:
    """R² on log salary, MAE in USD and median absolute percentage error (%)."""
    y, p = np.log(salary_usd), np.log(estimate_usd)
    ss_res = float(np.sum((y - p) ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    return {
        "n": len(y),
        "r2_log": 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan"),
        "mae_usd": float(np.mean(np.abs(salary_usd - estimate_usd))),
        "mdape": float(np.median(np.abs(estimate_usd - salary_usd) / salary_usd) * 100),
    }


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
    "fused_lightgbm": fused_lightgbm,
    "single_source": _per_source(fused_lightgbm),
    "raw_lightgbm": _per_source(raw_lightgbm_one_source),
    "group_median": group_median,
    "global_median": global_median,
}


# ----- cross-validation -------------------------------------------------------
@dataclass
class EvaluationReport:
    """Per-model, per-source CV metrics and the fused model's out-of-fold estimates."""

    table: pd.DataFrame
    oof: dict[str, np.ndarray]
    folds: np.ndarray
    salary: np.ndarray
    sources: np.ndarray
    seconds: dict[str, float] = field(default_factory=dict)
    # Calibrated ranges vs constant bands (``evaluate_ranges``' table) when
    # the same pass evaluated them, and the seconds its jobs took.
    ranges: pd.DataFrame | None = None
    range_seconds: float = 0.0
    # The rolling out-of-time backtest, when the same pass ran it.
    backtest: BacktestReport | None = None
    # With ranges: one row per record, its fold, keys, salary and the fused
    # model's out-of-fold estimate and calibrated range (``row_keys``).
    cv_rows: pd.DataFrame | None = None
    # Per-group accuracy, ranges and percentile check (``group_evaluation``),
    # and the per-row frames they were measured on (for the percentile plot).
    groups: dict[str, object] | None = None
    group_rows: dict[str, pd.DataFrame] | None = None
    # Each record's group (a record's repeats, a posting's reposts): the
    # verdicts' bootstrap resamples whole groups. Aligned with ``oof``.
    group_ids: np.ndarray | None = None
    # The fused model against its rivals with the MAE difference and its
    # paired interval (``salarymodel.promotion.verdicts``), once computed.
    verdicts: list[dict[str, object]] | None = None

    def metric(self, model: str, source: str, name: str) -> float:
        row = self.table[(self.table["model"] == model) & (self.table["source"] == source)]
        return float(row[name].iloc[0])

    def folds_won(self, model: str, other: str, source: str) -> int:
        """In how many folds ``model`` has a lower MAE than ``other`` on ``source``."""
        mask = (self.sources == source) if source != ALL else np.ones(len(self.folds), bool)
        won = 0
        for fold in np.unique(self.folds):
            in_fold = mask & (self.folds == fold)
            truth = self.salary[in_fold]
            ours = np.mean(np.abs(self.oof[model][in_fold] - truth))
            theirs = np.mean(np.abs(self.oof[other][in_fold] - truth))
            won += int(ours < theirs)
        return won

    def fusion_verdict(self) -> dict[str, dict[str, float | bool | str]]:
        """Per source: does the fused model beat single-source and raw models (MAE)?

        The effect is the CV verdict's word (``salarymodel.promotion.verdicts``: "level"
        when the paired interval spans zero), with its difference and interval;
        folds won out of K are kept as a second view.
        """
        if not {"fused_lightgbm", "single_source", "raw_lightgbm"} <= set(self.oof):
            return {}
        cv = {(v["source"], v["theirs"]): v for v in self.verdicts or [] if v["split"] == "cv"}
        verdict: dict[str, dict[str, float | bool | str]] = {}
        n_folds = len(np.unique(self.folds))
        for source in sorted(set(self.sources)):
            row: dict[str, float | bool | str] = {
                "fused_mae_usd": self.metric("fused_lightgbm", source, "mae_usd"),
                "single_source_mae_usd": self.metric("single_source", source, "mae_usd"),
                "raw_lightgbm_mae_usd": self.metric("raw_lightgbm", source, "mae_usd"),
            }
            for rival, key in (("single_source", "fusion"), ("raw_lightgbm", "raw_lightgbm")):
                won = self.folds_won("fused_lightgbm", rival, source)
                row[f"folds_won_vs_{rival}"] = f"{won}/{n_folds}"
                found = cv.get((source, rival))
                if found is not None:
                    row[f"{key}_effect"] = str(found["verdict"])
                    row[f"{key}_difference_usd"] = float(found["difference"])  # type: ignore[arg-type]
                    row[f"{key}_interval_usd"] = f"[{found['low']:+,.0f}, {found['high']:+,.0f}]"
            verdict[source] = row
        return verdict

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "table": self.table.to_dict("records"),
            "fusion": self.fusion_verdict(),
            "seconds": self.seconds,
        }
        if self.backtest is not None:
            out["backtest"] = self.backtest.to_dict()
        if self.groups is not None:
            out["groups"] = self.groups
        if self.verdicts is not None:
            out["verdicts"] = self.verdicts
        return out


def cross_validate(
    records: pd.DataFrame,
    settings: Settings,
    models: tuple[str, ...] = MODEL_NAMES,
    progress: Callable[[str], None] | None = None,
    ranges: bool = False,
    pool: Executor | None = None,
    backtest: bool = False,
    fitter: Fitter | None = None,
) -> EvaluationReport:
    """Score every model on the same grouped folds, per source and overall.

    With ``ranges``, the calibrated ranges are evaluated in the same pass
    (``report.ranges``, see :func:`evaluate_ranges`). With ``backtest``, the
    rolling out-of-time backtest (``salarymodel.evaluation.backtest``) runs in the same
    pass too, for the fused model and the baselines in ``models`` (and the
    ranges, with ``ranges``): ``report.backtest``. The fits run as jobs on
    ``pool`` (a caller's, which may hold its own jobs too), else on a pool
    of ``settings.evaluation.workers`` threads; or where ``fitter`` fits
    (a Dask cluster: ``distributed.DaskFitter``). Whichever fits, the folds,
    the assembly of the estimates and every table below are this code.
    """
    fitter = fitter or LocalFitter(settings, pool)
    models = fitter.models(models, progress)
    records = with_role_family(records.reset_index(drop=True), settings)
    folds = assign_folds(records, settings.evaluation.n_folds, settings.evaluation.seed)
    time_folds = backtest_folds(records, settings.evaluation.backtest) if backtest else []
    time_models = backtest_models(models)
    results = fitter.run_splits(records, folds, time_folds, models, time_models, ranges, progress)
    oof = {name: np.full(len(records), np.nan) for name in models}
    seconds = dict.fromkeys(models, 0.0)
    cv_rows: list[dict[str, object]] = []
    band = {side: np.full(len(records), np.nan) for side in ("estimate_usd", "low_usd", "high_usd")}
    range_seconds = 0.0
    for (name, fold), result in results.items():
        if name.startswith(BACKTEST_PREFIX):
            range_seconds += result.range_seconds
            continue
        test_mask = folds == fold
        for model_name, estimates in result.estimates.items():
            if model_name in oof:
                oof[model_name][test_mask] = estimates
                seconds[model_name] += result.seconds
        if name == "fused_lightgbm" and ranges:
            if result.bands is not None:
                low, high = result.bands.bands["calibrated"]
                band["estimate_usd"][test_mask] = result.bands.point
                band["low_usd"][test_mask], band["high_usd"][test_mask] = low, high
            cv_rows += result.range_rows
            range_seconds += result.range_seconds
            if name not in models:  # its point model was fit for the ranges only
                range_seconds += result.seconds
    salary = records["salary_usd"].to_numpy(float)
    report = EvaluationReport(
        cv_table(records, oof), oof, folds, salary, records["source"].to_numpy(), seconds
    )
    report.group_ids = records["group_id"].to_numpy()
    if time_folds:
        report.backtest = backtest_report(records, time_folds, time_models, results, settings)
        report.seconds["backtest"] = sum(
            r.seconds for (n, _), r in results.items() if n.startswith(BACKTEST_PREFIX)
        )
    if ranges:
        report.ranges = ranges_table(cv_rows, report.backtest)
        report.range_seconds = range_seconds
        report.cv_rows = row_keys(records).assign(fold=folds, salary_usd=salary, **band)
    return report


def row_keys(records: pd.DataFrame) -> pd.DataFrame:
    """Each record's position and the keys its group is read from (per-row tables)."""
    keys = [c for c in ("source", "country", "state") if c in records.columns]
    return records[keys].reset_index(drop=True).assign(record=np.arange(len(records)))


def cv_table(records: pd.DataFrame, oof: dict[str, np.ndarray]) -> pd.DataFrame:
    """Per model and source (and all), the metrics of the out-of-fold estimates."""
    salary = records["salary_usd"].to_numpy(float)
    sources = records["source"].to_numpy()
    rows = []
    for name, estimates in oof.items():
        for source in [*sorted(set(sources)), ALL]:
            mask = np.ones(len(records), bool) if source == ALL else sources == source
            rows.append({"model": name, "source": source, **metrics(salary[mask], estimates[mask])})
    return pd.DataFrame(rows)


def ranges_table(cv_rows: list[dict[str, object]], backtest: BacktestReport | None) -> pd.DataFrame:
    """The range table: the CV folds' rows pooled, then the backtest's (per fold, pooled)."""
    parts = [_pool_folds(pd.DataFrame(cv_rows))]
    if backtest is not None and backtest.ranges is not None:
        parts.append(backtest.ranges)
    return pd.concat(parts, ignore_index=True)


# ----- the rolling out-of-time backtest ---------------------------------------------
BACKTEST_PREFIX = "backtest:"
# Single-source models would add a fit per fold and tell nothing the raw
# baseline does not: the backtest compares the product with the baselines.
BACKTEST_MODELS = ("fused_lightgbm", "raw_lightgbm", "group_median", "global_median")


def backtest_models(models: tuple[str, ...]) -> list[str]:
    """The models the backtest scores: the product, and the baselines of ``models`` it runs."""
    return ["fused_lightgbm", *(m for m in BACKTEST_MODELS[1:] if m in models)]


def _backtest_jobs(
    records: pd.DataFrame,
    folds: list[BacktestFold],
    settings: Settings,
    models: list[str],
    ranges: bool,
) -> dict[tuple[str, int], Job]:
    """One job per (model, backtest fold); the fused job also scores the ranges."""
    jobs: dict[tuple[str, int], Job] = {}
    for index, fold in enumerate(folds):
        train, test = records[fold.train], records[fold.test]
        for name in models:
            key = (BACKTEST_PREFIX + name, index)
            if name == "fused_lightgbm":
                jobs[key] = _job_fused(train, test, settings, ranges, split=fold.name)
            else:
                jobs[key] = _job_predictor(name, train, test, settings)
    return jobs


def backtest_report(
    records: pd.DataFrame,
    folds: list[BacktestFold],
    models: list[str],
    results: dict[tuple[str, int], JobResult],
    settings: Settings,
) -> BacktestReport:
    """Per-fold and pooled metrics, drift-corrected ranges and per-row estimates of the
    backtest jobs' ``results`` (keys ``BACKTEST_PREFIX + model``, fold index)."""
    estimates: dict[tuple[str, int], np.ndarray] = {}
    fold_bands: dict[int, SplitBands] = {}
    for (name, index), result in results.items():
        if not name.startswith(BACKTEST_PREFIX):
            continue
        model = name.removeprefix(BACKTEST_PREFIX)
        estimates[(model, index)] = result.estimates[model]
        if result.bands is not None:
            fold_bands[index] = result.bands
    report = assemble(records, folds, estimates, models, [])
    if fold_bands:
        coverage = settings.ranges.coverage
        ordered = [fold_bands[i] for i in range(len(folds))]
        from salarymodel.core.ranges import salary_bounds

        bounds = salary_bounds(settings)
        corrected, report.drift = drift_corrected(
            folds, ordered, coverage, bounds, settings.ranges.max_factor
        )
        rows = []
        for fold, bands in zip(folds, corrected, strict=True):
            rows += range_rows(fold.name, bands, coverage)
        report.ranges = pool_range_rows(rows)
        # Each backtest record's served-like range (stretched as the folds
        # before it measured), in the estimates' order (fold by fold).
        low, high = (np.concatenate(side) for side in zip(
            *(b.bands["calibrated"] for b in corrected), strict=True))  # fmt: skip
        report.estimates = report.estimates.assign(low_usd=low, high_usd=high)
    return report


# ----- the pass's jobs ----------------------------------------------------------
@dataclass
class JobResult:
    """What one job measured: estimates per model for its test rows, range rows, seconds."""

    estimates: dict[str, np.ndarray] = field(default_factory=dict)
    seconds: float = 0.0
    range_rows: list[dict[str, object]] = field(default_factory=list)
    range_seconds: float = 0.0
    # A backtest fold's bands: its rows are made once every fold is in (the
    # drift correction of a fold is learnt from the folds before it).
    bands: SplitBands | None = None


Job = Callable[[], JobResult]


Splits = dict[tuple[str, int], JobResult]


class Fitter(Protocol):
    """Where a pass's fits run: this machine's threads (``LocalFitter``) or a Dask cluster
    (``distributed.DaskFitter``). Cross-validation, the backtest and the final fit take one;
    what differs between the two is only where the records are and how a fit is run."""

    backend: str  # "local" or "dask", the run's ``training.backend`` tag
    seconds: dict[str, float]  # the fitter's own steps (sending the records, ...)

    def models(
        self, models: tuple[str, ...], progress: Callable[[str], None] | None
    ) -> tuple[str, ...]:
        """The models of ``models`` this fitter evaluates."""
        ...

    def session(self, records: pd.DataFrame) -> AbstractContextManager[None]:
        """Hold what the fits share (a pool of threads, records sent to workers)."""
        ...

    def job_settings(self, settings: Settings) -> Settings:
        """``settings`` as a job of this fitter runs with them (its LightGBM threads)."""
        ...

    def submit(self, job: Callable[..., Any], *args: Any) -> Future:
        """Run ``job(*args)`` next to the fits (a job of the pool), or now."""
        ...

    def fit_model(self, records: pd.DataFrame, settings: Settings) -> SalaryModel:
        """The point model and its calibrated ranges, fit on all of ``records``."""
        ...

    def run_splits(
        self,
        records: pd.DataFrame,
        folds: np.ndarray,
        time_folds: list[BacktestFold],
        models: tuple[str, ...],
        time_models: list[str],
        ranges: bool,
        progress: Callable[[str], None] | None,
    ) -> Splits:
        """Every (model, CV fold) and (``BACKTEST_PREFIX`` + model, backtest fold) result."""
        ...


class LocalFitter:
    """Fits on this machine: each (model, split) is a job on a pool of threads."""

    backend = "local"

    def __init__(self, settings: Settings, pool: Executor | None = None) -> None:
        self.settings = settings
        self.pool = pool
        self.seconds: dict[str, float] = {}

    def models(
        self, models: tuple[str, ...], progress: Callable[[str], None] | None
    ) -> tuple[str, ...]:
        """Every model: all of them fit on one machine."""
        return models

    @contextmanager
    def session(self, records: pd.DataFrame) -> Iterator[None]:
        """One pool of ``settings.evaluation.workers`` threads for every job of the pass."""
        if self.pool is not None:
            yield
            return
        with worker_pool(self.settings) as pool:
            self.pool = pool
            try:
                yield
            finally:
                self.pool = None

    def job_settings(self, settings: Settings) -> Settings:
        """A worker's share of the LightGBM threads (``workers.for_workers``)."""
        return for_workers(settings)

    def submit(self, job: Callable[..., Any], *args: Any) -> Future:
        """A job on the pool, next to the folds' fits."""
        if self.pool is None:
            raise RuntimeError("LocalFitter.submit needs an open session")
        return self.pool.submit(job, *args)

    def fit_model(self, records: pd.DataFrame, settings: Settings) -> SalaryModel:
        """Vocabulary, point model and calibrated ranges on ``records``, in this thread."""
        builder = FeatureBuilder.fit(records, settings.features)
        matrix = builder.transform(records)
        model = SalaryModel.fit(
            records, builder, settings.model, matrix, country_levels=settings.country_levels
        )
        model.fit_ranges(records, matrix, settings)
        return model

    def run_splits(
        self,
        records: pd.DataFrame,
        folds: np.ndarray,
        time_folds: list[BacktestFold],
        models: tuple[str, ...],
        time_models: list[str],
        ranges: bool,
        progress: Callable[[str], None] | None,
    ) -> Splits:
        """One job per (model, split) on the pool; frames cut before any job runs."""
        shared = for_workers(self.settings)
        jobs = _fold_jobs(records, folds, shared, models, ranges)
        jobs |= _backtest_jobs(records, time_folds, shared, time_models, ranges)
        pool = self.pool
        with nullcontext(pool) if pool is not None else worker_pool(self.settings) as executor:
            return _run_jobs(executor, jobs, progress)


# Longest jobs first, so that neither worker is left with a long one at the end.
_JOB_ORDER = ("fused_lightgbm", "single_source", "raw_lightgbm")


def _fold_jobs(
    records: pd.DataFrame,
    folds: np.ndarray,
    settings: Settings,
    models: tuple[str, ...],
    ranges: bool,
) -> dict[tuple[str, int], Job]:
    """One job per (model, fold).

    The fused model's job also evaluates the ranges on its fold (same
    features, its estimates as the ranges' centres); it runs whenever either
    is asked for. Frames are cut here, before any job runs, so that jobs
    only read their own rows.
    """
    jobs: dict[tuple[str, int], Job] = {}
    names = [n for n in models if n != "fused_lightgbm"]
    if "fused_lightgbm" in models or ranges:
        names.insert(0, "fused_lightgbm")
    for fold in range(settings.evaluation.n_folds):
        test_mask = folds == fold
        train, test = records[~test_mask], records[test_mask]
        for name in names:
            if name == "fused_lightgbm":
                jobs[(name, fold)] = _job_fused(train, test, settings, ranges)
            else:
                jobs[(name, fold)] = _job_predictor(name, train, test, settings)
    return jobs


def _job_predictor(name: str, train: pd.DataFrame, test: pd.DataFrame, settings: Settings) -> Job:
    def run() -> JobResult:
        clock = Stopwatch()
        estimates = PREDICTORS[name](train, test, settings)
        return JobResult({name: estimates}, clock.elapsed())

    return run


def _job_fused(
    train: pd.DataFrame, test: pd.DataFrame, settings: Settings, ranges: bool, split: str = "cv"
) -> Job:
    def run() -> JobResult:
        clock = Stopwatch()
        features = fold_features(train, test, settings)
        point = fused_lightgbm(train, test, settings, features)
        result = JobResult({"fused_lightgbm": point}, clock.elapsed())
        if ranges and split == "cv":
            clock = Stopwatch()
            # The bands are kept: each record's range goes into the per-row table.
            result.bands = range_bands(train, test, point, settings, features)
            result.range_rows = range_rows(split, result.bands, settings.ranges.coverage)
            result.range_seconds = clock.elapsed()
        elif ranges:
            clock = Stopwatch()
            result.bands = range_bands(train, test, point, settings, features)
            result.range_seconds = clock.elapsed()
        return result

    return run


def _run_jobs(
    executor: Executor, jobs: dict[tuple[str, int], Job], progress: Callable[[str], None] | None
) -> dict[tuple[str, int], JobResult]:
    """Run every job; results in the jobs' order, whichever finishes first.

    Progress is told from this thread as each job finishes.
    """
    rank = {name: i for i, name in enumerate(_JOB_ORDER)}

    def order(key: tuple[str, int]) -> tuple[int, int]:
        return rank.get(key[0].removeprefix(BACKTEST_PREFIX), 99), key[1]

    futures = {executor.submit(jobs[key]): key for key in sorted(jobs, key=order)}
    results: dict[tuple[str, int], JobResult] = {}
    try:
        for future in as_completed(futures):
            name, fold = futures[future]
            results[(name, fold)] = future.result()
            if progress:
                what = f"{name} fold {fold + 1}"
                progress(f"cross-validation: {len(results)}/{len(jobs)} jobs done ({what})")
    except BaseException:
        for future in futures:
            future.cancel()
        raise
    return {key: results[key] for key in jobs}


# ----- calibrated ranges --------------------------------------------------------
def width_at_coverage(
    method: str,
    salary: np.ndarray,
    point: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    target: float,
) -> float:
    """Mean width after rescaling a band's scale so it covers exactly ``target`` of the data.

    For comparing methods at equal coverage only (it looks at the test salaries);
    served ranges are never rescaled this way. The USD band is rescaled in
    USD; the others in log units, each side keeping its own half-width.
    """
    if method == "constant_usd":
        half = high - point
        factor = np.quantile(np.abs(salary - point) / half, target)
        return float(np.mean(2 * factor * half))
    below = np.maximum(np.log(point / low), 1e-9)
    above = np.maximum(np.log(high / point), 1e-9)
    gap = np.log(salary / point)
    factor = np.quantile(np.maximum(-gap / below, gap / above), target)
    return float(np.mean(point * (np.exp(factor * above) - np.exp(-factor * below))))


def _interval_rows(
    split: str,
    salary: np.ndarray,
    sources: np.ndarray,
    bands: dict[str, tuple[np.ndarray, np.ndarray]],
    point: np.ndarray,
    target: float,
) -> list[dict[str, object]]:
    rows = []
    for method, (low, high) in bands.items():
        for source in [*sorted(set(sources)), ALL]:
            mask = np.ones(len(salary), bool) if source == ALL else sources == source
            truth, lo, hi = salary[mask], low[mask], high[mask]
            rows.append(
                {
                    "split": split,
                    "method": method,
                    "source": source,
                    "n": int(mask.sum()),
                    "coverage": float(np.mean((truth >= lo) & (truth <= hi))),
                    "below_low": float(np.mean(truth < lo)),
                    "above_high": float(np.mean(truth > hi)),
                    "mean_width_usd": float(np.mean(hi - lo)),
                    "width_at_target_usd": width_at_coverage(
                        method, truth, point[mask], lo, hi, target
                    ),
                }
            )
    return rows


def constant_bands(
    point: np.ndarray,
    sources: np.ndarray,
    calib_truth: np.ndarray,
    calib_point: np.ndarray,
    calib_sources: np.ndarray,
    coverage: float,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Constant ±k bands (USD and multiplicative), k per source from held-out residuals."""
    usd_k, log_k = np.zeros(len(point)), np.zeros(len(point))
    for source in np.unique(sources):
        in_calib = calib_sources == source
        usd_k[sources == source] = np.quantile(
            np.abs(calib_truth[in_calib] - calib_point[in_calib]), coverage
        )
        log_k[sources == source] = np.quantile(
            np.abs(np.log(calib_truth[in_calib]) - np.log(calib_point[in_calib])), coverage
        )
    return {
        "constant_usd": (np.maximum(point - usd_k, 0.0), point + usd_k),
        "constant_log": (point * np.exp(-log_k), point * np.exp(log_k)),
    }


@dataclass
class SplitBands:
    """A split's test salaries, point estimates and each range method's (low, high)."""

    salary: np.ndarray
    sources: np.ndarray
    point: np.ndarray
    bands: dict[str, tuple[np.ndarray, np.ndarray]]


def _range_split(
    train: pd.DataFrame,
    test: pd.DataFrame,
    point_test: np.ndarray | None,
    settings: Settings,
    split: str,
    features: FoldFeatures | None = None,
) -> list[dict[str, object]]:
    """Fit the range procedure on ``train`` exactly as production does; score on ``test``."""
    bands = range_bands(train, test, point_test, settings, features)
    return range_rows(split, bands, settings.ranges.coverage)


def range_bands(
    train: pd.DataFrame,
    test: pd.DataFrame,
    point_test: np.ndarray | None,
    settings: Settings,
    features: FoldFeatures | None = None,
) -> SplitBands:
    """The calibrated ranges and constant bands of ``test``, every one fit on ``train``.

    ``features`` are the split's builder and matrices when already made (fit
    on ``train`` only); ``point_test`` the point model's estimates for
    ``test`` when already made. The constant bands get the same held-out
    calibration residuals.
    """
    from salarymodel.core.ranges import calibration_split, fit_range_model, salary_bounds

    builder, train_matrix, test_matrix = features or fold_features(train, test, settings)
    from salarymodel.core.country_levels import fit_levels

    # The range model's levels: fit on ``train`` only, as the final model's are.
    levels = fit_levels(train, settings.country_levels)
    model = SalaryModel(builder=builder, booster=None, levels=levels)
    threads = fit_threads(settings)
    calib_points: dict[str, np.ndarray] = {}

    def point_on(train_rows: np.ndarray, calib_rows: np.ndarray) -> np.ndarray:
        proper = SalaryModel.fit(
            train[train_rows],
            builder,
            settings.model,
            train_matrix[train_rows],
            country_levels=settings.country_levels,
        )
        calib_points["usd"] = np.exp(proper.predict_log(train_matrix[calib_rows], threads))
        return calib_points["usd"]

    model.ranges = fit_range_model(
        train,
        train_matrix,
        builder,
        settings.ranges,
        settings.evaluation.seed,
        point_on,
        salary_bounds(settings),
        levels,
        settings.country_levels,
    )
    if point_test is None:
        full = SalaryModel.fit(
            train, builder, settings.model, train_matrix, country_levels=settings.country_levels
        )
        point_test = np.exp(full.predict_log(test_matrix, threads))
    countries = test["country"].tolist()
    low, high, _ = model.ranges.bounds(builder, test_matrix, point_test, countries, threads)
    calib = calibration_split(train, settings.ranges, settings.evaluation.seed)
    bands = {"calibrated": (low, high)}
    bands |= constant_bands(
        point_test,
        test["source"].to_numpy(),
        train["salary_usd"].to_numpy(float)[calib],
        calib_points["usd"],
        train["source"].to_numpy()[calib],
        settings.ranges.coverage,
    )
    return SplitBands(
        test["salary_usd"].to_numpy(float), test["source"].to_numpy(), point_test, bands
    )


def range_rows(split: str, split_bands: SplitBands, coverage: float) -> list[dict[str, object]]:
    """Coverage, each tail's misses and widths of every method, per source and overall."""
    salary, point, bands = split_bands.salary, split_bands.point, split_bands.bands
    rows = _interval_rows(split, salary, split_bands.sources, bands, point, coverage)
    # Conditional honesty: coverage per fifth of the estimate (lowest to highest paid).
    tiers = pd.qcut(point, 5, labels=False, duplicates="drop")
    for row in rows:
        if row["source"] != ALL:
            continue
        low_b, high_b = bands[str(row["method"])]
        inside = (salary >= low_b) & (salary <= high_b)
        row["coverage_by_pay_fifth"] = [float(inside[tiers == t].mean()) for t in range(5)]
        row["median_relative_width"] = float(np.median((high_b - low_b) / point))
    return rows


def evaluate_ranges(
    records: pd.DataFrame,
    settings: Settings,
    report: EvaluationReport | None = None,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Coverage and mean width (USD) of calibrated ranges vs constant bands.

    On the grouped CV folds, centred on the fused model's out-of-fold
    estimates, and on a time-ordered split. A ``report`` whose pass already
    evaluated them (``cross_validate(..., ranges=True)``) has the table.
    """
    if report is not None and report.ranges is not None:
        return report.ranges
    return cross_validate(records, settings, models=(), progress=progress, ranges=True).ranges


def _pool_folds(cv: pd.DataFrame) -> pd.DataFrame:
    """Pool per-fold rows: coverage and widths weighted by fold size."""
    rows = []
    for (split, method, source), group in cv.groupby(["split", "method", "source"], sort=False):
        weights = group["n"].to_numpy(float)
        row = {
            "split": split,
            "method": method,
            "source": source,
            "n": int(weights.sum()),
            "coverage": float(np.average(group["coverage"], weights=weights)),
            "below_low": float(np.average(group["below_low"], weights=weights)),
            "above_high": float(np.average(group["above_high"], weights=weights)),
            "mean_width_usd": float(np.average(group["mean_width_usd"], weights=weights)),
            "width_at_target_usd": float(np.average(group["width_at_target_usd"], weights=weights)),
        }
        if "coverage_by_pay_fifth" in group and group["coverage_by_pay_fifth"].notna().all():
            tiers = np.array(group["coverage_by_pay_fifth"].tolist())
            row["coverage_by_pay_fifth"] = np.average(tiers, axis=0, weights=weights).tolist()
            row["median_relative_width"] = float(
                np.average(group["median_relative_width"], weights=weights)
            )
        rows.append(row)
    return pd.DataFrame(rows)
