"""The salary model bundle: feature builder + LightGBM booster on log salary.

A bundle is a folder of plain files, never a pickle:
``booster.txt`` (LightGBM's text format), ``features.json`` (vocabularies)
and ``metadata.json`` (training facts, metrics, the default view). Loading it
cannot execute code from the folder.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import lightgbm as lgb
import mlflow.pyfunc
import numpy as np
import pandas as pd

from salarymodel.config import ModelConfig
from salarymodel.derivations import parse_skills
from salarymodel.features import FeatureBuilder

BOOSTER_FILE = "booster.txt"
FEATURES_FILE = "features.json"
METADATA_FILE = "metadata.json"


class BundleError(RuntimeError):
    """A model bundle that is missing or unreadable."""


@dataclass
class SalaryModel:
    """A trained point-estimate model and everything needed to encode its inputs."""

    builder: FeatureBuilder
    booster: lgb.Booster
    metadata: dict[str, object] = field(default_factory=dict)

    @classmethod
    def fit(
        cls,
        records: pd.DataFrame,
        builder: FeatureBuilder,
        model_config: ModelConfig,
        matrix: np.ndarray | None = None,
    ) -> SalaryModel:
        """Train on canonical records (log of ``salary_usd`` is the target)."""
        features = builder.transform(records) if matrix is None else matrix
        target = np.log(records["salary_usd"].to_numpy(float))
        data = lgb.Dataset(
            features,
            label=target,
            feature_name=[_safe_name(c) for c in builder.columns],
            categorical_feature=builder.categorical_indices,
            free_raw_data=True,
        )
        booster = lgb.train(
            dict(model_config.params), data, num_boost_round=model_config.num_boost_round
        )
        return cls(builder=builder, booster=booster)

    # ----- prediction -----------------------------------------------------
    def predict_log(self, matrix: np.ndarray) -> np.ndarray:
        """Log-salary predictions for a feature matrix."""
        return self.booster.predict(matrix, num_threads=1 if len(matrix) < 512 else 0)

    def predict_records(self, records: pd.DataFrame) -> np.ndarray:
        """USD estimates for canonical records."""
        return np.exp(self.predict_log(self.builder.transform(records)))

    def estimate(self, job: Mapping[str, object]) -> tuple[float, list[str]]:
        """USD estimate and warnings for one job given as a dict (the serving path)."""
        row, warnings = self.builder.encode(job)
        return float(np.exp(self.predict_log(row.reshape(1, -1))[0])), warnings

    # ----- storage --------------------------------------------------------
    def save(self, folder: Path) -> Path:
        """Write the bundle as plain files into ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(folder / BOOSTER_FILE))
        (folder / FEATURES_FILE).write_text(json.dumps(self.builder.to_dict(), indent=1))
        (folder / METADATA_FILE).write_text(json.dumps(self.metadata, indent=1, default=str))
        return folder

    @classmethod
    def load(cls, folder: Path) -> SalaryModel:
        """Read a bundle written by :meth:`save`; a clear error when files are bad."""
        for name in (BOOSTER_FILE, FEATURES_FILE, METADATA_FILE):
            if not (folder / name).is_file():
                raise BundleError(f"model bundle {folder} is missing {name}")
        try:
            booster = lgb.Booster(model_file=str(folder / BOOSTER_FILE))
            builder = FeatureBuilder.from_dict(json.loads((folder / FEATURES_FILE).read_text()))
            metadata = json.loads((folder / METADATA_FILE).read_text())
        except (lgb.basic.LightGBMError, ValueError, KeyError) as error:
            raise BundleError(f"model bundle {folder} is unreadable: {error}") from error
        if booster.num_feature() != len(builder.columns):
            raise BundleError(
                f"model bundle {folder}: booster expects {booster.num_feature()} features, "
                f"vocabulary gives {len(builder.columns)}"
            )
        return cls(builder=builder, booster=booster, metadata=metadata)


def _safe_name(column: str) -> str:
    # LightGBM rejects some JSON special characters in feature names.
    return "".join(ch if ch.isalnum() else "_" for ch in column)


class SalaryPyfunc(mlflow.pyfunc.PythonModel):
    """MLflow pyfunc view of a bundle: canonical records in, USD estimates out.

    Logged as models-from-code (``salarymodel/pyfunc_entry.py``), so loading
    it through ``mlflow.pyfunc.load_model`` unpickles nothing either.
    """

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        self.model = SalaryModel.load(Path(context.artifacts["bundle"]))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        aliases = self.model.builder.features.skill_aliases
        rows = model_input.to_dict("records")
        for row in rows:
            if isinstance(row.get("skills"), str):
                row["skills"] = parse_skills(row["skills"], aliases)
        estimates = [self.model.estimate(row) for row in rows]
        return pd.DataFrame(
            {
                "estimate_usd": [round(e, 2) for e, _ in estimates],
                "warnings": ["; ".join(w) for _, w in estimates],
            }
        )
