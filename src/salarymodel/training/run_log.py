"""A training run's record in MLflow: parameters, metrics, evidence files, the bundle.

What ``train`` and ``retrain`` log to their active run for a trained model
(``log_trained_model``), and the tags naming its data and folds (``data_tags``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from salarymodel.config.settings import Settings
from salarymodel.core.model import SalaryModel
from salarymodel.core.timing import Stopwatch
from salarymodel.data.csv_output import write_csv
from salarymodel.data.dataset import TrainingData
from salarymodel.evaluation.backtest import BACKTEST_ESTIMATES
from salarymodel.evaluation.baselines import fit_threads
from salarymodel.evaluation.report import EvaluationReport

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.models.model import ModelInfo

Progress = Callable[[str], None]


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
    metrics = _run_metrics(report, ranges)
    mlflow.log_params(_params(settings))
    mlflow.log_metrics(metrics)
    _log_evidence(model, data, report, ranges)
    with tempfile.TemporaryDirectory() as tmp:
        if explanations is None:
            say("explaining the model (SHAP premiums and plots)")
            with Stopwatch(seconds).step("explanations"):
                explanations = write_explanations(model, data, settings, Path(tmp))
        for path in explanations:
            mlflow.log_artifact(str(path), "explanations")
    say("logging the model bundle")
    return log_model_bundle(model), metrics


def _run_metrics(report: EvaluationReport, ranges: pd.DataFrame) -> dict[str, float]:
    """The run's metrics: CV, ranges, backtest and per-group figures (what the gate reads)."""
    metrics = _metric_dict(report) | _range_metric_dict(ranges)
    if report.backtest is not None:
        metrics |= report.backtest.metric_dict()
    if report.groups is not None:
        from salarymodel.evaluation.groups import metric_dict

        metrics |= metric_dict(report.groups)
    return metrics


def _log_evidence(
    model: SalaryModel, data: TrainingData, report: EvaluationReport, ranges: pd.DataFrame
) -> None:
    """``evaluation.json``, ``data.json``, the vocabulary, the per-row backtest and CV
    files, the PIT plot and the quarantine files, to the active run."""
    import mlflow

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
        from salarymodel.evaluation.group_plot import write_pit_plot
        from salarymodel.evaluation.groups import CV_ROWS

        with tempfile.TemporaryDirectory() as tmp:
            mlflow.log_artifact(str(write_pit_plot(report.group_rows, Path(tmp))), "evaluation")
            # Each record's out-of-fold estimate, range, group and percentiles:
            # the per-group tables can be recomputed (and other groupings tried).
            write_csv(report.group_rows["cv"], Path(tmp) / CV_ROWS, index=False)
            mlflow.log_artifact(str(Path(tmp) / CV_ROWS), "evaluation")
