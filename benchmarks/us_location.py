"""Benchmark: what the place below the country buys on the postings backtest (issue 22).

The fused model (``salarymodel.core.features`` + LightGBM) is trained and scored
on the postings folds of ``salarymodel evaluate``'s rolling backtest
(``salarymodel.evaluation.backtest``: train on every record before a 3-month window,
test on the window's postings), once per variant:

- ``before``: ``features.location`` off: the feature matrix of main b29e9d9
  (the place columns are appended only when it is on, and postings records
  have no location text, so nothing else changes);
- ``state``: the US state as a category only;
- ``bls ratio``: BLS's area wage ratio only;
- ``after``: both (the shipped configuration).

Reported, pooled over the folds: MAE of each variant against ``before``
with the paired group bootstrap interval of ``salarymodel.promotion.gate`` (groups:
the records' CV groups, so reposts move together), for all test postings
and for the US ones; and, per state with at least ``--min-state`` US test
records, the median of estimate/actual before and after.

    .venv/bin/python benchmarks/us_location.py [--seed 17] [--min-state 60] [--variants ...]
    .venv/bin/python benchmarks/us_location.py --reality-check

``--reality-check`` instead fits the point model on all shipped records (as
``salarymodel train`` does its final model) and prints ``salarymodel
evaluate``'s BLS reality-check table for it, without the registry.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from explain import machine

from salarymodel.config.settings import Settings, load_settings, load_sources
from salarymodel.core.features import FeatureBuilder
from salarymodel.core.model import SalaryModel
from salarymodel.data.dataset import load_training_data
from salarymodel.evaluation.backtest import backtest_folds
from salarymodel.evaluation.baselines import fused_lightgbm
from salarymodel.evaluation.reality_check import champion_reality_check
from salarymodel.evaluation.workers import for_workers
from salarymodel.promotion.gate import paired_interval

SOURCE = "postings"
VARIANTS = ("before", "state", "bls ratio", "after")


def settings_for(base: Settings, variant: str, seed: int) -> Settings:
    """``base`` with the variant's place features and LightGBM's seed."""
    location = base.features.location
    if location is None:
        raise SystemExit("configs/salarymodel.yaml has no features.location")
    switches = {
        "before": None,
        "state": location.model_copy(update={"area_wage_feature": False}),
        "bls ratio": location.model_copy(update={"state_feature": False}),
        "after": location,
    }[variant]
    features = base.features.model_copy(update={"location": switches})
    model = base.model.model_copy(update={"params": {**base.model.params, "seed": seed}})
    return for_workers(base.model_copy(update={"features": features, "model": model}))


def interval_row(name: str, frame: pd.DataFrame, variant: str, base: Settings) -> dict:
    """MAE of ``variant`` and ``before`` on ``frame``'s rows, with the paired interval."""
    gate = base.gate
    found = paired_interval(
        "mae_usd",
        frame["salary_usd"].to_numpy(float),
        frame[variant].to_numpy(float),
        frame["before"].to_numpy(float),
        frame["group_id"].to_numpy(),
        gate.resamples,
        gate.confidence,
        gate.seed,
    )
    return {
        "rows": name,
        "variant": variant,
        "records": found.rows,
        "mae_before": round(found.champion),
        "mae": round(found.challenger),
        "difference": round(found.difference),
        "interval": f"[{found.low:+,.0f}, {found.high:+,.0f}]",
        "relative": f"{found.difference / found.champion:+.2%}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--min-state", type=int, default=60)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--save", help="also write the scored test rows to this CSV")
    parser.add_argument("--scored", help="report from rows --save wrote (no training)")
    parser.add_argument("--reality-check", action="store_true")
    args = parser.parse_args()
    variants = ["before", *(v for v in args.variants if v != "before")]
    base = load_settings()
    if args.scored:
        scored = pd.read_csv(args.scored, keep_default_na=False, na_values=[""])
        report(scored, [v for v in variants if v in scored], base, args.min_state, "saved rows")
        return
    records = load_training_data(base, load_sources()).records
    if args.reality_check:
        settings = settings_for(base, "after", args.seed)
        builder = FeatureBuilder.fit(records, settings.features)
        model = SalaryModel.fit(
            records,
            builder,
            settings.model,
            builder.transform(records),
            country_levels=settings.country_levels,
        )
        with pd.option_context("display.width", 200, "display.max_columns", 20):
            print(champion_reality_check(model, base).to_string(index=False))
        return
    folds = [f for f in backtest_folds(records, base.evaluation.backtest) if f.source == SOURCE]
    parts = []
    started = time.perf_counter()
    for fold in folds:
        train, test = records[fold.train], records[fold.test]
        # "us_state": the variant "state" names a column of estimates.
        part = test[["salary_usd", "country", "group_id"]].copy()
        part["us_state"] = test["state"].to_numpy()
        part["fold"] = fold.label
        for variant in variants:
            settings = settings_for(base, variant, args.seed)
            part[variant] = fused_lightgbm(train, test, settings)
            print(f"{fold.label} {variant}: {time.perf_counter() - started:.0f} s", flush=True)
        parts.append(part)
    scored = pd.concat(parts, ignore_index=True)
    if args.save:
        scored.to_csv(args.save, index=False)
    folds_run = f"folds: {[f.label for f in folds]}; seed {args.seed}"
    report(scored, variants, base, args.min_state, folds_run)


def report(scored: pd.DataFrame, variants: list[str], base: Settings, min_state: int, run: str):
    """Print the MAE intervals and the per-state median ratios of the scored test rows."""
    us = scored[scored["country"] == "US"]
    rows = [
        interval_row(name, frame, variant, base)
        for name, frame in (("all postings", scored), ("US postings", us))
        for variant in variants[1:]
    ]
    print(f"\n{machine()}; {run}")
    print("\nMAE on the postings backtest, each variant against before (paired, 95%):")
    print(pd.DataFrame(rows).to_string(index=False))
    ratios = {v: us[v] / us["salary_usd"] for v in variants}
    by_state = (
        pd.DataFrame({"us_state": us["us_state"].fillna("(none)"), **ratios})
        .groupby("us_state")
        .agg(records=("before", "size"), **{v: (v, "median") for v in variants})
    )
    by_state = by_state[by_state["records"] >= min_state].sort_values("records", ascending=False)
    print(f"\nMedian estimate/actual per US state with >= {min_state} test records:")
    print(by_state.round(3).to_string())
    worst = by_state.drop(index="(none)", errors="ignore")[variants].sub(1).abs().max()
    print("\nWorst state's |median ratio - 1|:", worst.round(3).to_dict())


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
