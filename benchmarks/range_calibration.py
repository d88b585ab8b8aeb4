"""Range calibration on the rolling out-of-time backtest: which variant keeps its promise.

Fits the range procedure at every backtest cut-off (``salarymodel.evaluation.backtest``)
for each variant of ``ranges:`` below, on all shipped data, and prints the
pooled coverage, each tail's misses and the widths per source. ``calibrated``
is the variant's ranges with the drift stretch learnt from earlier folds (what
is served); ``calibrated_in_time`` the same ranges without it. The constant
bands are the same in every variant except ``latest`` (their k comes from the
same calibration records).

    .venv/bin/python benchmarks/range_calibration.py [VARIANT ...]

Variants (see ``VARIANTS``): the configured ranges, other recency half-lives
or none, other constant parts of the scale (``spread_blend``), and
calibration on each source's latest period instead of a random share of
groups.
"""

from __future__ import annotations

import sys
import time

from serving import machine

from salarymodel.config.settings import load_settings, load_sources
from salarymodel.data.dataset import load_training_data
from salarymodel.data.role_family import with_role_family
from salarymodel.evaluation.backtest import backtest_folds
from salarymodel.evaluation.cv import backtest_report
from salarymodel.evaluation.fitters import _backtest_jobs, _run_jobs
from salarymodel.evaluation.workers import for_workers, worker_pool
from salarymodel.vocabulary import FUSED_MODEL

# Each variant changes the configured ``ranges:`` (spread_blend 0.5, recency
# weights with a 6-month half-life, random calibration groups).
VARIANTS: dict[str, dict[str, object]] = {
    "configured": {},
    "no_recency": {"recency_half_life_months": None},
    "recency_3": {"recency_half_life_months": 3.0},
    "recency_12": {"recency_half_life_months": 12.0},
    "blend_0": {"spread_blend": 0.0},
    "blend_1": {"spread_blend": 1.0},
    "blend_1_no_recency": {"spread_blend": 1.0, "recency_half_life_months": None},
    "blend_2": {"spread_blend": 2.0},
    "latest": {"calibration": "latest"},
}
COLUMNS = ["method", "source", "n", "coverage", "below_low", "above_high", "mean_width_usd",
           "width_at_target_usd"]  # fmt: skip


def _number(value: float) -> str:
    return f"{value:,.3f}" if value < 10 else f"{value:,.0f}"


def main(names: list[str]) -> None:
    base = load_settings()
    records = load_training_data(base, load_sources(), accepted=False).records
    records = with_role_family(records.reset_index(drop=True), base)
    print(f"machine: {machine()}")
    for name in names:
        ranges = base.ranges.model_copy(update=VARIANTS[name])
        settings = base.model_copy(update={"ranges": ranges})
        folds = backtest_folds(records, settings.evaluation.backtest)
        start = time.perf_counter()
        jobs = _backtest_jobs(records, folds, for_workers(settings), [FUSED_MODEL], True)
        with worker_pool(settings) as pool:
            results = _run_jobs(pool, jobs, None)
        report = backtest_report(records, folds, [FUSED_MODEL], results, settings)
        table = report.ranges[report.ranges["split"] == "backtest"][COLUMNS]
        print(f"\n== {name}: {len(folds)} folds in {time.perf_counter() - start:.0f} s; "
              f"served stretch {report.drift}")  # fmt: skip
        print(
            table.to_string(
                index=False, float_format=lambda v: f"{v:,.3f}" if v < 10 else f"{v:,.0f}"
            )
        )


if __name__ == "__main__":
    main(sys.argv[1:] or list(VARIANTS))
