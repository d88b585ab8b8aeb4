"""The salary model bundle: feature builder + LightGBM booster on log salary.

A bundle is a folder of plain files, never a pickle:
``booster.txt`` (LightGBM's text format), ``features.json`` (vocabularies),
``metadata.json`` (training facts, metrics, the default view),
``currency.json`` (exchange rates computed from the survey, see
``salarymodel.core.currency``), ``country_levels.json`` (each source's country
pay levels, the trees' starting score: ``salarymodel.core.country_levels``) and
``manifest.json`` with the SHA-256 of each.
Loading it cannot execute code from the folder, and a file changed after
saving is refused, not served.
The files' names, the manifest and the booster reader are ``core.bundle_files``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from salarymodel.config.model import CountryLevelsConfig, ModelConfig
from salarymodel.config.settings import Settings
from salarymodel.core.bundle_files import (
    BOOSTER_FILE,
    FEATURES_FILE,
    MANIFEST_FILE,
    METADATA_FILE,
    BoosterReader,
    BundleError,
    lightgbm_booster,
    verify_manifest,
    write_manifest,
)
from salarymodel.core.country_levels import CountryLevels, fit_levels
from salarymodel.core.currency import CurrencyTable
from salarymodel.core.features import FeatureBuilder
from salarymodel.core.job_defaults import in_view, model_view, view_of
from salarymodel.core.percentile_calibration import PercentileCalibration
from salarymodel.core.periods import recency_weights
from salarymodel.core.range_calibration import fit_range_model
from salarymodel.core.ranges import (
    RANGES_FILE,
    RangeModel,
    salary_bounds,
    salary_percentile,
    source_names,
)
from salarymodel.core.track_record import GroupRecord, TrackRecord
from salarymodel.vocabulary import thin_support_warning

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class RangeBasis:
    """The calibration group a range (and its percentile) rests on, and its records."""

    group: str
    records: int


def _view(job: Mapping[str, object]) -> str | None:
    return view_of(job, None)


@dataclass
class Scored:
    """Jobs scored as one batch: USD estimates and, on a model with ranges, the rest.

    What ``SalaryModel.score`` makes and every estimate path reads (one job,
    a batch of jobs, a frame of records, the service's batches).
    """

    estimate: np.ndarray
    warnings: list[list[str]]  # per row; empty when the caller keeps none
    low: np.ndarray | None = None
    high: np.ndarray | None = None
    support: np.ndarray | None = None
    thin: np.ndarray | None = None
    coverage: float | None = None
    bases: list[RangeBasis] | None = None
    # Per row, its pay-level group's record on a later year (``core.track_record``).
    track: list[GroupRecord | None] | None = None

    def at(self, i: int, view: str | None) -> Estimate:
        """Row ``i`` as one job's ``Estimate``."""
        if self.low is None or self.high is None or self.support is None or self.thin is None:
            return Estimate(float(self.estimate[i]), None, None, None, None, None, view,
                            self.warnings[i])  # fmt: skip
        return Estimate(
            estimate_usd=float(self.estimate[i]),
            low_usd=float(self.low[i]),
            high_usd=float(self.high[i]),
            coverage=self.coverage,
            support=int(self.support[i]),
            thin_support=bool(self.thin[i]),
            view=view,
            warnings=self.warnings[i],
            range_basis=None if self.bases is None else self.bases[i],
            track_record=None if self.track is None else self.track[i],
        )


@dataclass
class Estimate:
    """One job's estimate: the number, its calibrated range and how well supported it is."""

    estimate_usd: float
    low_usd: float | None
    high_usd: float | None
    coverage: float | None
    support: int | None
    thin_support: bool | None
    view: str | None
    warnings: list[str]
    # The calibration cell the range rests on (in words) and its record count.
    range_basis: RangeBasis | None = None
    # How estimates of the job's pay-level group fared on a later year.
    track_record: GroupRecord | None = None

    def percentile(self, salary_usd: float) -> float | None:
        """Where a yearly USD salary falls (0-100) in this job's predicted
        distribution; None without a calibrated range."""
        if self.low_usd is None or self.high_usd is None or self.coverage is None:
            return None
        return salary_percentile(
            salary_usd, self.estimate_usd, self.low_usd, self.high_usd, self.coverage
        )


@dataclass
class SalaryModel:
    """A trained point-estimate model and everything needed to encode its inputs."""

    builder: FeatureBuilder
    booster: Any  # lightgbm.Booster, or a NativeBooster when served
    metadata: dict[str, object] = field(default_factory=dict)
    ranges: RangeModel | None = None
    # Exchange rates and each country's currency (None in bundles saved before them).
    currency: CurrencyTable | None = None
    # The served percentile's calibration map (None: raw percentiles, older bundles).
    percentiles: PercentileCalibration | None = None
    # Each source's country levels, fit on the same records as the booster:
    # its starting score (added to the trees' output) and the range's pay
    # groups. None: off, or a bundle saved before them.
    levels: CountryLevels | None = None
    # Each pay-level group's backtest record (None: a bundle saved before it).
    track_record: TrackRecord | None = None

    @classmethod
    def fit(
        cls,
        records: pd.DataFrame,
        builder: FeatureBuilder,
        model_config: ModelConfig,
        matrix: np.ndarray | None = None,
        *,
        country_levels: CountryLevelsConfig,
    ) -> SalaryModel:
        """Train on canonical records (log of ``salary_usd`` is the target).

        With ``country_levels.enabled`` the trees start from each record's
        source-and-country level (``init_score``), computed on these records
        only, and learn what it leaves. With ``country_levels.recency_training``
        later records weigh more (pay drifts: the latest period is the best guide).
        """
        import lightgbm as lgb

        features = builder.transform(records) if matrix is None else matrix
        target = np.log(records["salary_usd"].to_numpy(float))
        levels = fit_levels(records, country_levels)
        init = None if levels is None or not levels.as_offset else levels.offset(builder, features)
        data = lgb.Dataset(
            features,
            label=target,
            init_score=init,
            weight=recency_weights(records, country_levels.recency_half_life_months)
            if country_levels.recency_training
            else None,
            feature_name=[safe_name(c) for c in builder.columns],
            categorical_feature=builder.categorical_indices,
            free_raw_data=True,
        )
        booster = lgb.train(
            dict(model_config.params), data, num_boost_round=model_config.num_boost_round
        )
        return cls(builder=builder, booster=booster, levels=levels)

    def fit_ranges(
        self, records: pd.DataFrame, matrix: np.ndarray, settings: Settings
    ) -> SalaryModel:
        """Attach calibrated ranges (quantile boosters + conformal corrections)."""

        def point_on(train_rows: np.ndarray, calib_rows: np.ndarray) -> np.ndarray:
            proper = SalaryModel.fit(
                records[train_rows],
                self.builder,
                settings.model,
                matrix[train_rows],
                country_levels=settings.country_levels,
            )
            threads = int(settings.ranges.params.get("num_threads", 0))
            return np.exp(proper.predict_log(matrix[calib_rows], threads))

        self.ranges = fit_range_model(
            records,
            matrix,
            self.builder,
            settings.ranges,
            settings.evaluation.seed,
            point_on,
            salary_bounds(settings),
            self.levels,
            settings.country_levels,
        )
        return self

    # ----- scoring: a matrix, one job, or a frame of records -----------------
    def predict_log(self, matrix: np.ndarray, num_threads: int = 0) -> np.ndarray:
        """Log-salary predictions for a feature matrix.

        ``num_threads`` must be what every other LightGBM call of the process
        passes: LightGBM keeps it in one process-wide variable that each call
        sets, and a fit running on another thread while a call changes it
        overruns its per-thread buffers (a segfault, seen in training). 0 is
        OpenMP's default (serving); a training pass passes its fits' count.
        With country levels, each row's level is added to the trees' output.
        """
        raw = self.booster.predict(matrix, num_threads=num_threads)
        if self.levels is None or not self.levels.as_offset:
            return raw
        return raw + self.levels.offset(self.builder, matrix)

    def score(
        self,
        matrix: np.ndarray,
        countries: list,
        warnings: list[list[str]] | None = None,
        num_threads: int = 0,
        ranges: bool = True,
        bases: bool = True,
    ) -> Scored:
        """The one scoring core: estimates (USD) of encoded jobs and, with ``ranges`` on a
        model that has them, their ranges, support and (with ``bases``) range bases.

        A job with thin support gets its warning in ``warnings`` (one list per row,
        the encoder's). ``num_threads`` as for :meth:`predict_log`.
        """
        estimate = np.exp(self.predict_log(matrix, num_threads))
        scored = Scored(estimate, warnings if warnings is not None else [])
        if not ranges or self.ranges is None:
            return scored
        low, high, support = self.ranges.bounds(
            self.builder, matrix, estimate, countries, num_threads
        )
        thin = support < self.ranges.thin_below
        if warnings is not None:
            for i in np.flatnonzero(thin).tolist():
                warnings[i].append(thin_support_warning(int(support[i])))
        scored.low, scored.high, scored.support, scored.thin = low, high, support, thin
        scored.coverage = self.ranges.coverage
        if bases:
            scored.bases = [
                RangeBasis(*b) for b in self.ranges.basis(self.builder, matrix, support)
            ]
            if self.track_record is not None and self.percentiles is not None:
                pairs = zip(source_names(self.builder, matrix).tolist(), countries, strict=True)
                groups = [self.percentiles.group_of(*pair) for pair in pairs]
                scored.track = self.track_record.for_rows(groups, warnings)
        return scored

    def _in_view(self, job: Mapping[str, object]) -> Mapping[str, object]:
        """A job without a ``source`` gets the model's default view (``job_defaults``)."""
        return in_view(job, model_view(self.metadata))

    def estimate_job(self, job: Mapping[str, object]) -> Estimate:
        """Estimate, calibrated range and support for one job given as a dict.

        A job without a ``source`` gets the configured default view.
        """
        job = self._in_view(job)
        encoded = self.builder.encode_job(job)
        scored = self.score(encoded.row.reshape(1, -1), [encoded.country], [encoded.warnings])
        return scored.at(0, _view(job))

    def estimate_jobs(self, jobs: Sequence[Mapping[str, object]]) -> list[Estimate]:
        """Estimates for many jobs given as dicts, in order, scored as one batch.

        The service's batch encoding (``FeatureBuilder.encode_many``) and one
        call per booster: the same numbers and warnings as :meth:`estimate_job`
        job by job (a test checks), without its per-job overhead.
        """
        if not jobs:
            return []
        jobs = [self._in_view(j) for j in jobs]
        matrix, warnings, countries = self.builder.encode_many(jobs)
        scored = self.score(matrix, countries, warnings)
        return [scored.at(i, _view(job)) for i, job in enumerate(jobs)]

    def estimate_records(
        self, records: pd.DataFrame, num_threads: int = 0, ranges: bool = True
    ) -> pd.DataFrame:
        """Estimates (USD) for canonical records, vectorised, on their index.

        Columns: ``estimate_usd``, and with ``ranges`` on a model that has
        them ``low_usd``, ``high_usd``, ``support`` and ``thin_support``.
        ``num_threads`` as for :meth:`predict_log` (a training pass passes its fits').
        """
        import pandas as pd

        matrix = self.builder.transform(records)
        countries = records["country"].tolist() if ranges and self.ranges is not None else []
        scored = self.score(matrix, countries, None, num_threads, ranges, bases=False)
        out = pd.DataFrame({"estimate_usd": scored.estimate}, index=records.index)
        if scored.low is not None:
            out["low_usd"], out["high_usd"] = scored.low, scored.high
            out["support"] = scored.support
            out["thin_support"] = scored.thin
        return out

    # ----- storage --------------------------------------------------------
    def save(self, folder: Path) -> Path:
        """Write the bundle as plain files into ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(folder / BOOSTER_FILE))
        (folder / FEATURES_FILE).write_text(json.dumps(self.builder.to_dict(), indent=1))
        (folder / METADATA_FILE).write_text(json.dumps(self.metadata, indent=1, default=str))
        if self.ranges is not None:
            self.ranges.save(folder)
        if self.currency is not None:
            self.currency.save(folder)
        if self.percentiles is not None:
            self.percentiles.save(folder)
        if self.levels is not None:
            self.levels.save(folder)
        if self.track_record is not None:
            self.track_record.save(folder)
        write_manifest(folder)
        return folder

    @classmethod
    def load(
        cls,
        folder: Path,
        read_booster: BoosterReader | None = None,
        read_point_booster: BoosterReader | None = None,
    ) -> SalaryModel:
        """Read a bundle written by :meth:`save`; a clear error when files are bad.

        ``read_booster`` reads each LightGBM file (default ``lightgbm.Booster``);
        ``read_point_booster``, when given, reads the point booster instead
        (the service prepares its explanation path there).
        """
        for name in (BOOSTER_FILE, FEATURES_FILE, METADATA_FILE, MANIFEST_FILE):
            if not (folder / name).is_file():
                raise BundleError(f"model bundle {folder} is missing {name}")
        verify_manifest(folder)
        read = read_booster or lightgbm_booster
        try:
            booster = (read_point_booster or read)(folder / BOOSTER_FILE)
            builder = FeatureBuilder.from_dict(json.loads((folder / FEATURES_FILE).read_text()))
            metadata = json.loads((folder / METADATA_FILE).read_text())
            ranges = RangeModel.load(folder, read) if (folder / RANGES_FILE).exists() else None
            currency = CurrencyTable.load(folder)
            percentiles = PercentileCalibration.load(folder)
            levels = CountryLevels.load(folder)
            track_record = TrackRecord.load(folder)
            if ranges is not None:
                ranges.levels = levels
        except (BundleError, ValueError, KeyError, OSError, RuntimeError) as error:
            raise BundleError(f"model bundle {folder} is unreadable: {error}") from error
        if booster.num_feature() != len(builder.columns):
            raise BundleError(
                f"model bundle {folder}: booster expects {booster.num_feature()} features, "
                f"vocabulary gives {len(builder.columns)}"
            )
        return cls(
            builder=builder,
            booster=booster,
            metadata=metadata,
            ranges=ranges,
            currency=currency,
            percentiles=percentiles,
            levels=levels,
            track_record=track_record,
        )


def safe_name(column: str) -> str:
    """A feature column's name as LightGBM accepts it (no JSON special characters)."""
    return "".join(ch if ch.isalnum() else "_" for ch in column)
