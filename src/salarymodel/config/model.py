"""Model settings: boosters, ranges, country levels, explanations, percentiles, China."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from salarymodel.config.base import Strict


class ModelConfig(Strict):
    params: dict[str, str | int | float]
    num_boost_round: int


class RangesConfig(Strict):
    coverage: float = Field(gt=0.0, lt=1.0)
    calibration_fraction: float = Field(gt=0.0, lt=0.5)
    calibration: Literal["random", "latest"]
    latest_months: int = Field(ge=1, le=12)
    recency_half_life_months: float | None = Field(gt=0.0)
    max_factor: float = Field(gt=1.0)
    thin_support_below: int
    min_calibration_cell: int
    spread_blend: float = Field(ge=0.0)
    params: dict[str, str | int | float]
    num_boost_round: int


class CountryLevelsConfig(Strict):
    """Per-source country pay levels (``salarymodel.core.country_levels``)."""

    # The fused model starts each record from its source's country level
    # (LightGBM's init_score); off: the trees start from one global average.
    enabled: bool
    # Records-equivalent weight of the parent level (UN sub-region, then world)
    # in a country's (region's) shrunk level.
    prior_strength: float = Field(gt=0.0)
    # Upper edges of the pay-level groups, as a share of the US level of the
    # same source; the US is a group of its own.
    group_edges: list[float] = Field(min_length=1)
    # Each tail's conformal correction also per pay-level group (within
    # source and support), falling back as ``ranges.min_calibration_cell`` says.
    calibrate_ranges: bool
    # The range's quantile boosters start from the levels too (else from one
    # global average, as before).
    quantile_start: bool
    # A job dated after the last training year gets its source's yearly pay
    # growth for the years past it (``salarymodel.core.year_trend``).
    trend: bool
    # Records-equivalent weight, one year from the mean year, of "no growth".
    trend_prior_strength: float = Field(gt=0.0)
    # At most this many years past the last training year are carried.
    trend_max_years: float = Field(ge=0.0)
    # Drift: records weigh 1/2 per this many months back from their source's
    # latest record (null: all weigh the same), in the point model's training
    # (recency_training) and in the country levels' medians (recency_levels).
    recency_half_life_months: float | None = Field(gt=0.0)
    recency_training: bool
    recency_levels: bool

    @model_validator(mode="after")
    def _recency_needs_half_life(self) -> CountryLevelsConfig:
        if (self.recency_training or self.recency_levels) and self.recency_half_life_months is None:
            raise ValueError("recency_training or recency_levels needs recency_half_life_months")
        return self


class ExplanationsConfig(Strict):
    sample_size: int
    min_count: int


class PercentileCalibrationConfig(Strict):
    """The map from a range's raw percentile to a calibrated one (``percentile_calibration``)."""

    # A pay-level group gets its own map from this many out-of-fold records.
    min_group_records: int = Field(ge=1)
    # Points of the stored monotone map (raw -> calibrated percentile).
    knots: int = Field(ge=3)
    # The drift map one period ahead (core.percentile_drift): pseudo-records
    # shrinking a (source, group)'s map toward its source's, the source's toward
    # none; a (source, group) gets its own map from this many backtest records.
    drift_prior: float = Field(ge=0)
    drift_min_group_records: int = Field(ge=1)
    # The sources whose percentile gets a drift map (the others keep the in-time one).
    drift_sources: list[str]


class ChinaRoleConfig(Strict):
    """One role of the Maimai 2023 AIGC talent report and the title words that mean it."""

    role: str  # a key of the report's role pay (src/salarymodel/core/maimai_aigc_2023.json)
    keywords: list[str] = Field(min_length=1)


class ChinaReferenceConfig(Strict):
    """A Chinese job's role, read from its title, for the Maimai report's pay (china_reference)."""

    roles: list[ChinaRoleConfig] = Field(min_length=1)
    # Role family -> report role, for titles no keyword matches.
    families: dict[str, str]
