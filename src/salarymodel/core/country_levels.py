"""Per-source country pay levels: the trees' starting score and the pay-level groups.

Why: ``country`` is one category shared by both sources, and the sources
disagree about it (relative to the US, India pays 0.92 in job postings and
0.25 in the survey). Where one source has few rows of a country the other
decides its level, and lower-paid countries were pulled toward US pay.

What: for each source (and ``*``, all sources pooled), the median log salary
of the world, of each UN sub-region and of each country, each shrunk toward
its parent by count (empirical Bayes with a prior worth ``prior_strength``
records): level = (n x median + k x parent level) / (n + k). A country's
parent is its sub-region, a sub-region's the world. Computed on the rows a
model is fit on, never on the rows it is scored on.

How it is used:
- ``row_levels`` is each encoded row's level, looked up from the matrix alone
  (source code, country code, region code), so training, evaluation, the
  Dask path and serving add exactly the same number. A country outside the
  feature vocabulary (encoded "other") gets its region's level, as its
  matrix row says no more; one whose region has no level either, a typical
  country's; a job without a country, the world's.
- the fused model is fit with these levels as LightGBM's ``init_score`` and
  they are added back at prediction (``SalaryModel.predict_log``);
- with ``trend``, a job dated after its source's last training year also
  gets the yearly growth of its source and pay-level group for the years past
  it (``salarymodel.core.year_trend``), each group's own, shrunk toward none:
  trees score such a job as one of the last year;
- ``groups`` names each row's pay-level group (its country's level relative
  to the US level of the same source: under 35%, 35-60%, 60-90%, 90% and
  over, the US its own group), the range's calibration cells.

Stored with the bundle as plain JSON (``country_levels.json``). No pandas at
import: serving workers load this module.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from salarymodel.config.model import CountryLevelsConfig
from salarymodel.core import periods
from salarymodel.core.features import OTHER, FeatureBuilder
from salarymodel.core.row_spec import AT
from salarymodel.core.year_trend import YearTrend, fit_trend
from salarymodel.data import geography

if TYPE_CHECKING:
    import pandas as pd

LEVELS_FILE = "country_levels.json"
LEVELS_FORMAT = 2
# Format 1 (bundles saved before the year trend) loads with no trend.
READABLE_FORMATS = (1, 2)
ANY = "*"
US = "US"
# A country given but not among the features' countries (too few records, or none).
UNLISTED = "?"


@dataclass
class SourceLevels:
    """One source's log-salary levels: world, UN sub-regions, countries (shrunk)."""

    world: float
    # The level of a typical country (the median of the countries' own medians):
    # a country the data places nowhere (no records, no region's) starts there.
    # The world level is the typical record's, the US's in a source that is
    # mostly US. None: a bundle from before it (the world level served instead).
    prior: float | None = None
    regions: dict[str, float] = field(default_factory=dict)
    countries: dict[str, float] = field(default_factory=dict)
    # Training records behind each country's level (the median's n).
    counts: dict[str, int] = field(default_factory=dict)
    # Growth per year past the last training year (none: a flat future).
    # per pay-level group of this source (a group without one: none).
    trends: dict[str, YearTrend] = field(default_factory=dict)

    def of(self, country: str | None, region: str | None) -> float:
        """The most specific level known: the country's, its region's; for a country
        given but placed nowhere (``UNLISTED``), a typical country's; else the world's."""
        if country is not None and country in self.countries:
            return self.countries[country]
        if region is not None and region in self.regions:
            return self.regions[region]
        if country is not None and self.prior is not None:
            return self.prior
        return self.world

    def us_level(self) -> float:
        return self.of(US, geography.region(US))


def shrunk(median: float, n: float, parent: float, prior_strength: float) -> float:
    """A group's median pulled toward its parent's level by count."""
    return (n * median + prior_strength * parent) / (n + prior_strength)


def weighted_median(values: np.ndarray, weights: np.ndarray | None) -> float:
    """The median of ``values``; with ``weights``, the lowest value with half the weight."""
    if weights is None:
        return float(np.median(values))
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cumulative, cumulative[-1] / 2)])


def source_levels(
    log_salary: np.ndarray,
    countries: list,
    prior_strength: float,
    weights: np.ndarray | None = None,
) -> SourceLevels:
    """Levels of one source's (or all) training rows: world, regions, countries.

    With ``weights`` (recency), each median is weighted and a level's count in
    its shrinkage is its records' summed weight: a country seen only long ago
    leans on its region more.
    """
    world = weighted_median(log_salary, weights)
    regions_of = {c: geography.region(c) for c in set(countries) if isinstance(c, str)}
    by_region: dict[str, list[int]] = {}
    by_country: dict[str, list[int]] = {}
    for index, country in enumerate(countries):
        if not isinstance(country, str):
            continue  # no country: counts toward the world level only
        by_country.setdefault(country, []).append(index)
        region = regions_of[country]
        if region is not None:
            by_region.setdefault(region, []).append(index)

    def median_and_n(rows: list[int]) -> tuple[float, float]:
        part = None if weights is None else weights[rows]
        n = len(rows) if part is None else float(part.sum())
        return weighted_median(log_salary[rows], part), n

    own = {country: median_and_n(rows) for country, rows in by_country.items()}
    # One vote per country, for a country the data places nowhere: the record
    # median of a mostly-US source is US pay. Countries whose records all weigh
    # nothing (seen only long ago) have no median.
    medians = [median for median, n in own.values() if n > 0]
    prior = float(np.median(medians)) if medians else world
    levels = SourceLevels(world=world, prior=prior)
    for region, rows in by_region.items():
        levels.regions[region] = shrunk(*median_and_n(rows), world, prior_strength)
    for country, rows in by_country.items():
        region = regions_of[country]
        parent = levels.regions.get(region, world) if region is not None else world
        levels.countries[country] = shrunk(*own[country], parent, prior_strength)
        levels.counts[country] = len(rows)
    return levels


def group_labels(edges: list[float]) -> list[str]:
    """Names of the non-US pay-level groups, lowest first ("under 35%", ..., "90%+")."""
    percents = [f"{round(e * 100)}" for e in edges]
    labels = [f"under {percents[0]}%"]
    labels += [f"{a}-{b}%" for a, b in itertools.pairwise(percents)]
    return [*labels, f"{percents[-1]}%+"]


@dataclass
class CountryLevels:
    """Each source's country levels, whether they are the model's offset, and the groups."""

    as_offset: bool
    group_edges: list[float]
    by_source: dict[str, SourceLevels]
    # Years past the last training year the trend is carried (0: no trend).
    trend_max_years: float = 0.0

    @classmethod
    def fit(cls, records: pd.DataFrame, config: CountryLevelsConfig) -> CountryLevels:
        """Levels of the given training records (per source and pooled)."""
        y = np.log(records["salary_usd"].to_numpy(float))
        countries = records["country"].astype(object).tolist()
        sources = records["source"].astype(object).to_numpy()
        years = records["year"].to_numpy(float)
        k = config.prior_strength
        half_life = config.recency_half_life_months if config.recency_levels else None
        w = periods.recency_weights(records, half_life)
        by_source = {ANY: source_levels(y, countries, k, w)}
        for source in sorted({s for s in sources.tolist() if isinstance(s, str)}):
            rows = np.flatnonzero(sources == source)
            part = None if w is None else w[rows]
            by_source[source] = source_levels(y[rows], [countries[i] for i in rows], k, part)
        fitted = cls(
            as_offset=config.enabled,
            group_edges=list(config.group_edges),
            by_source=by_source,
            trend_max_years=config.trend_max_years if config.trend else 0.0,
        )
        # Per source only: pooled, the mix of sources changes by year (2023
        # postings, 2024 survey) and reads as a 10%-a-year growth that is not.
        if config.trend:
            for source in by_source.keys() - {ANY}:
                rows = np.flatnonzero(sources == source)
                fitted.fit_trends(
                    source, y[rows], [countries[i] for i in rows], years[rows], config
                )
        return fitted

    def fit_trends(
        self,
        source: str,
        log_salary: np.ndarray,
        countries: list,
        years: np.ndarray,
        config: CountryLevelsConfig,
    ) -> None:
        """Each pay-level group's growth in ``source``, from what the levels leave.

        Per group: the survey's US pay grew up to 2023 while its lower-paid
        groups' did not (with the source's one trend, its 2024 backtest went
        from -6.1% to -0.7% in the US but from +1.5% to +7.5% at 35-60%). Every
        group's trend extends from the source's last year, where the trees stop.
        """
        levels = self.by_source[source]
        keys = {
            c: (c, geography.region(c)) if isinstance(c, str) else (None, None)
            for c in set(countries)
        }
        level = np.array([levels.of(*keys[c]) for c in countries])
        groups = np.array([self.group_of(source, *keys[c]) for c in countries], dtype=object)
        residual = log_salary - level
        last = float(np.nanmax(years)) if np.isfinite(years).any() else None
        for group in sorted(set(groups.tolist())):
            rows = groups == group
            trend = fit_trend(residual[rows], years[rows], config.trend_prior_strength)
            levels.trends[group] = YearTrend(trend.slope, last)

    # ----- per row, from the matrix alone ---------------------------------------
    def _keys(
        self, builder: FeatureBuilder, matrix: np.ndarray
    ) -> tuple[np.ndarray, list[tuple[str, str | None, str | None]]]:
        """Each row's index into a list of distinct (source, country, region) keys."""
        codes = np.nan_to_num(
            matrix[:, [AT["source"], AT["country"], AT["region"]]], nan=-1.0
        ).astype(int)
        distinct, inverse = np.unique(codes, axis=0, return_inverse=True)
        keys = []
        for source_code, country_code, region_code in distinct.tolist():
            source = builder.sources[source_code] if source_code >= 0 else ANY
            country = builder.countries[country_code] if country_code >= 0 else None
            region = builder.regions[region_code] if region_code >= 0 else None
            keys.append(
                (
                    source if source in self.by_source else ANY,
                    UNLISTED if country == OTHER else country,
                    None if region == OTHER else region,
                )
            )
        return inverse.reshape(-1), keys

    def row_levels(self, builder: FeatureBuilder, matrix: np.ndarray) -> np.ndarray:
        """Each encoded row's level (log salary) for its source and country."""
        inverse, keys = self._keys(builder, matrix)
        values = np.array([self.by_source[s].of(c, r) for s, c, r in keys], float)
        return values[inverse] if len(matrix) else np.zeros(0)

    def offset(self, builder: FeatureBuilder, matrix: np.ndarray) -> np.ndarray:
        """What the model adds to its trees' output: the level, or 0 when not in use."""
        if not self.as_offset:
            return np.zeros(len(matrix))
        return self.row_levels(builder, matrix) + self.row_trend(builder, matrix)

    def row_trend(self, builder: FeatureBuilder, matrix: np.ndarray) -> np.ndarray:
        """Each row's growth past its source's last training year (0 within the years)."""
        out = np.zeros(len(matrix))
        if self.trend_max_years <= 0 or not len(matrix):
            return out
        inverse, keys = self._keys(builder, matrix)
        cells = [(s, self.group_of(s, c, r)) for s, c, r in keys]
        years = matrix[:, AT["year"]].astype(float)
        for index, (source, group) in enumerate(cells):
            trend = self.by_source[source].trends.get(group)
            rows = inverse == index
            if trend is not None:
                out[rows] = trend.ahead(years[rows], self.trend_max_years)
        return out

    def parts(
        self, builder: FeatureBuilder, matrix: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """The offset split for explanations: (country part, source part, constant).

        country part = level - the source's world level; source part = the
        source's world level - the pooled world level, plus its growth past the
        last training year; constant = the pooled world level. They add up to
        ``offset`` exactly.
        """
        inverse, keys = self._keys(builder, matrix)
        pooled = self.by_source[ANY].world
        levels = [self.by_source[s] for s, _, _ in keys]
        pairs = zip(levels, keys, strict=True)
        country = np.array([v.of(c, r) - v.world for v, (_, c, r) in pairs])
        source = np.array([v.world - pooled for v in levels])
        return country[inverse], source[inverse] + self.row_trend(builder, matrix), pooled

    def groups(self, builder: FeatureBuilder, matrix: np.ndarray) -> np.ndarray:
        """Each row's pay-level group: "US", or its level's share of the source's US level."""
        inverse, keys = self._keys(builder, matrix)
        return np.array([self.group_of(*key) for key in keys], dtype=object)[inverse]

    def group_of(self, source: str, country: str | None, region: str | None) -> str:
        """The pay-level group of a (source, country, region)."""
        if country == US:
            return US
        levels = self.by_source[source]
        ratio = math.exp(levels.of(country, region) - levels.us_level())
        labels = group_labels(self.group_edges)
        for edge, label in zip(self.group_edges, labels, strict=False):
            if ratio < edge:
                return label
        return labels[-1]

    def all_groups(self) -> list[str]:
        """Every group name, US first."""
        return [US, *group_labels(self.group_edges)]

    # ----- storage --------------------------------------------------------
    def to_dict(self) -> dict[str, object]:
        return {
            "format": LEVELS_FORMAT,
            "as_offset": self.as_offset,
            "group_edges": self.group_edges,
            "trend_max_years": self.trend_max_years,
            "by_source": {
                source: {
                    "world": levels.world,
                    "prior": levels.prior,
                    "regions": levels.regions,
                    "countries": levels.countries,
                    "counts": levels.counts,
                    "trends": {
                        group: {"slope": t.slope, "last_year": t.last_year}
                        for group, t in levels.trends.items()
                    },
                }
                for source, levels in self.by_source.items()
            },
        }

    @classmethod
    def from_dict(cls, data: dict) -> CountryLevels:
        if data.get("format") not in READABLE_FORMATS:
            raise ValueError(f"{LEVELS_FILE}: unknown format {data.get('format')!r}")
        return cls(
            as_offset=bool(data["as_offset"]),
            group_edges=[float(e) for e in data["group_edges"]],
            trend_max_years=float(data.get("trend_max_years", 0.0)),
            by_source={
                source: SourceLevels(
                    world=float(v["world"]),
                    prior=None if v.get("prior") is None else float(v["prior"]),
                    regions={k: float(x) for k, x in v["regions"].items()},
                    countries={k: float(x) for k, x in v["countries"].items()},
                    counts={k: int(x) for k, x in v["counts"].items()},
                    trends={g: _trend(t) for g, t in v.get("trends", {}).items()},
                )
                for source, v in data["by_source"].items()
            },
        )

    def save(self, folder: Path) -> None:
        """Write the levels into a model bundle's folder."""
        (folder / LEVELS_FILE).write_text(json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, folder: Path) -> CountryLevels | None:
        """The bundle's levels, None for a bundle saved without them."""
        path = folder / LEVELS_FILE
        return cls.from_dict(json.loads(path.read_text())) if path.is_file() else None


def _trend(data: dict) -> YearTrend:
    last = data.get("last_year")
    return YearTrend(float(data["slope"]), None if last is None else float(last))


def fit_levels(records: pd.DataFrame, config: CountryLevelsConfig) -> CountryLevels | None:
    """The levels a fit needs: None when neither the offset nor range groups use them."""
    if not (config.enabled or config.calibrate_ranges):
        return None
    return CountryLevels.fit(records, config)
