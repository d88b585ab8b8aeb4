"""Retraining with new data: validate, quarantine, merge, compare, then promote or keep.

``retrain`` runs these steps inside one MLflow run (tags: the parent champion
version, the fingerprints of the existing, new and merged data):

1. The new file is mapped by a configured adapter (named, or detected from
   its columns; the canonical format as a last resort) and validated. Bad
   rows go to ``<reports_dir>/<time>/new.<source>.quarantine.csv`` with
   "column: reason"; rows in = rows accepted + rows quarantined.
2. The existing training data (shipped sources plus files earlier promoted
   retrains accepted, see ``dataset.accepted_files``) is merged with the
   accepted rows; a record present in both is one record.
3. Drift of the new records against the existing ones (``drift.py``), written
   as HTML and JSON and logged.
4. Data checks: enough accepted rows, not too many quarantined, something
   new, a plausible median salary; and the whole-file checks on the drift
   figures (unseen titles and skills, feature PSI, salary PSI; limits in
   ``retraining``). A failing check ends the retrain here; a failing
   whole-file check also copies the file, whole, to ``quarantine_dir`` with
   a reason file (``quarantine_file``).
5. Held-out comparison. The champion was fit on every existing record, so
   only rows it never saw can judge it fairly: groups (a record with its
   repeats and a posting's reposts) found only in the new file are held out
   when a stable hash of the group id falls below ``holdout_fraction``. A
   challenger is fit on everything else (existing records included). Both
   predict exactly the same held-out rows, the champion with its registered
   bundle. A paired bootstrap of the gate metric's difference over groups of
   those rows (``salarymodel.promotion.gate``) refuses a challenger worse beyond noise
   and, when the two are indistinguishable, prefers the challenger (it was
   trained on newer data, which passed the whole-file checks; otherwise a
   tie keeps the champion). A second check guards against forgetting: on a
   fixed sample of existing records (both models were fit on them) the
   challenger may be worse by at most ``existing_tolerance``. A third looks
   at every source's most recent period (``compare_recent_periods``): fits
   with and without the new records, on the same earlier rows, must not
   differ there beyond noise to the new records' harm.
6. On a pass, the registered challenger is refit on all merged records (the
   held-out rows too: they are the newest data) and cross-validated like
   ``train`` does, so every version carries the same kind of metrics; its
   version is registered and the champion alias moved only after the run has
   logged everything. The accepted rows are then kept for the next retrain.
   On a failure nothing is registered, nothing is kept, and the run says why;
   but a challenger that passed everything except the count of its training
   records (``records_check``: a ``--sample`` retrain) is refit and registered
   without moving the alias, for an operator to promote or not.

A kill at any point leaves either the old champion with its data or the new
champion with the data it was trained on (``salarymodel.promotion.publishing``); a registry
that cannot answer stops the retrain (``RegistryError``) and promotes nothing.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import mlflow
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.models.model import ModelInfo

from salarymodel.config.settings import Settings, resolve_path
from salarymodel.config.sources import SourcesConfig
from salarymodel.core.model import SalaryModel
from salarymodel.core.timing import Stopwatch
from salarymodel.evaluation.drift import DriftReport
from salarymodel.promotion.decisions import (
    Comparison,
    RetrainDecision,
    model_checks,
    records_check,
)
from salarymodel.promotion.gate import (
    interval_metrics,
)
from salarymodel.promotion.publishing import AcceptedRows, publish
from salarymodel.promotion.recent_periods import compare_recent_periods
from salarymodel.registry.bundles import load_version
from salarymodel.registry.champion import champion_version
from salarymodel.registry.store import (
    TAG_KIND,
    TAG_PARENT,
    RegistryError,
    connect,
    lost_store_error,
    mark_failed,
    store_errors,
    store_lost,
)
from salarymodel.retraining.checks import data_checks, measure_drift, period_checks, quarantine_file
from salarymodel.retraining.holdout import compare_on_holdout
from salarymodel.retraining.intake import (
    TAG_NEW,
    Merged,
    NewData,
    existing_sample,
    holdout_mask,
    merge_with_existing,
    read_new_file,
)
from salarymodel.retraining.pending import reconcile_accepted, retrain_lock
from salarymodel.training.job import evaluate_and_fit
from salarymodel.training.run_log import data_tags, log_trained_model

Progress = Callable[[str], None]


# ----- the flow ---------------------------------------------------------------------------
@dataclass
class RetrainResult:
    """What one retrain did and why."""

    run_id: str
    parent_version: str
    version: str | None
    decision: RetrainDecision
    new: NewData
    novel_records: int
    repeats_of_existing: int
    drift: DriftReport
    comparison: Comparison | None
    folder: Path
    fingerprints: dict[str, str]
    seconds: dict[str, float]
    accepted_file: Path | None = None
    quarantined_file: Path | None = None  # the whole new file, when a file check refused it

    @property
    def promoted(self) -> bool:
        return self.version is not None and self.decision.promote

    def summary(self) -> dict[str, object]:
        """What the run decided and measured, as JSON."""
        return {
            "run_id": self.run_id,
            "parent_version": self.parent_version,
            "version": self.version,
            "promoted": self.promoted,
            "reason": self.decision.reason,
            "checks": [asdict(c) for c in self.decision.checks],
            "new_file": str(self.new.path),
            "source": self.new.source,
            "rows": asdict(self.new.prepared.counts),
            "novel_records": self.novel_records,
            "repeats_of_existing": self.repeats_of_existing,
            "fingerprints": self.fingerprints,
            "comparison": asdict(self.comparison) if self.comparison else None,
            "drift": self.drift.headline(),
            "accepted_file": str(self.accepted_file) if self.accepted_file else None,
            "quarantined_file": str(self.quarantined_file) if self.quarantined_file else None,
            "seconds": self.seconds,
        }


def _comparison_metrics(comparison: Comparison) -> dict[str, float]:
    out = {}
    for part, table in (("holdout", comparison.holdout), ("existing", comparison.existing)):
        for model, slices in table.items():
            for name, values in slices.items():
                for key in ("mae_usd", "mdape", "r2_log"):
                    out[f"{part}.{model}.{name}.{key}"] = float(values[key])
    out["holdout.rows"] = comparison.holdout_rows
    out["holdout.train_rows"] = comparison.train_rows
    out |= {f"holdout.gate.{k}": v for k, v in interval_metrics(comparison.interval).items()}
    for period in comparison.periods:
        figures = interval_metrics(period.interval)
        out |= {f"recent.{period.source}.{k}": v for k, v in figures.items()}
    return out


def retrain(
    settings: Settings,
    sources: SourcesConfig,
    path: Path,
    source: str | None = None,
    sample: int | None = None,
    progress: Progress | None = None,
) -> RetrainResult:
    """Retrain on the existing data plus a new file; promote only through the gate.

    Holds the project's retrain lock throughout and first settles accepted rows
    a killed retrain left pending, so the existing data is what the champion
    line was trained on.
    """
    say = progress or (lambda _: None)
    client = connect(settings)
    with retrain_lock(settings):
        settled = reconcile_accepted(client, settings)
        for file in settled.committed:
            say(f"kept {file.name}: rows of a champion whose retrain stopped before keeping them")
        for file in settled.dropped:
            say(f"dropped {file.name}: rows of a version that never became champion")
        try:
            return _retrain(client, settings, sources, path, source, sample, say)
        except Exception as error:
            # A store moved away mid-run answers with SQLAlchemy's autoflush or
            # "no such table" messages; say what happened instead.
            if store_lost(settings):
                raise lost_store_error(settings, "the retrain stopped") from error
            raise


def _champion_to_beat(client: MlflowClient, settings: Settings) -> ModelVersion:
    parent = champion_version(client, settings)
    if parent is None:
        raise RegistryError(
            "there is no champion to compare a challenger with; run `salarymodel train` first"
        )
    return parent


def judge(
    merged: Merged,
    new: NewData,
    drift: DriftReport,
    champion: tuple[SalaryModel, str],
    settings: Settings,
    clock: Stopwatch,
    say: Progress,
) -> tuple[RetrainDecision, Comparison | None]:
    """Stages 4 and 5: the data checks, then (when they pass and enough new rows
    can be held out) the challenger against the champion on the held-out rows."""
    decision = RetrainDecision()
    if not data_checks(new, merged.novel, drift, settings, decision):
        return decision, None
    data_passed = not decision.file_refused
    records = merged.data.records
    model, version = champion
    # The registered challenger is refit on all merged records (stage 6); the
    # champion's count is its bundle's (metadata.json, an int since the first bundle).
    trained_on = cast(int, model.metadata["rows"])
    records_check(len(records), trained_on, version, settings, decision)
    holdout = holdout_mask(records, merged.is_new, settings)
    enough = decision.add(
        "held-out rows",
        holdout.sum() >= settings.retraining.min_holdout_rows,
        f"{int(holdout.sum()):,} new records held out "
        f"(at least {settings.retraining.min_holdout_rows:,} needed to judge)",
    )
    if not enough:
        return decision, None
    say("fitting a challenger without the held-out rows; scoring both models")
    with clock.step("holdout_comparison"):
        sample_mask = existing_sample(records, merged.is_new, settings)
        comparison = compare_on_holdout(records, holdout, sample_mask, model, settings)
    model_checks(comparison, version, settings, decision, data_passed)
    say("fitting with and without the new rows for every source's most recent period")
    with clock.step("recent_periods"):
        comparison.periods = compare_recent_periods(records, merged.is_new, settings)
    period_checks(comparison.periods, sorted(records["source"].unique()), settings, decision)
    mlflow.log_metrics(_comparison_metrics(comparison))
    return decision, comparison


def _log_new_file(new: NewData, merged: Merged, decision: RetrainDecision) -> None:
    counts = new.prepared.counts
    mlflow.log_metrics(
        {
            "new.rows_in": counts.rows_in,
            "new.accepted": counts.kept,
            "new.quarantined": counts.quarantined,
            "new.records": counts.after_repeats,
            "new.novel_records": merged.novel,
            "new.repeats_of_existing": merged.repeats_of_existing,
        }
    )
    if new.prepared.quarantine_file:
        mlflow.log_artifact(str(new.prepared.quarantine_file), "quarantine")
    mlflow.set_tags({"gate.promote": str(decision.promote), "gate.reason": decision.reason})


def refit_challenger(
    merged: Merged, parent: str, settings: Settings, seconds: dict[str, float], say: Progress
) -> ModelInfo:
    """Stage 6 (on a pass): the challenger refit on all merged records, cross-validated
    like ``train`` and logged to the active run (registered later, by publishing)."""
    models = tuple(settings.retraining.cv_models)
    say("refitting the challenger on all records (held-out rows included)")
    with tempfile.TemporaryDirectory() as tmp:
        done = evaluate_and_fit(
            merged.data,
            settings,
            models,
            seconds,
            say,
            ranges=settings.retraining.evaluate_ranges,
            explain_to=Path(tmp),
        )
        done.model.metadata["parent_version"] = parent
        info, _ = log_trained_model(
            done.model, merged.data, done.report, done.ranges, settings, seconds, say,
            done.explanations,
        )  # fmt: skip
    return info


def _retrain(
    client: MlflowClient,
    settings: Settings,
    sources: SourcesConfig,
    path: Path,
    source: str | None,
    sample: int | None,
    say: Progress,
) -> RetrainResult:
    clock = Stopwatch()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    folder = resolve_path(settings.retraining.reports_dir) / stamp
    with clock.step("data"):
        parent = _champion_to_beat(client, settings)
        say("reading and validating the new file")
        new = read_new_file(path, settings, sources, source, quarantine_dir=folder)
    with (
        store_errors("cannot log the retrain run"),
        mlflow.start_run(run_name=f"retrain-{stamp}") as run,
    ):
        mlflow.set_tags(_run_tags(parent, path, new))
        with clock.step("data"):
            say(f"loading champion v{parent.version}")
            champion = load_version(client, settings, parent)
            say("loading the existing training data")
            merged = merge_with_existing(new, settings, sources, sample)
        mlflow.set_tags({**data_tags(merged.data, settings), **merged.fingerprints})
        say("measuring drift")
        with clock.step("drift"):
            drift = measure_drift(merged, new, champion, folder)
        decision, comparison = judge(
            merged, new, drift, (champion, str(parent.version)), settings, clock, say
        )
        _log_new_file(new, merged, decision)
        quarantined = None
        if decision.file_refused:
            quarantined = quarantine_file(new, decision, drift, stamp, settings)
            say(f"the new file failed a file check: quarantined whole as {quarantined}")
            mlflow.set_tag("quarantined_file", str(quarantined))
        info = None
        if decision.registers:
            info = refit_challenger(merged, str(parent.version), settings, clock.seconds, say)
        mlflow.log_metrics({f"seconds.{k}": v for k, v in clock.total().items()})
        result = RetrainResult(
            run.info.run_id, str(parent.version), None, decision, new, merged.novel,
            merged.repeats_of_existing, drift, comparison, folder, merged.fingerprints,
            clock.seconds, quarantined_file=quarantined,
        )  # fmt: skip
        mlflow.log_dict(result.summary(), "retrain.json")
    if info is not None:
        accepted = AcceptedRows(
            new.accepted_raw, new.source, f"{stamp}-{merged.fingerprints[TAG_NEW]}"
        )
        _publish_challenger(client, settings, info, accepted, result)
    (folder / "retrain.json").write_text(json.dumps(result.summary(), indent=1, default=str))
    return result


def _run_tags(parent: ModelVersion, path: Path, new: NewData) -> dict[str, str | None]:
    """The retrain run's kind, the champion it challenges and the new file's name and source."""
    return {
        TAG_KIND: "retrain",
        TAG_PARENT: str(parent.version),
        "parent_run_id": parent.run_id,
        "new_file": path.name,
        "new_source": new.source,
    }


def _publish_challenger(
    client: MlflowClient,
    settings: Settings,
    info: ModelInfo,
    accepted: AcceptedRows,
    result: RetrainResult,
) -> None:
    """Register the finished run's challenger, as champion when the gate promotes it,
    and keep its accepted rows (on ``result``); a failure marks the run failed.

    Not promoted, its rows stay pending: the next retrain keeps them only if an
    operator made it champion meanwhile (``reconcile_accepted``).
    """
    promote = result.decision.promote
    try:
        published = publish(client, settings, info.model_uri, result.run_id, promote, accepted)
        result.version, result.accepted_file = published.version, published.accepted
        if not promote:
            result.decision.registered_unpromoted(published.version)
            with store_errors(f"v{published.version} is registered, but its run could not say so"):
                client.set_tag(result.run_id, "gate.reason", result.decision.reason)
    except Exception as error:  # the run finished, its publishing did not: FAILED
        mark_failed(client, result.run_id, error)
        raise
