"""The retrain's checks: enough good rows, drift within bounds, each source's latest period.

A file the checks refuse whole is quarantined with its reasons.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow

from salarymodel.config.settings import Settings, resolve_path
from salarymodel.core.model import SalaryModel
from salarymodel.evaluation.drift import DriftReport, drift_report
from salarymodel.evaluation.drift_output import write_drift_report
from salarymodel.promotion.decisions import RetrainDecision
from salarymodel.promotion.gate import (
    WORSE,
    describe,
    verdict,
)
from salarymodel.promotion.recent_periods import PeriodComparison
from salarymodel.retraining.intake import Merged, NewData
from salarymodel.vocabulary import ALL

# ----- every source's most recent period (``recent_periods``) ----------------------------
NOT_CLEARLY_WORSE = "not clearly worse: passes"
RECENT_CHECK = "recent period"


def period_checks(
    periods: list[PeriodComparison], sources: list[str], settings: Settings,
    decision: RetrainDecision,
) -> bool:  # fmt: skip
    """A challenger clearly worse on any source's most recent period is refused."""
    tolerance = settings.gate.tolerance
    ok = True
    for period in periods:
        found = verdict(period.interval, tolerance)
        ok &= decision.add(
            f"{RECENT_CHECK} {period.source} {period.period}",
            found != WORSE,
            f"{settings.gate.metric}, fit on {period.train_rows:,} earlier records with vs "
            f"without the {period.new_rows:,} new ones: "
            + describe(period.interval, found, "without them", tolerance, NOT_CLEARLY_WORSE),
        )
    for source in sorted(set(sources) - {p.source for p in periods}):
        decision.add(
            f"{RECENT_CHECK} {source}",
            True,
            "not compared: too little history for a backtest fold (evaluation.backtest)",
        )
    return ok


def data_checks(
    new: NewData, novel: int, drift: DriftReport, settings: Settings, decision: RetrainDecision
) -> bool:
    """Checks on the new data before anything is trained; False when one fails.

    All but "new records" (a file already in the training data is a repeat,
    not junk) are whole-file checks: failing one quarantines the file.
    """
    config = settings.retraining
    counts = new.prepared.counts
    ok = decision.add(
        "accepted rows",
        counts.kept >= config.min_new_rows,
        f"{counts.kept:,} of {counts.rows_in:,} rows accepted "
        f"(at least {config.min_new_rows:,} needed)",
        whole_file=True,
    )
    ok &= decision.add(
        "quarantined share",
        new.quarantined_share <= config.max_quarantined_share,
        f"{counts.quarantined:,} of {counts.rows_in:,} rows quarantined "
        f"({new.quarantined_share:.1%}; at most {config.max_quarantined_share:.0%} allowed)",
        whole_file=True,
    )
    ok &= decision.add(
        "new records",
        novel > 0,
        f"{novel:,} records not already in the training data",
    )
    if config.max_median_shift is not None:
        for source, shift in drift.salary.items():
            if source == ALL or "median_shift_pct" not in shift:
                continue
            moved = abs(shift["median_shift_pct"]) / 100
            ok &= decision.add(
                f"median salary ({source})",
                moved <= config.max_median_shift,
                f"{shift['reference']['median']:,.0f} -> {shift['new']['median']:,.0f} USD "
                f"({shift['median_shift_pct']:+.1f}%; at most "
                f"{config.max_median_shift:.0%} either way: check units and currency)",
                whole_file=True,
            )
    return drift_checks(drift, settings, decision) and ok


def drift_checks(drift: DriftReport, settings: Settings, decision: RetrainDecision) -> bool:
    """Whole-file checks on what the file looks like next to the existing data:
    unseen titles and skills, feature PSI and salary PSI (``drift.py``'s figures)."""
    config = settings.retraining
    if not drift.novelty:  # no reference records of the file's sources: nothing to compare
        return True
    share = drift.novelty["unseen_title_share"]
    ok = decision.add(
        "unseen titles",
        share <= config.max_unseen_title_share,
        f"{share:.1%} of {drift.new_rows:,} new records have a title no existing record has "
        f"and no role family (at most {config.max_unseen_title_share:.0%})",
        whole_file=True,
    )
    if drift.novelty["records_with_skills"]:
        share = drift.novelty["unseen_skills_share"]
        ok &= decision.add(
            "unseen skills",
            share <= config.max_unseen_skills_share,
            f"{share:.1%} of {drift.novelty['records_with_skills']:,.0f} new records listing "
            f"skills list none known (at most {config.max_unseen_skills_share:.0%})",
            whole_file=True,
        )
    judged = [f for f in drift.features if f.feature not in config.psi_exempt]
    if config.max_feature_psi is not None and judged:
        worst = max(judged, key=lambda f: f.psi)
        above = [f"{f.feature} {f.psi:.2f}" for f in judged if f.psi > config.max_feature_psi]
        ok &= decision.add(
            "feature drift",
            not above,
            f"PSI above {config.max_feature_psi:g}: {', '.join(above)}"
            if above
            else f"largest PSI {worst.feature} {worst.psi:.2f} (at most "
            f"{config.max_feature_psi:g}; not judged: {', '.join(config.psi_exempt) or 'none'})",
            whole_file=True,
        )
    if config.max_salary_psi is not None:
        for source, shift in drift.salary.items():
            if source == ALL or "psi" not in shift:
                continue
            ok &= decision.add(
                f"salary drift ({source})",
                shift["psi"] <= config.max_salary_psi,
                f"PSI of log salary {shift['psi']:.3f} (at most {config.max_salary_psi:g}); "
                f"KS {shift['ks_statistic']:.3f}",
                whole_file=True,
            )
    return ok


def quarantine_file(
    new: NewData, decision: RetrainDecision, drift: DriftReport, stamp: str, settings: Settings
) -> Path:
    """Copy a refused new file, whole, to the quarantine folder with a reason file.

    The reason file names each failed check and holds the drift figures (the
    headline and novelty; the full report is beside the run's other reports).
    The delivered file itself is left where it was: it is the caller's.
    """
    import shutil

    folder = resolve_path(settings.retraining.quarantine_dir)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{stamp}-{new.path.name}"
    shutil.copyfile(new.path, target)
    lines = [f"{new.path} quarantined as a whole at {stamp}; nothing was trained on it.", ""]
    lines += [f"failed: {c.name}: {c.detail}" for c in decision.file_refused]
    figures = json.dumps(drift.headline(), indent=1, default=str)
    lines += ["", "drift figures (drift.py):", figures, ""]
    reason = target.with_name(target.name + ".reason.txt")
    reason.write_text("\n".join(lines))
    return target


def measure_drift(merged: Merged, new: NewData, champion: SalaryModel, folder: Path) -> DriftReport:
    """Stage 3: drift of the new records against the existing ones, written and logged."""
    drift = drift_report(merged.existing.records, new.records, champion.builder)
    for file in write_drift_report(drift, folder):
        mlflow.log_artifact(str(file), "drift")
    return drift
