"""The percentile check of a finished training run, with the drift map and without.

Reads a run's per-row artifacts (``evaluation/cv_estimates.csv.gz`` and
``evaluation/backtest_estimates.csv.gz`` under the MLflow store of
``SALARYMODEL_ROOT``) and the same records (``load_training_data`` with the
run's settings), recomputes ``evaluation.groups.evaluate_groups`` for each
``--prior`` / ``--min-group`` pair of the drift map
(``salarymodel.core.percentile_drift``; 0 records: its default in YAML), and
prints per split and group the worst gap (points) of the in-time percentile
and of the served one. No model is fit: a variant takes seconds.

    SALARYMODEL_ROOT=$PWD/root .venv/bin/python benchmarks/percentile_drift.py \\
        [--run-dir PATH] [--prior 0,100,200,500] [--min-group 100]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from salarymodel.config.settings import load_settings, load_sources, project_root
from salarymodel.data.dataset import load_training_data
from salarymodel.evaluation.groups import evaluate_groups

SHOWN = ("all", "pay_level", "source_region")


def latest_run(root: Path) -> Path:
    """The newest run folder holding both per-row artifacts."""
    found = sorted(
        root.glob("**/artifacts/evaluation/backtest_estimates.csv.gz"),
        key=lambda p: p.stat().st_mtime,
    )
    if not found:
        raise SystemExit(f"no run with evaluation artifacts under {root}")
    return found[-1].parent


def gaps(tables: dict, split: str, column: str) -> dict[str, tuple[int, float]]:
    """Group -> (records, worst gap) of ``column``'s percentile check in ``split``."""
    rows = tables[split]["percentile_check"].get(column, [])
    return {r["group"]: (r["n"], r["worst_gap"]) for r in rows if r["dimension"] in SHOWN}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, help="the run's evaluation/ artifact folder")
    parser.add_argument("--prior", default="0,100,200,500")
    parser.add_argument("--min-group", default="100")
    args = parser.parse_args()
    root = project_root()
    folder = args.run_dir or latest_run(root)
    settings, sources = load_settings(), load_sources()
    records = load_training_data(settings, sources).records.reset_index(drop=True)
    cv = pd.read_csv(folder / "cv_estimates.csv.gz")
    backtest = pd.read_csv(folder / "backtest_estimates.csv.gz")
    print(f"run artifacts: {folder}; {len(cv):,} CV rows, {len(backtest):,} backtest rows")
    for prior in [float(v) for v in args.prior.split(",")]:
        for least in [int(v) for v in args.min_group.split(",")]:
            update = {"drift_prior": prior, "drift_min_group_records": least}
            calibrate = settings.percentile_calibration.model_copy(update=update)
            variant = settings.model_copy(update={"percentile_calibration": calibrate})
            tables, _, _ = evaluate_groups(records, cv, backtest, variant)
            before = gaps(tables, "backtest", "percentile_in_time")
            after = gaps(tables, "backtest", "percentile")
            cv_gaps = gaps(tables, "cv", "percentile")
            print(f"\nprior {prior:g}, min group {least}: worst gap, points")
            print(f"{'group':<28} {'CV':>5} {'backtest n':>10} {'in time':>8} {'drift':>6}")
            for group, (n, gap) in after.items():
                print(f"{group:<28} {cv_gaps.get(group, (0, float('nan')))[1]:5.1f} "
                      f"{n:10,} {before[group][1]:8.1f} {gap:6.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
