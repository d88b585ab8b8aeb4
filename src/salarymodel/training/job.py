"""The training job: data -> CV evaluation -> final model -> MLflow run -> gate.

Everything a run produces is logged to one MLflow run. The version is
registered only after the run has logged its model, and the champion alias
moves only when the gate passes, so a failed or interrupted training never
replaces a good model.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from salarymodel.config.settings import Settings
from salarymodel.config.sources import SourcesConfig
from salarymodel.core.currency import exchange_rates
from salarymodel.core.model import SalaryModel
from salarymodel.core.timing import Stopwatch
from salarymodel.data.csv_output import write_csv
from salarymodel.data.dataset import TrainingData, load_training_data
from salarymodel.evaluation.backtest import BACKTEST_ESTIMATES
from salarymodel.evaluation.baselines import fit_threads
from salarymodel.evaluation.cv import Fitter, LocalFitter, cross_validate
from salarymodel.evaluation.report import EvaluationReport
from salarymodel.promotion.verdicts import report_verdicts
from salarymodel.vocabulary import MODEL_NAMES

if TYPE_CHECKING:
    import pandas as pd
    from distributed import Client
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


def _metric_dict(report: EvaluationReport) -> dict[str, float]:
    out = {}
    for row in report.table.to_dict("records"):
        for name in ("r2_log", "mae_usd", "mdape"):
            out[f"{row['model']}.{row['source']}.{name}"] = float(row[name])
    return out


def _range_metric_dict(ranges: pd.DataFrame) -> dict[str, float]:
    """Pooled range metrics (grouped CV, backtest); per-fold rows are in evaluation.json."""
    out = {}
    for row in ranges.to_dict("records"):
        if row["split"] not in ("cv", "backtest"):
            continue
        prefix = f"ranges.{row['split']}.{row['method']}.{row['source']}"
        out[f"{prefix}.coverage"] = float(row["coverage"])
        out[f"{prefix}.mean_width_usd"] = float(row["mean_width_usd"])
        out[f"{prefix}.width_at_target_usd"] = float(row["width_at_target_usd"])
    return out


def _params(settings: Settings) -> dict[str, object]:
    return {
        **{f"lgb.{k}": v for k, v in settings.model.params.items()},
        "num_boost_round": settings.model.num_boost_round,
        "cv.n_folds": settings.evaluation.n_folds,
        "cv.seed": settings.evaluation.seed,
        "repeats.policy": settings.repeats.policy,
        "features.min_category_count": settings.features.min_category_count,
        "features.min_skill_count": settings.features.min_skill_count,
        "serving.default_source": settings.serving.default_source,
        "ranges.coverage": settings.ranges.coverage,
        "ranges.calibration_fraction": settings.ranges.calibration_fraction,
        "ranges.thin_support_below": settings.ranges.thin_support_below,
    }


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
    ``model`` (fit on the out-of-fold records). Nothing without the CV's per-row ranges."""
    if report.cv_rows is None:
        return
    from salarymodel.evaluation.groups import evaluate_groups

    backtest = report.backtest.estimates if report.backtest is not None else None
    report.groups, model.percentiles, report.group_rows = evaluate_groups(
        records.reset_index(drop=True), report.cv_rows, backtest, settings
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


def write_explanations(
    model: SalaryModel, data: TrainingData, settings: Settings, folder: Path
) -> list[Path]:
    """Global SHAP plots and the premiums table of ``model`` on a sample of ``data``."""
    from salarymodel.core.explanations import Explainer
    from salarymodel.report.explanation_plots import write_global_explanations

    _, paths = write_global_explanations(
        Explainer.from_model(model, fit_threads(settings)),
        data.records,
        folder,
        settings.explanations.sample_size,
        settings.explanations.min_count,
        seed=settings.evaluation.seed,
    )
    return paths


def data_tags(data: TrainingData, settings: Settings) -> dict[str, str]:
    """Tags that say which data, CV folds and backtest folds a run was evaluated on."""
    from salarymodel.registry.store import TAG_BACKTEST, TAG_FINGERPRINT, TAG_FOLDS

    backtest = settings.evaluation.backtest
    return {
        TAG_FINGERPRINT: str(data.fingerprint["hash"]),
        TAG_FOLDS: f"{settings.evaluation.n_folds}/seed{settings.evaluation.seed}",
        TAG_BACKTEST: (
            f"window{backtest.window_months}m/train{backtest.min_train_rows}"
            f"/test{backtest.min_test_rows}/max{backtest.max_folds_per_source}"
        ),
    }


def log_trained_model(
    model: SalaryModel,
    data: TrainingData,
    report: EvaluationReport,
    ranges: pd.DataFrame,
    settings: Settings,
    seconds: dict[str, float],
    progress: Progress | None = None,
    explanations: list[Path] | None = None,
) -> tuple[ModelInfo, dict[str, float]]:
    """Log a trained model and its evidence to the active MLflow run.

    Parameters, CV and range metrics, ``evaluation.json``, ``data.json``, the
    vocabulary, quarantine files, global SHAP outputs (``explanations`` when
    already written, else made here) and the model bundle. Returns the
    logged model and the metrics the gate reads.
    """
    import mlflow

    from salarymodel.registry.bundles import log_model_bundle

    say = progress or (lambda _: None)
    run = mlflow.active_run()
    if run is None:
        raise RuntimeError("logging a trained model needs an active MLflow run")
    model.metadata["run_id"] = run.info.run_id
    metrics = _metric_dict(report) | _range_metric_dict(ranges)
    if report.backtest is not None:
        metrics |= report.backtest.metric_dict()
    if report.groups is not None:
        from salarymodel.evaluation.groups import metric_dict

        metrics |= metric_dict(report.groups)
    mlflow.log_params(_params(settings))
    mlflow.log_metrics(metrics)
    mlflow.log_dict({**report.to_dict(), "ranges": ranges.to_dict("records")}, "evaluation.json")
    mlflow.log_dict(
        {
            "fingerprint": data.fingerprint,
            "counts": [asdict(c) for c in data.counts],
            "findings": [f.as_dict() for f in data.findings],
        },
        "data.json",
    )
    mlflow.log_dict(model.builder.to_dict(), "vocabulary.json")
    if report.backtest is not None:
        # Per-row backtest estimates: the gate pairs a challenger's with the
        # champion's on the same records.
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / BACKTEST_ESTIMATES
            write_csv(report.backtest.estimates, path, index=False)
            mlflow.log_artifact(str(path), "evaluation")
    for file in data.quarantine_files:
        mlflow.log_artifact(str(file), "quarantine")
    if report.group_rows:
        from salarymodel.evaluation.groups import CV_ROWS, write_pit_plot

        with tempfile.TemporaryDirectory() as tmp:
            mlflow.log_artifact(str(write_pit_plot(report.group_rows, Path(tmp))), "evaluation")
            # Each record's out-of-fold estimate, range, group and percentiles:
            # the per-group tables can be recomputed (and other groupings tried).
            write_csv(report.group_rows["cv"], Path(tmp) / CV_ROWS, index=False)
            mlflow.log_artifact(str(Path(tmp) / CV_ROWS), "evaluation")
    with tempfile.TemporaryDirectory() as tmp:
        if explanations is None:
            say("explaining the model (SHAP premiums and plots)")
            with Stopwatch(seconds).step("explanations"):
                explanations = write_explanations(model, data, settings, Path(tmp))
        for path in explanations:
            mlflow.log_artifact(str(path), "explanations")
    say("logging the model bundle")
    return log_model_bundle(model), metrics


def _cluster_client(settings: Settings, address: str | None, say: Progress) -> Client | None:
    """A client of the Dask cluster to train on, or None to train in this process.

    Connected before any data is read: an unreachable scheduler fails first.
    """
    from salarymodel.training.distributed import cluster_address, connect

    address = cluster_address(settings, address)
    if address is None:
        return None
    say(f"connecting to the Dask scheduler at {address}")
    return connect(address, settings.training.dask_connect_timeout_seconds)


def _dask_fitter(client: Client, settings: Settings) -> Fitter:
    from salarymodel.training.distributed import DaskFitter

    return DaskFitter(client, settings)


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

    from salarymodel.promotion.decisions import decide
    from salarymodel.promotion.gate import interval_metrics
    from salarymodel.promotion.publishing import publish
    from salarymodel.registry.store import (
        TAG_KIND,
        check_store_for_training,
        connect,
        mark_failed,
        store_errors,
    )

    say = progress or (lambda _: None)
    check_store_for_training(settings, new_store)  # before hours of fitting, not after
    clock = Stopwatch()
    seconds = clock.seconds
    cluster = _cluster_client(settings, dask_address, say)
    say("loading and validating sources")
    try:
        with clock.step("data"):
            data = load_training_data(settings, sources, paths=paths, sample=sample)
    except BaseException:
        if cluster is not None:
            cluster.close()
        raise

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
    rows = report.backtest.estimates if report.backtest is not None else None
    try:
        decision = decide(client, settings, tags, rows)
        with store_errors(f"cannot record the gate's decision on run {run.info.run_id}"):
            client.set_tag(run.info.run_id, "gate.promote", str(decision.promote))
            client.set_tag(run.info.run_id, "gate.reason", decision.reason)
            if decision.interval is not None:
                for key, value in interval_metrics(decision.interval).items():
                    client.log_metric(run.info.run_id, f"gate.{key}", value)
        # Registered only once the run is complete; the alias moves only on a pass.
        version = publish(client, settings, info.model_uri, run.info.run_id, decision.promote)
    except Exception as error:  # the run closed as finished; the training did not
        mark_failed(client, run.info.run_id, error)
        raise
    return TrainResult(
        run_id=run.info.run_id,
        version=version.version,
        promoted=decision.promote,
        decision=decision,
        evaluation=report,
        ranges=ranges,
        data=data,
        seconds=seconds,
    )
