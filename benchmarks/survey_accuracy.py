"""Benchmark: ideas for the survey's accuracy, scored out of time on the rolling backtest.

Every idea is the fused model (``salarymodel.core.features`` + LightGBM huber)
with one change, trained and scored on the same backtest folds as
``salarymodel evaluate`` (``salarymodel.evaluation.backtest``: survey years 2023 and
2024, postings in 3-month windows). Pooled per source over its folds; each
row is the mean over ``--seeds`` (LightGBM's bagging seed) with the spread
of the survey MAE, because differences under ~0.3% are seed noise here.

Baselines: ``raw_lightgbm`` (plain LightGBM on a source's raw columns, the
issue's yardstick) and the fused model before this work (no title words).
The shipped configuration is ``fused (shipped)``. Ideas that did not win out
of time are implemented here only, as experiments.

    .venv/bin/python benchmarks/survey_accuracy.py [--seeds 17 1 2] [--ideas NAME ...] [--cv]

``--cv`` adds the grouped 5-fold CV (one seed) next to the backtest, for
one idea of each kind (``CV_IDEAS``).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from explain import machine

from salarymodel.config.settings import Settings, load_settings, load_sources
from salarymodel.core.model import safe_name
from salarymodel.core.periods import record_months
from salarymodel.core.row_spec import AT
from salarymodel.data.csv_output import write_csv
from salarymodel.data.dataset import load_training_data
from salarymodel.data.role_family import with_role_family
from salarymodel.data.titles import title_rules
from salarymodel.evaluation.backtest import backtest_folds
from salarymodel.evaluation.baselines import PREDICTORS, fold_features
from salarymodel.evaluation.folds import assign_folds
from salarymodel.evaluation.metrics import metrics
from salarymodel.evaluation.workers import for_workers

SOURCES = ("aijobs", "postings")


@dataclass(frozen=True)
class Idea:
    """One change to the fused model (empty: the model as configured)."""

    group: str
    words: int | None = None  # title-word min count (None: off, the model before)
    ngrams: int = 2
    params: dict[str, object] = field(default_factory=dict)
    rounds: int | None = None
    half_life_months: float | None = None  # recency weights 0.5 ** (age / half-life)
    drop_year: bool = False
    detrend: float | None = None  # per-year index, last step extrapolated x this
    target_encoding: str | None = None  # "title" | "title_experience"
    monotone: tuple[str, ...] = ()
    company_country: bool = False


WORDS = 100
IDEAS: dict[str, Idea] = {
    "fused before (no title words)": Idea("baseline"),
    "fused (shipped): title words >= 100, 1-2 grams": Idea("kept", words=WORDS),
    "recency half-life 6 months": Idea("recency", half_life_months=6),
    "recency half-life 12 months": Idea("recency", half_life_months=12),
    "recency half-life 24 months": Idea("recency", half_life_months=24),
    "title words + recency 24 months": Idea("recency", words=WORDS, half_life_months=24),
    "year dropped (reference)": Idea("year trend", drop_year=True),
    "year: linear_tree": Idea("year trend", params={"linear_tree": True, "linear_lambda": 1.0}),
    "year: de-trend, flat": Idea("year trend", detrend=0.0),
    "year: de-trend, half the last step": Idea("year trend", detrend=0.5),
    "year: de-trend, linear": Idea("year trend", detrend=1.0),
    "title words >= 100, single words": Idea("title words", words=WORDS, ngrams=1),
    "title words >= 50, 1-2 grams": Idea("title words", words=50),
    "title words >= 200, 1-2 grams": Idea("title words", words=200),
    "target encoding: core title": Idea("target encoding", target_encoding="title"),
    "target encoding: title x experience": Idea(
        "target encoding", target_encoding="title_experience"
    ),
    "huber alpha 0.2": Idea("parameters", params={"alpha": 0.2}),
    "huber alpha 0.6": Idea("parameters", params={"alpha": 0.6}),
    "L2 loss": Idea("parameters", params={"objective": "regression"}),
    "learning rate 0.04 x 600": Idea("parameters", params={"learning_rate": 0.04}, rounds=600),
    "100 rounds": Idea("parameters", rounds=100),
    "400 rounds": Idea("parameters", rounds=400),
    "31 leaves": Idea("parameters", params={"num_leaves": 31}),
    "127 leaves, no depth cap": Idea("parameters", params={"num_leaves": 127, "max_depth": -1}),
    "min_data_in_leaf 20": Idea("parameters", params={"min_data_in_leaf": 20}),
    "min_data_in_leaf 100": Idea("parameters", params={"min_data_in_leaf": 100}),
    "cat_smooth/cat_l2 2": Idea("parameters", params={"cat_smooth": 2, "cat_l2": 2}),
    "cat_smooth/cat_l2 50": Idea("parameters", params={"cat_smooth": 50, "cat_l2": 50}),
    "monotone: experience": Idea("monotone", monotone=("experience_level",)),
    "monotone: experience + title seniority": Idea(
        "monotone", monotone=("experience_level", "title_seniority")
    ),
    "title words + monotone experience": Idea(
        "monotone", words=WORDS, monotone=("experience_level",)
    ),
    "company country as a category": Idea("other", company_country=True),
}


def settings_for(base: Settings, idea: Idea, seed: int) -> Settings:
    """The settings an idea trains with (title words and model parameters)."""
    words = base.features.title_words.model_copy(
        update={"min_count": idea.words, "ngrams": idea.ngrams}
    )
    features = base.features.model_copy(update={"title_words": words})
    params = {**base.model.params, **idea.params, "seed": seed}
    rounds = idea.rounds or base.model.num_boost_round
    model = base.model.model_copy(update={"params": params, "num_boost_round": rounds})
    return base.model_copy(update={"features": features, "model": model})


def target_encoding(
    train: pd.DataFrame, test: pd.DataFrame, keys: Callable[[pd.DataFrame], list], seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Smoothed mean log salary per key: out-of-fold (5 group folds) on train, full on test."""
    smooth = 20.0
    y = np.log(train["salary_usd"].to_numpy(float))
    train_keys, test_keys = np.array(keys(train), object), np.array(keys(test), object)
    prior = float(y.mean())

    def table(k: np.ndarray, v: np.ndarray) -> dict:
        stats = pd.DataFrame({"k": k, "y": v}).groupby("k")["y"].agg(["sum", "count"])
        return ((stats["sum"] + smooth * prior) / (stats["count"] + smooth)).to_dict()

    groups = pd.factorize(train["group_id"].astype(str))[0]
    fold = np.random.default_rng(seed).integers(0, 5, groups.max() + 1)[groups]
    out_train = np.empty(len(train))
    for f in range(5):
        means = table(train_keys[fold != f], y[fold != f])
        out_train[fold == f] = [means.get(k, prior) for k in train_keys[fold == f]]
    means = table(train_keys, y)
    return out_train, np.array([means.get(k, prior) for k in test_keys])


def year_index(train: pd.DataFrame, test: pd.DataFrame, damping: float) -> tuple:
    """Per source, the mean log salary of each training year; later years extrapolate
    the last year-on-year step times ``damping`` (0: flat, 1: linear)."""
    y = np.log(train["salary_usd"].to_numpy(float))
    offsets = (np.zeros(len(train)), np.zeros(len(test)))
    for source in train["source"].unique():
        mine = (train["source"] == source).to_numpy()
        means = pd.Series(y[mine]).groupby(train["year"].to_numpy(float)[mine]).mean()
        last = float(means.index.max())
        step = float(means.iloc[-1] - means.iloc[-2]) if len(means) > 1 else 0.0
        for frame, offset in zip((train, test), offsets, strict=True):
            rows = (frame["source"] == source).to_numpy()
            offset[rows] = [
                means[v] if v in means.index else means[last] + damping * step * (v - last)
                for v in frame["year"].to_numpy(float)[rows]
            ]
    return offsets


def fit_predict(train: pd.DataFrame, test: pd.DataFrame, settings: Settings, idea: Idea):
    """USD estimates for ``test`` of the fused model with ``idea``, trained on ``train``."""
    import lightgbm as lgb

    builder, x_train, x_test = fold_features(train, test, settings)
    names = [safe_name(c) for c in builder.columns]
    categorical = list(builder.categorical_indices)
    if idea.drop_year:
        x_train[:, AT["year"]] = x_test[:, AT["year"]] = np.nan
    if idea.target_encoding:
        rules = title_rules(settings.features)
        with_level = idea.target_encoding == "title_experience"

        def keys(frame: pd.DataFrame) -> list:
            cores = [rules.core_title(t) for t in frame["job_title"]]
            levels = frame["experience_level"].astype(str) if with_level else [""] * len(frame)
            return [f"{c}|{lv}" for c, lv in zip(cores, levels, strict=True)]

        a, b = target_encoding(train, test, keys, int(settings.model.params["seed"]))
        x_train, x_test = np.column_stack([x_train, a]), np.column_stack([x_test, b])
        names.append("title_target_mean")
    if idea.company_country:
        counts = train["company_country"].value_counts()
        codes = {c: i for i, c in enumerate(counts[counts >= 20].index)}
        a = train["company_country"].map(codes).to_numpy(float)
        b = test["company_country"].map(codes).to_numpy(float)
        categorical.append(x_train.shape[1])
        x_train, x_test = np.column_stack([x_train, a]), np.column_stack([x_test, b])
        names.append("company_country")
    target = np.log(train["salary_usd"].to_numpy(float))
    offset_train, offset_test = (0.0, 0.0)
    if idea.detrend is not None:
        offset_train, offset_test = year_index(train, test, idea.detrend)
    weight = None
    if idea.half_life_months:
        _, end = record_months(train)
        weight = 0.5 ** ((end.max() - end) / idea.half_life_months)
    params = dict(settings.model.params)
    if idea.monotone:
        constraints = [0] * x_train.shape[1]
        for column in idea.monotone:
            constraints[AT[column]] = 1
        params["monotone_constraints"] = constraints
    data = lgb.Dataset(
        x_train,
        label=target - offset_train,
        weight=weight,
        feature_name=names,
        categorical_feature=categorical,
    )
    booster = lgb.train(params, data, num_boost_round=settings.model.num_boost_round)
    return np.exp(booster.predict(x_test) + offset_test)


def pooled(records: pd.DataFrame, splits: list, estimates: list[np.ndarray]) -> dict:
    """Per source: metrics over all its test rows, and per split (fold name -> metrics)."""
    salary = records["salary_usd"].to_numpy(float)
    out: dict[str, dict] = {}
    for source in SOURCES:
        mine = [(s, e) for s, e in zip(splits, estimates, strict=True) if s[0] == source]
        truth = np.concatenate([salary[s[2]] for s, _ in mine])
        out[source] = metrics(truth, np.concatenate([e for _, e in mine]))
        for s, e in mine:
            out[f"{source}:{s[1]}"] = metrics(salary[s[2]], e)
    return out


def cv_splits(records: pd.DataFrame, settings: Settings) -> list:
    """Grouped CV folds as (fold, train mask, test mask)."""
    folds = assign_folds(records, settings.evaluation.n_folds, settings.evaluation.seed)
    return [(f, folds != f, folds == f) for f in range(settings.evaluation.n_folds)]


# Grouped CV (one seed) for one idea of each kind: a CV pass costs a few minutes.
CV_IDEAS = (
    "fused before (no title words)",
    "fused (shipped): title words >= 100, 1-2 grams",
    "recency half-life 12 months",
    "year: linear_tree",
    "year: de-trend, half the last step",
    "target encoding: core title",
    "huber alpha 0.2",
    "monotone: experience",
)


# What the worker processes read (inherited when they fork): records, settings, splits.
_SHARED: dict[str, object] = {}


def _task(name: str, seed: int | str, index: int) -> np.ndarray:
    """One fit in a worker process: ``name`` on backtest split ``index`` (or CV fold)."""
    records, base = _SHARED["records"], _SHARED["base"]
    if seed == "cv":
        _, train, test = _SHARED["cv"][index]
        seed = _SHARED["seeds"][0]
    else:
        _, _, test, train = _SHARED["splits"][index]
    if name == "raw_lightgbm":
        s = settings_for(base, IDEAS["fused before (no title words)"], seed)
        return PREDICTORS["raw_lightgbm"](records[train], records[test], s)
    s = settings_for(base, IDEAS[name], seed)
    return fit_predict(records[train], records[test], s, IDEAS[name])


def run(records: pd.DataFrame, base: Settings, names: list[str], seeds: list[int], cv: bool):
    """Every idea x seed on the backtest (and one seed on grouped CV): results per idea.

    Fits run in ``evaluation.workers`` forked processes, not threads: with
    two fits side by side in threads, LightGBM 4.7 crashed the process (a
    segfault in lib_lightgbm) three times in this script.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    folds = backtest_folds(records, base.evaluation.backtest)
    splits = [(f.source, f.label, f.test, f.train) for f in folds]
    sources = records["source"].to_numpy()
    _SHARED.update(records=records, base=base, splits=splits, seeds=seeds)
    _SHARED["cv"] = cv_splits(records, base)
    keys = [("raw_lightgbm", seed, i) for seed in seeds for i in range(len(splits))]
    keys += [(name, seed, i) for name in names for seed in seeds for i in range(len(splits))]
    keys += [
        (name, "cv", f)
        for name in names
        if cv and name in CV_IDEAS
        for f in range(len(_SHARED["cv"]))
    ]
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(base.evaluation.workers, mp_context=context) as pool:
        jobs = {key: pool.submit(_task, *key) for key in keys}
        results = {key: job.result() for key, job in jobs.items()}
    table = {}
    for name in ["raw_lightgbm", *names]:
        per_seed = [
            pooled(records, splits, [results[(name, seed, i)] for i in range(len(splits))])
            for seed in seeds
        ]
        row = {"idea": name, "group": "baseline" if name == "raw_lightgbm" else IDEAS[name].group}
        for key in per_seed[0]:
            for metric in ("mae_usd", "r2_log"):
                row[f"{key}.{metric}"] = float(np.mean([p[key][metric] for p in per_seed]))
        maes = [p["aijobs"]["mae_usd"] for p in per_seed]
        row["aijobs.mae_spread"] = float(max(maes) - min(maes))
        if cv and name in CV_IDEAS:
            oof = np.full(len(records), np.nan)
            for fold, _, test in _SHARED["cv"]:
                oof[test] = results[(name, "cv", fold)]
            salary = records["salary_usd"].to_numpy(float)
            for source in SOURCES:
                m = metrics(salary[sources == source], oof[sources == source])
                row[f"cv.{source}.mae_usd"], row[f"cv.{source}.r2_log"] = m["mae_usd"], m["r2_log"]
        table[name] = row
    return pd.DataFrame(table.values())


def markdown(table: pd.DataFrame, cv: bool) -> str:
    """The table as markdown: pooled backtest per source, against raw and the model before."""
    raw = table.set_index("idea").loc["raw_lightgbm"]
    before = table.set_index("idea").loc["fused before (no title words)"]
    head = (
        "| idea | survey MAE | vs raw | vs before | survey R² (log) | per year MAE 2023 / 2024 "
        "| postings MAE | vs before | postings R² (log) |"
    )
    if cv:
        head += " grouped CV: survey MAE / R² | postings MAE / R² |"
    lines = [head, "|" + " --- |" * (head.count("|") - 1)]
    for row in table.to_dict("records"):
        s_mae, p_mae = row["aijobs.mae_usd"], row["postings.mae_usd"]
        years = " / ".join(
            f"{row[k]:,.0f}" for k in sorted(row) if k.startswith("aijobs:") and "mae" in k
        )
        line = (
            f"| {row['idea']} | {s_mae:,.0f} (±{row['aijobs.mae_spread'] / 2:,.0f}) "
            f"| {s_mae / raw['aijobs.mae_usd'] - 1:+.2%} "
            f"| {s_mae / before['aijobs.mae_usd'] - 1:+.2%} "
            f"| {row['aijobs.r2_log']:.3f} | {years} | {p_mae:,.0f} "
            f"| {p_mae / before['postings.mae_usd'] - 1:+.2%} | {row['postings.r2_log']:.3f} |"
        )
        if cv:
            if "cv.aijobs.mae_usd" in row and not np.isnan(row.get("cv.aijobs.mae_usd", np.nan)):
                line += (
                    f" {row['cv.aijobs.mae_usd']:,.0f} / {row['cv.aijobs.r2_log']:.3f} "
                    f"| {row['cv.postings.mae_usd']:,.0f} / {row['cv.postings.r2_log']:.3f} |"
                )
            else:
                line += " | |"
        lines.append(line)
    return "\n".join(lines)


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process and its finished worker processes."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[17, 1, 2])
    parser.add_argument("--ideas", nargs="+", default=list(IDEAS), choices=list(IDEAS))
    parser.add_argument("--cv", action="store_true", help="also grouped 5-fold CV (one seed)")
    parser.add_argument("--records", help="a pickle of the training records (saves ~1 minute)")
    parser.add_argument("--csv", help="write the full table here")
    args = parser.parse_args()
    base = for_workers(load_settings())
    if args.records:
        records = pd.read_pickle(args.records)
    else:
        records = load_training_data(base, load_sources(), accepted=False).records
    records = with_role_family(records.reset_index(drop=True), base)
    names = list(dict.fromkeys(["fused before (no title words)", *args.ideas]))
    wall, cpu = time.perf_counter(), _cpu_seconds()
    table = run(records, base, names, args.seeds, args.cv)
    print(f"machine: {machine()}")
    print(
        f"{len(records):,} records; seeds {args.seeds}; wall {time.perf_counter() - wall:,.0f} s, "
        f"CPU (user+sys, workers included) {_cpu_seconds() - cpu:,.0f} s"
    )
    print(markdown(table, args.cv))
    if args.csv:
        write_csv(table, Path(args.csv), index=False)


if __name__ == "__main__":
    main()
