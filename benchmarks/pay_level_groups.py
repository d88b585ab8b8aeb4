"""Estimates and ranges per country pay-level group: before and after country levels.

Countries are grouped by their pay level relative to the US, per source
(``salarymodel.core.country_levels`` on all records, the same grouping for every
variant): the US, under 35%, 35-60%, 60-90%, 90% and over. For each variant
(``VARIANTS``: ``before`` is main's model, ``country_levels`` off; ``after``
the configured one) one pass fits, on the same splits:

- grouped K-fold CV (``evaluation.n_folds``), each fold's point model and
  range procedure fit on its training rows only;
- the rolling out-of-time backtest (``salarymodel.evaluation.backtest``), its ranges
  stretched per source as the earlier folds measured (what is served).

and prints, per split kind, source and group (and non-US per source): records,
the median of estimate / actual - 1, the share below low, above high, and
coverage; then each source's MAE with a paired group-bootstrap interval of
after - before (``salarymodel.promotion.gate.paired_interval``). ``feature`` (point
model only) is the alternative: the level as a numeric feature instead of
the trees' starting score; ``quantile_start`` has the range's quantile
boosters start from the levels too; ``no_range_groups`` calibrates ranges
per source and support only; ``no_trend`` drops the yearly growth past the
last training year (``salarymodel.core.year_trend``); ``recency_12``,
``levels_12`` and ``both_12`` weigh records 1/2 per 12 months back from their
source's latest, in the trees' training, the levels' medians, or both;
``time_off`` and ``time_on`` fit without and with the postings' quarter as a
time column (``features.time_within_year``); any variant V named V_seed_N (or
seed_N: ``after``) fits with LightGBM seed N, and ``--seed-pooled V:B`` pools
V's MAE against B's over every seed both ran with. US rows
are also tabled per state with at least ``--min-state`` records. With a
variant V and V_seed_18 beside the two ``--pooled-bases`` (seed 17, seed 18),
V's MAE is also given pooled over both seeds' paired rows.

    .venv/bin/python benchmarks/pay_level_groups.py [--sample N] [--kinds cv,backtest]
        [--min-state 60] [--json PATH] [--rows CSV] [--with-rows CSV ...]
        [--tables-only] [VARIANT ...]
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from serving import machine

from salarymodel.config.settings import Settings, load_settings, load_sources
from salarymodel.core.country_levels import US, CountryLevels
from salarymodel.core.ranges import salary_bounds
from salarymodel.data.dataset import load_training_data
from salarymodel.data.geography import region
from salarymodel.data.role_family import with_role_family
from salarymodel.evaluation.backtest import BacktestFold, backtest_folds, drift_corrected
from salarymodel.evaluation.baselines import fit_threads, fold_features, fused_lightgbm
from salarymodel.evaluation.folds import assign_folds
from salarymodel.evaluation.range_eval import range_bands
from salarymodel.evaluation.workers import for_workers, worker_pool
from salarymodel.promotion.gate import paired_interval

VARIANTS: dict[str, dict[str, object]] = {
    "before": {"enabled": False, "calibrate_ranges": False},
    "after": {},
    # The country levels at their place, ranges calibrated per group, but no offset.
    "groups_only": {"enabled": False},
    "feature": {"enabled": False, "calibrate_ranges": False},
    # Levels and group calibration, the quantile boosters starting from the levels too.
    "quantile_start": {"quantile_start": True},
    # Levels (point and quantile boosters), ranges per source and support only.
    "no_range_groups": {"calibrate_ranges": False},
    # Levels as configured, but no yearly growth past the last training year
    # (last round's champion; the trend adds nothing within the training years,
    # so grouped CV is the same by construction and ``--kinds backtest`` suffices).
    "no_trend": {"trend": False},
    # The groups' growth shrunk less toward none.
    "trend_prior_100": {"trend_prior_strength": 100},
    # Country levels shrunk less toward their sub-region (prior_strength 20 pulled
    # poorer countries of richer regions up: PH 0.24 -> 0.31 of the US, SK 0.24 -> 0.28).
    "prior_5": {"prior_strength": 5},
    "prior_2": {"prior_strength": 2},
    "prior_10": {"prior_strength": 10},
    # Drift: records weigh 1/2 per 12 months back from their source's latest,
    # in the point model's training (a), the levels' medians (b), or both.
    "recency_12": {"recency_half_life_months": 12, "recency_training": True},
    "levels_12": {"recency_half_life_months": 12, "recency_levels": True},
    "both_12": {
        "recency_half_life_months": 12,
        "recency_training": True,
        "recency_levels": True,
    },
    # The groups' growth shrunk more toward none (35-60%'s +3.2% a year from the
    # survey up to 2023 is where most of its 2024 over-estimate comes from).
    "trend_prior_1000": {"trend_prior_strength": 1000},
}
# Variants of the range settings (the point model is the configured one).
RANGE_VARIANTS: dict[str, dict[str, object]] = {
    # Calibration records all weigh the same (in CV the postings' above-high
    # tail outside the US misses 7%: the 6-month half-life fits the latest months).
    "ranges_no_recency": {"recency_half_life_months": None},
}
# Variants of the feature settings (the country levels as configured).
FEATURE_VARIANTS: dict[str, dict[str, object]] = {
    # The year only (before the time column): when in 2023 a posting was is unseen.
    "time_off": {"time_within_year": False},
    "time_on": {"time_within_year": True},
}
VARIANTS.update({name: {} for name in [*RANGE_VARIANTS, *FEATURE_VARIANTS]})
POINT_ONLY = {"feature"}
NON_US = "non-US"


def seeded(name: str) -> tuple[str, int | None]:
    """A variant and its LightGBM seed: "V_seed_19" is V with seed 19, "seed_19" is "after"
    with seed 19; any other name has the configured seed (None).

    The trees' own randomness (bagging, feature fraction) moves MAE by about as
    much as a small change: run a change and its base with several seeds.
    """
    match = re.fullmatch(r"(?:(.+)_)?seed_(\d+)", name)
    if match is None:
        return name, None
    return match.group(1) or "after", int(match.group(2))


def variant_settings(base: Settings, name: str) -> Settings:
    plain, seed = seeded(name)
    levels = base.country_levels.model_copy(update=VARIANTS[plain])
    update: dict[str, object] = {"country_levels": levels}
    if plain in RANGE_VARIANTS:
        update["ranges"] = base.ranges.model_copy(update=RANGE_VARIANTS[plain])
    if plain in FEATURE_VARIANTS:
        update["features"] = base.features.model_copy(update=FEATURE_VARIANTS[plain])
    if seed is not None:
        params = {**base.model.params, "seed": seed}
        update["model"] = base.model.model_copy(update={"params": params})
    return for_workers(base.model_copy(update=update))


# ----- one split ---------------------------------------------------------------------
def with_level_feature(train: pd.DataFrame, test: pd.DataFrame, settings: Settings) -> np.ndarray:
    """The alternative: the train fold's country level as one more numeric column."""
    import lightgbm as lgb

    builder, train_matrix, test_matrix = fold_features(train, test, settings)
    levels = CountryLevels.fit(train, settings.country_levels)
    columns = [
        np.column_stack([m, levels.row_levels(builder, m)]) for m in (train_matrix, test_matrix)
    ]
    data = lgb.Dataset(
        columns[0],
        label=np.log(train["salary_usd"].to_numpy(float)),
        categorical_feature=builder.categorical_indices,
    )
    booster = lgb.train(
        dict(settings.model.params), data, num_boost_round=settings.model.num_boost_round
    )
    return np.exp(booster.predict(columns[1], num_threads=fit_threads(settings)))


def split_job(
    train: pd.DataFrame, test: pd.DataFrame, settings: Settings, variant: str
) -> Callable[[], dict[str, np.ndarray]]:
    """A job fitting one split: the estimate and the calibrated range of each test row."""

    def run() -> dict[str, np.ndarray]:
        if variant in POINT_ONLY:
            point = with_level_feature(train, test, settings)
            empty = np.full(len(test), np.nan)
            return {"estimate": point, "low": empty, "high": empty}
        features = fold_features(train, test, settings)
        point = fused_lightgbm(train, test, settings, features)
        bands = range_bands(train, test, point, settings, features)
        low, high = bands.bands["calibrated"]
        return {"estimate": point, "low": low, "high": high, "bands": bands}  # type: ignore[dict-item]

    return run


def run_variant(
    records: pd.DataFrame, settings: Settings, variant: str, kinds: set[str]
) -> pd.DataFrame:
    """Every CV and backtest test row of one variant: estimate, low, high."""
    folds = assign_folds(records, settings.evaluation.n_folds, settings.evaluation.seed)
    in_time = "backtest" in kinds
    time_folds = backtest_folds(records, settings.evaluation.backtest) if in_time else []
    cv_folds = range(settings.evaluation.n_folds) if "cv" in kinds else range(0)
    jobs: dict[tuple[str, int], Callable[[], dict[str, np.ndarray]]] = {}
    for fold in cv_folds:
        test = folds == fold
        jobs[("cv", fold)] = split_job(records[~test], records[test], settings, variant)
    for index, time_fold in enumerate(time_folds):
        jobs[("backtest", index)] = split_job(
            records[time_fold.train], records[time_fold.test], settings, variant
        )
    with worker_pool(settings) as pool:
        futures = {key: pool.submit(job) for key, job in jobs.items()}
        results = {key: future.result() for key, future in futures.items()}
    parts = []
    for fold in cv_folds:
        parts.append(_rows(records, folds == fold, "cv", str(fold), results[("cv", fold)]))
    parts += _backtest_rows(records, time_folds, results, settings, variant)
    return pd.concat(parts, ignore_index=True).assign(variant=variant)


def _rows(
    records: pd.DataFrame, mask: np.ndarray, kind: str, fold: str, result: dict
) -> pd.DataFrame:
    test = records[mask]
    return pd.DataFrame(
        {
            "kind": kind,
            "fold": fold,
            "row": np.flatnonzero(mask),
            "group_id": test["group_id"].to_numpy(),
            "source": test["source"].to_numpy(),
            "state": test["state"].astype(object).where(test["country"] == US).to_numpy(),
            "salary": test["salary_usd"].to_numpy(float),
            "estimate": result["estimate"],
            "low": result["low"],
            "high": result["high"],
        }
    )


def _backtest_rows(
    records: pd.DataFrame,
    time_folds: list[BacktestFold],
    results: dict,
    settings: Settings,
    variant: str,
) -> list[pd.DataFrame]:
    """Backtest rows, their ranges stretched as earlier folds measured (the served procedure)."""
    fold_results = [results[("backtest", i)] for i in range(len(time_folds))]
    if variant not in POINT_ONLY and fold_results:
        corrected, _ = drift_corrected(
            time_folds,
            [r["bands"] for r in fold_results],
            settings.ranges.coverage,
            salary_bounds(settings),
            settings.ranges.max_factor,
        )
        for result, bands in zip(fold_results, corrected, strict=True):
            result["low"], result["high"] = bands.bands["calibrated"]
    return [
        _rows(records, fold.test, "backtest", fold.name, result)
        for fold, result in zip(time_folds, fold_results, strict=True)
    ]


# ----- the tables ----------------------------------------------------------------------
def pay_groups(records: pd.DataFrame, settings: Settings) -> np.ndarray:
    """Each record's pay-level group in its source (all records; one grouping for all variants)."""
    levels = CountryLevels.fit(records, settings.country_levels)
    keys = list(zip(records["source"], records["country"].astype(object), strict=True))
    known = {
        (s, c): levels.group_of(s, c if isinstance(c, str) else None, _region(c))
        for s, c in set(keys)
    }
    return np.array([known[k] for k in keys], dtype=object)


def _region(country: object) -> str | None:
    return region(country) if isinstance(country, str) else None


def group_table(rows: pd.DataFrame, groups: np.ndarray, min_state: int) -> pd.DataFrame:
    """Per variant, split kind, source and group: n, median ratio - 1, tails, coverage.

    Groups are the pay-level groups, non-US, all, and each US state with at
    least ``min_state`` records in the variant's split kind and source.
    """
    rows = rows.assign(group=groups[rows["row"].to_numpy()])
    non_us = rows[rows["group"] != US].assign(group=NON_US)
    every = rows.assign(group="all")
    stated = rows[rows["state"].notna()]
    counts = stated.groupby(["variant", "kind", "source", "state"])["row"].transform("size")
    states = stated[counts >= min_state]
    states = states.assign(group="US " + states["state"].astype(str))
    table = []
    keys = ["variant", "kind", "source", "group"]
    for key, part in pd.concat([rows, non_us, every, states]).groupby(keys, sort=False):
        ratio = part["estimate"] / part["salary"] - 1
        # A point-only variant has no range: its tails are unknown, not zero.
        ranged = part["low"].notna().all()
        below = (part["salary"] < part["low"]).mean() if ranged else np.nan
        above = (part["salary"] > part["high"]).mean() if ranged else np.nan
        table.append(
            {
                **dict(zip(keys, key, strict=True)),
                "n": len(part),
                "median_ratio_pct": 100 * float(ratio.median()),
                "below_low_pct": 100 * float(below),
                "above_high_pct": 100 * float(above),
                "coverage_pct": 100 * float(1 - below - above),
                "mae_usd": float((part["estimate"] - part["salary"]).abs().mean()),
            }
        )
    order = {g: i for i, g in enumerate([US, "under 35%", "35-60%", "60-90%", "90%+", NON_US])}
    frame = pd.DataFrame(table)
    frame["order"] = frame["group"].map(order).fillna(99)
    return frame.sort_values(["kind", "source", "order", "variant"]).drop(columns="order")


def percentile_table(rows: pd.DataFrame, groups: np.ndarray, settings: Settings) -> pd.DataFrame:
    """Per variant, kind and group: the share (%) of rows whose own salary reads below p.

    The raw percentile (``group_evaluation.raw_percentiles``: the two-piece
    log-normal through the row's range), before the served monotone map, which
    needs every CV row to fit; ``worst_gap`` is the largest |share - p|.
    """
    from salarymodel.evaluation.groups import raw_percentiles

    levels = settings.group_evaluation.percentile_levels
    rows = rows.dropna(subset=["low", "high"]).assign(group=groups[rows["row"].to_numpy()])
    frame = rows.rename(
        columns={"salary": "salary_usd", "estimate": "estimate_usd", "low": "low_usd"}
    ).rename(columns={"high": "high_usd"})
    rows = rows.assign(pct=raw_percentiles(frame, settings.ranges.coverage))
    slices = [rows, rows[rows["group"] != US].assign(group=NON_US), rows.assign(group="all")]
    out = []
    for key, part in pd.concat(slices).groupby(["variant", "kind", "source", "group"]):
        shares = {f"p{p:g}": 100 * float((part["pct"] < p).mean()) for p in levels}
        gap = max(abs(shares[f"p{p:g}"] - p) for p in levels)
        names = dict(zip(["variant", "kind", "source", "group"], key, strict=True))
        out.append({**names, "n": len(part), **shares, "worst_gap": gap})
    return pd.DataFrame(out)


def mae_difference(part: pd.DataFrame, settings: Settings) -> dict:
    """MAE of ``part``'s estimates against its ``base`` estimates, with the gate's
    paired group-bootstrap interval of the difference."""
    interval = paired_interval(
        "mae_usd",
        part["salary"].to_numpy(),
        part["estimate"].to_numpy(),
        part["base"].to_numpy(),
        part["group_id"].to_numpy(),
        settings.gate.resamples,
        settings.gate.confidence,
        settings.evaluation.seed,
    )
    return {
        "n": interval.rows,
        "mae_usd": interval.challenger,
        "baseline_mae_usd": interval.champion,
        "difference": interval.difference,
        "low": interval.low,
        "high": interval.high,
    }


def _with_base(rows: pd.DataFrame, variant: str, base: str) -> pd.DataFrame:
    """``variant``'s rows with ``base``'s estimate of the same row beside each."""
    ours = rows[rows["variant"] == variant].set_index(["kind", "fold", "row"])
    theirs = rows[rows["variant"] == base].set_index(["kind", "fold", "row"])
    return ours.join(theirs[["estimate"]].rename(columns={"estimate": "base"}))


def mae_intervals(rows: pd.DataFrame, settings: Settings, baseline: str) -> list[dict]:
    """Each variant's MAE against the baseline's, per split kind and source, paired by row."""
    out = []
    for variant in rows["variant"].unique():
        if variant == baseline:
            continue
        joined = _with_base(rows, variant, baseline)
        for (kind, source), part in joined.groupby(["kind", "source"]):
            names = {"variant": variant, "against": baseline, "kind": kind, "source": source}
            out.append({**names, **mae_difference(part, settings)})
    return out


def _pooled(
    rows: pd.DataFrame, settings: Settings, pairs: list[tuple[str, str]], names: dict
) -> list[dict]:
    """MAE of each (variant, base) pair's rows against their base's, all pairs in one
    group bootstrap (a record's rows in every pair resample together), per split kind
    and source and over all sources; each result row starts with ``names``."""
    joined = pd.concat([_with_base(rows, variant, base) for variant, base in pairs])
    every = pd.concat([joined, joined.assign(source="all")])
    return [
        {**names, "kind": kind, "source": source, **mae_difference(part, settings)}
        for (kind, source), part in every.groupby(["kind", "source"])
    ]


def pooled_seed_intervals(rows: pd.DataFrame, settings: Settings, bases: list[str]) -> list[dict]:
    """MAE of each variant pair (V, V_seed_18) against ``bases`` (seed 17, seed 18), pooled.

    Each seed's rows are paired with the base of the same seed; the two seeds'
    differences go into one group bootstrap, so a change is told from a reseed
    of the trees.
    """
    out = []
    variants = set(rows["variant"])
    for variant in sorted(variants - set(bases)):
        twin = f"{variant}_seed_18"
        if variant.endswith("seed_18") or twin not in variants:
            continue
        names = {"variants": f"{variant} + {twin}", "against": " + ".join(bases)}
        out += _pooled(rows, settings, list(zip((variant, twin), bases, strict=True)), names)
    return out


def seed_pooled_intervals(rows: pd.DataFrame, settings: Settings, pair: str) -> list[dict]:
    """MAE of variant V against base B ("V:B"), pooled over every seed both were run with.

    V's rows at each seed (V, V_seed_N) are paired with B's at the same seed;
    all seeds' differences go into one group bootstrap. A change to the trees'
    columns redraws their feature and bagging samples, which moved backtest
    MAE by about as much as a reseed: more seeds tell the change from that.
    """
    variant, base = pair.split(":")
    present = set(rows["variant"])
    seeds = sorted(s for plain, s in map(seeded, present) if plain == variant and s is not None)
    pairs = [(variant, base)] + [(f"{variant}_seed_{s}", f"{base}_seed_{s}") for s in seeds]
    pairs = [(v, b) for v, b in pairs if v in present and b in present]
    names = {"variant": variant, "against": base, "seeds": len(pairs)}
    return _pooled(rows, settings, pairs, names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="*", default=["before", "after"])
    parser.add_argument("--sample", type=int, default=None, help="records to sample (smoke run)")
    parser.add_argument(
        "--kinds", default="cv,backtest", help="split kinds to run, comma-separated"
    )
    parser.add_argument("--min-state", type=int, default=60, help="records for a state row")
    parser.add_argument("--json", type=Path, default=None, help="write the tables here")
    parser.add_argument("--rows", type=Path, default=None, help="write every test row here (csv)")
    parser.add_argument(
        "--with-rows",
        type=Path,
        action="append",
        default=[],
        help="add an earlier run's rows (same splits; repeatable, the first is the baseline)",
    )
    parser.add_argument(
        "--pooled-bases",
        default="after,seed_18",
        help="seed 17 and seed 18 baselines of the pooled intervals of V and V_seed_18",
    )
    parser.add_argument(
        "--tables-only", action="store_true", help="fit nothing: tables of --with-rows"
    )
    parser.add_argument(
        "--seed-pooled",
        action="append",
        default=[],
        help="V:B, MAE of V against B pooled over every seed of both (repeatable)",
    )
    args = parser.parse_args()
    print(f"machine: {machine()}", flush=True)
    base = load_settings()
    data = load_training_data(base, load_sources(), sample=args.sample, accepted=False)
    records = with_role_family(data.records.reset_index(drop=True), base)
    parts = []
    for variant in [] if args.tables_only else args.variants:
        start = time.perf_counter()
        kinds = set(args.kinds.split(","))
        parts.append(run_variant(records, variant_settings(base, variant), variant, kinds))
        print(f"{variant}: {time.perf_counter() - start:.0f} s", flush=True)
    parts = [pd.read_csv(path) for path in args.with_rows] + parts
    rows = pd.concat(parts, ignore_index=True)
    if args.rows:
        rows.to_csv(args.rows, index=False)
    table = group_table(rows, pay_groups(records, base), args.min_state)
    intervals = mae_intervals(rows, base, str(rows["variant"].iloc[0]))
    percentiles = percentile_table(rows, pay_groups(records, base), base)
    bases = args.pooled_bases.split(",")
    pooled = pooled_seed_intervals(rows, base, bases) if set(bases) <= set(rows["variant"]) else []
    pooled += [row for pair in args.seed_pooled for row in seed_pooled_intervals(rows, base, pair)]
    with pd.option_context("display.width", 200, "display.max_rows", 500):
        print(table.to_string(index=False, float_format=lambda v: f"{v:,.1f}"))
        print(pd.DataFrame(intervals).to_string(index=False, float_format=lambda v: f"{v:,.0f}"))
        print(percentiles.to_string(index=False, float_format=lambda v: f"{v:,.1f}"))
        if pooled:
            print(pd.DataFrame(pooled).to_string(index=False, float_format=lambda v: f"{v:,.0f}"))
    if args.json:
        payload = {
            "groups": table.to_dict("records"),
            "mae": intervals,
            "percentiles": percentiles.to_dict("records"),
            "pooled_seeds": pooled,
            "records": len(records),
        }
        args.json.write_text(json.dumps(payload, indent=1))


if __name__ == "__main__":
    main()
