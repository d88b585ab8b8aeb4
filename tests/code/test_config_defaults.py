"""Configuration defaults live in configs/salarymodel.yaml only (issue 25, "each fact once").

A settings field with a default in config.py competes with the YAML: the two
can drift apart unseen (``ranges.spread_blend`` was 1.0 in code and 0.0 in the
YAML, and the docstring still defended 1.0). So:

- a code default that differs from the YAML's value fails at once;
- a field may keep a code default only while it is on ``STILL_IN_CODE``, the
  list of defaults not yet moved out of config.py. The list only shrinks: a
  new code default fails, and so does an entry that no longer has one.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from salarymodel.config import Settings

ROOT = Path(__file__).resolve().parents[2]

# Defaults still written in config.py (equal to the YAML's value, or for keys
# the YAML leaves out). Move one into the YAML (and make the field required)
# and delete its line here.
STILL_IN_CODE = {
    "validation.salary_usd_min", "validation.salary_usd_max", "validation.year_min",
    "validation.year_max", "validation.quarantine_dir", "repeats.policy",
    "features.min_category_count", "features.min_skill_count",
    "features.title_words", "features.title_words.min_count", "features.title_words.ngrams",
    "features.location",
    "ranges.coverage", "ranges.calibration_fraction", "ranges.calibration",
    "ranges.latest_months", "ranges.max_factor", "ranges.thin_support_below",
    "ranges.min_calibration_cell",
    "explanations", "explanations.sample_size", "explanations.min_count",
    "evaluation.n_folds", "evaluation.seed", "evaluation.backtest",
    "evaluation.backtest.window_months", "evaluation.backtest.min_train_rows",
    "evaluation.backtest.min_test_rows", "evaluation.backtest.max_folds_per_source",
    "evaluation.group_median_min_count", "evaluation.workers",
    "tracking.uri", "tracking.artifact_root", "tracking.experiment",
    "tracking.registered_model", "tracking.champion_alias",
    "tracking.connect_timeout_seconds", "tracking.http_retries",
    "gate.metric", "gate.tolerance", "gate.resamples", "gate.confidence", "gate.seed",
    "serving.default_source", "serving.host", "serving.port", "serving.model_source",
    "serving.bento_model", "serving.workers", "serving.metrics",
    "serving.reload_timeout_seconds",
    "retraining.accepted_dir", "retraining.reports_dir", "retraining.min_new_rows",
    "retraining.max_quarantined_share", "retraining.max_median_shift",
    "retraining.holdout_fraction", "retraining.min_holdout_rows",
    "retraining.existing_tolerance", "retraining.existing_sample", "retraining.seed",
    "retraining.cv_models", "retraining.evaluate_ranges",
    "report.min_group_size", "report.top_countries", "report.top_skills",
    "currency", "currency.source", "currency.columns", "currency.columns.amount",
    "currency.columns.currency", "currency.columns.amount_usd", "currency.columns.year",
    "currency.columns.country", "currency.min_records", "currency.country_min_records",
    "training", "training.backend", "training.dask_address",
    "training.dask_connect_timeout_seconds",
    "training.dask_partitions_per_worker",
    "prediction", "prediction.salary_column", "prediction.currency_column",
    "prediction.period_column",
}  # fmt: skip


def _section(annotation: Any) -> type[BaseModel] | None:
    for kind in (annotation, *typing.get_args(annotation)):
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            return kind
    return None


def _code_defaults(model: type[BaseModel], yaml_part: Any, prefix: str = "") -> dict:
    """Every field with a default in code: dotted key -> (code default, YAML value or absent;
    a section's own default is not compared, its fields are)."""
    found: dict[str, tuple[Any, Any]] = {}
    for name, field in model.model_fields.items():
        key = field.alias or name
        given = yaml_part.get(key, ABSENT) if isinstance(yaml_part, dict) else ABSENT
        section = _section(field.annotation)
        if field.default is not PydanticUndefined or field.default_factory is not None:
            default = field.get_default(call_default_factory=True)
            found[prefix + key] = (default, ABSENT if section else given)
        if section is not None:
            inner = given if isinstance(given, dict) else {}
            found |= _code_defaults(section, inner, f"{prefix}{key}.")
    return found


ABSENT = object()


def _settings_defaults() -> dict[str, tuple[Any, Any]]:
    data = yaml.safe_load((ROOT / "configs" / "salarymodel.yaml").read_text())
    return _code_defaults(Settings, data)


def test_no_code_default_differs_from_the_yaml() -> None:
    differing = {
        key: f"code {default!r}, YAML {given!r}"
        for key, (default, given) in _settings_defaults().items()
        if given is not ABSENT and default != given
    }
    assert not differing, differing


def test_no_new_default_in_code_and_the_old_ones_only_leave() -> None:
    in_code = set(_settings_defaults())
    assert not in_code - STILL_IN_CODE, f"new defaults in config.py: {in_code - STILL_IN_CODE}"
    moved = STILL_IN_CODE - in_code
    assert not moved, f"no longer defaulted in code: delete from STILL_IN_CODE: {moved}"


def test_the_check_sees_a_competing_default() -> None:
    """The walk finds a default: a field given one in code shows up with both values."""
    from pydantic import create_model

    probe = create_model("Probe", spread_blend=(float, 1.0), params=(dict, ...))
    outer = create_model("Outer", ranges=(probe, ...))
    found = _code_defaults(outer, {"ranges": {"spread_blend": 0.0, "params": {}}})
    assert found == {"ranges.spread_blend": (1.0, 0.0)}
