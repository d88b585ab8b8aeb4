"""The training job: data -> CV evaluation -> final model -> MLflow run -> gate.

Everything a run produces is logged to one MLflow run. The version is
registered only after the run has logged its model, and the champion alias
moves only when the gate passes, so a failed or interrupted training never
replaces a good model.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from salarymodel.config.settings import Settings
from salarymodel.config.sources import SourcesConfig
from salarymodel.core.currency import exchange_rates
from salarymodel.core.model import SalaryModel
from salarymodel.core.timing import Stopwatch
from salarymodel.core.track_record import TrackRecord
from salarymodel.data.dataset import TrainingData, load_training_data
from salarymodel.evaluation.cv import cross_validate
from salarymodel.evaluation.fitters import Fitter, LocalFitter
from salarymodel.evaluation.report import EvaluationReport
from salarymodel.promotion.verdicts import report_verdicts
from salarymodel.training.run_log import data_tags, log_trained_model, write_explanations
from salarymodel.vocabulary import MODEL_NAMES

if TYPE_CHECKING:
    import pandas as pd
    from distributed import Client
    from mlflow import MlflowClient
    from mlflow.models.model import ModelInfo

    from salarymodel.promotion.decisions import GateDecision


Progress = Callable[[str], None]

# The run tag saying where a model was fit: "local" or "dask".
TAG_BACKEND = "training.backend"


@dataclass
class TrainResult:
    """What one training run did."""

    run_id: str
    version: str
    promoted: bool
    decision: GateDecision
    evaluation: EvaluationReport
    ranges: pd.DataFrame
    data: TrainingData
    seconds: dict[str, float]


def fit_final_model(data: TrainingData, settings: Settings) -> SalaryModel:
    """Fit the serving model (point estimate + calibrated ranges) on all training records."""
    model = LocalFitter(settings).fit_model(data.records, settings)
    return with_bundle_facts(model, data, settings)


def with_bundle_facts(model: SalaryModel, data: TrainingData, settings: Settings) -> SalaryModel:
    """The served model's exchange rates and training facts, wherever it was fit."""
    # The ECB exchange rates the package ships, stored with the bundle as a record
    # of the rates it was trained alongside (serving reads the package's own).
    model.currency = exchange_rates()
    model.metadata = model_metadata(data, settings)
    return model


def model_metadata(data: TrainingData, settings: Settings) -> dict[str, object]:
    """The training facts a bundle carries (``metadata.json``)."""
    return {
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "fingerprint": data.fingerprint,
        "default_source": settings.serving.default_source,
        "target": "log(salary_usd)",
        "rows": len(data.records),
    }


@dataclass
class Evaluated:
    """What one pass made: CV report, range table, final model, explanation files."""

    report: EvaluationReport
    ranges: pd.DataFrame
    model: SalaryModel
    explanations: list[Path] | None = None


def evaluate_and_fit(
    data: TrainingData,
    settings: Settings,
    models: tuple[str, ...],
    seconds: dict[str, float],
    progress: Progress | None = None,
    ranges: bool = True,
    explain_to: Path | None = None,
    fitter: Fitter | None = None,
) -> Evaluated:
    """Grouped CV of ``models``, (optionally) of the ranges, and the final model.

    One pass where ``fitter`` fits (this machine's worker pool by default, or
    a Dask cluster: ``distributed.DaskFitter``): the final fit is its first
    job (then the global explanations into ``explain_to``, when given), the
    folds' fits follow. ``seconds`` gets each part's seconds summed over jobs
    that ran side by side (``cross_validation``, ``range_evaluation``,
    ``final_fit``, ``explanations``), the fitter's own steps and the pass's
    wall time (``evaluate_and_fit_wall``).
    """
    import pandas as pd

    fitter = fitter or LocalFitter(settings)
    clock = Stopwatch(seconds)
    with clock.step("evaluate_and_fit_wall"), fitter.session(data.records):
        final = fitter.submit(_final_job, fitter, data, fitter.job_settings(settings), explain_to)
        report = cross_validate(
            data.records,
            settings,
            models=models,
            progress=progress,
            ranges=ranges,
            backtest=True,
            fitter=fitter,
        )
        if progress:
            progress("fitting the final model on all records")
        model, explanations, job_seconds = final.result()
        seconds["cross_validation"] = sum(report.seconds.values())
        seconds["range_evaluation"] = report.range_seconds
        seconds |= job_seconds | fitter.seconds
    if report.backtest is not None and model.ranges is not None:
        # The served ranges stretch each tail as much as the backtest found
        # they had to, one period ahead.
        model.ranges.drift = report.backtest.drift
    add_group_evaluation(report, model, data.records, settings)
    # Every comparison the run shows carries its size (train's and retrain's runs alike).
    report.verdicts = report_verdicts(report, settings.gate)
    table = report.ranges if report.ranges is not None else pd.DataFrame()
    return Evaluated(report, table, model, explanations)


def add_group_evaluation(
    report: EvaluationReport, model: SalaryModel, records: pd.DataFrame, settings: Settings
) -> None:
    """Per-group tables and percentile checks on ``report``; the served percentile map on
    ``model`` (fit on the out-of-fold records) and its groups' backtest record. Nothing
    without the CV's per-row ranges."""
    if report.cv_rows is None:
        return
    from salarymodel.evaluation.groups import NO_COUNTRY, UNRANKED, evaluate_groups

    backtest = report.backtest.estimates if report.backtest is not None else None
    tables, model.percentiles, report.group_rows = evaluate_groups(
        records.reset_index(drop=True), report.cv_rows, backtest, settings
    )
    report.groups = tables
    if "backtest" in tables:
        config = settings.group_evaluation
        model.track_record = TrackRecord.from_tables(
            tables["backtest"],
            config.track_record_warn_ratio,
            config.min_group_records,
            ignore=(UNRANKED, NO_COUNTRY),
        )


def _final_job(
    fitter: Fitter, data: TrainingData, settings: Settings, explain_to: Path | None
) -> tuple[SalaryModel, list[Path] | None, dict[str, float]]:
    clock = Stopwatch()
    with clock.step("final_fit"):
        model = with_bundle_facts(fitter.fit_model(data.records, settings), data, settings)
    if explain_to is None:
        return model, None, clock.seconds
    with clock.step("explanations"):
        paths = write_explanations(model, data, settings, explain_to)
    return model, paths, clock.seconds


def _cluster_client(settings: Settings, address: str | None, say: Progress) -> Client | None:
    """A client of the Dask cluster to train on, or None to train in this process.

    Connected before any data is read: an unreachable scheduler fails first.
    """
    from salarymodel.training.dask_cluster import cluster_address, connect

    address = cluster_address(settings, address)
    if address is None:
        return None
    say(f"connecting to the Dask scheduler at {address}")
    return connect(address, settings.training.dask_connect_timeout_seconds)


@contextmanager
def _closed_on_error(cluster: Client | None) -> Iterator[None]:
    """The cluster's client closed when the block fails (it stays open otherwise)."""
    try:
        yield
    except BaseException:
        if cluster is not None:
            cluster.close()
        raise


def _dask_fitter(client: Client, settings: Settings) -> Fitter:
    from salarymodel.training.distributed import DaskFitter

    return DaskFitter(client, settings)


def _check_registry(settings: Settings, new_store: bool) -> None:
    """May `train` use (or create) the store, and does an existing one answer? A
    ``RegistryError`` if not: the gate reads the champion after fitting, so a registry
    that cannot answer stops the job before the fitting is paid for."""
    from salarymodel.registry.champion import champion_version
    from salarymodel.registry.store import check_store_for_training, connect, store_exists

    check_store_for_training(settings, new_store)
    if store_exists(settings):
        champion_version(connect(settings), settings)


def train(
    settings: Settings,
    sources: SourcesConfig,
    paths: dict[str, Path] | None = None,
    sample: int | None = None,
    models: tuple[str, ...] = MODEL_NAMES,
    progress: Progress | None = None,
    dask_address: str | None = None,
    new_store: bool = False,
) -> TrainResult:
    """Run the whole training job and return what it decided.

    With ``dask_address`` (or ``training.backend: dask``) the fits run on
    that Dask cluster (``salarymodel.training.distributed``); the run, registry, gate
    and bundle are the same. A missing tracking store is created only on
    first use or with ``new_store`` (``registry.check_store_for_training``).
    """
    import mlflow

    from salarymodel.registry.store import TAG_KIND, connect, store_errors

    say = progress or (lambda _: None)
    _check_registry(settings, new_store)  # before hours of fitting, not after
    clock = Stopwatch()
    seconds = clock.seconds
    cluster = _cluster_client(settings, dask_address, say)
    say("loading and validating sources")
    with _closed_on_error(cluster), clock.step("data"):
        data = load_training_data(settings, sources, paths=paths, sample=sample)
    with tempfile.TemporaryDirectory() as tmp, cluster or nullcontext():
        fitter = LocalFitter(settings) if cluster is None else _dask_fitter(cluster, settings)
        done = evaluate_and_fit(
            data, settings, models, seconds, say, explain_to=Path(tmp), fitter=fitter
        )
        report, ranges = done.report, done.ranges
        client = connect(settings, create=True)
        tags = data_tags(data, settings)
        say("logging the run to MLflow")
        with store_errors("cannot log the training run"), mlflow.start_run() as run:
            mlflow.set_tags({**tags, TAG_KIND: "train", TAG_BACKEND: fitter.backend})
            info, _ = log_trained_model(
                done.model, data, report, ranges, settings, seconds, say, done.explanations
            )
            mlflow.log_metrics({f"seconds.{k}": v for k, v in clock.total().items()})
    # The gate reads the registry once the run is complete and outside it: a
    # store error (RegistryError) then stops here, nothing registered or moved.
    decision, version = _gate_and_publish(client, settings, tags, report, run.info.run_id, info)
    return TrainResult(
        run_id=run.info.run_id,
        version=version,
        promoted=decision.promote,
        decision=decision,
        evaluation=report,
        ranges=ranges,
        data=data,
        seconds=seconds,
    )


def _gate_and_publish(
    client: MlflowClient,
    settings: Settings,
    tags: dict[str, str],
    report: EvaluationReport,
    run_id: str,
    info: ModelInfo,
) -> tuple[GateDecision, str]:
    """The gate's decision on the finished run, recorded on it, and the registered version
    (the champion alias moved only on a pass). A failure marks the run failed."""
    from salarymodel.promotion.decisions import decide
    from salarymodel.promotion.gate import interval_metrics
    from salarymodel.promotion.publishing import publish
    from salarymodel.registry.store import mark_failed, store_errors

    rows = report.backtest.estimates if report.backtest is not None else None
    try:
        decision = decide(client, settings, tags, rows)
        with store_errors(f"cannot record the gate's decision on run {run_id}"):
            client.set_tag(run_id, "gate.promote", str(decision.promote))
            client.set_tag(run_id, "gate.reason", decision.reason)
            if decision.interval is not None:
                for key, value in interval_metrics(decision.interval).items():
                    client.log_metric(run_id, f"gate.{key}", value)
        # Registered only once the run is complete; the alias moves only on a pass.
        version = publish(client, settings, info.model_uri, run_id, decision.promote)
    except Exception as error:  # the run closed as finished; the training did not
        mark_failed(client, run_id, error)
        raise
    return decision, version.version
