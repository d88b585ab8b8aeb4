"""MLflow models-from-code entry point for the salary model.

``mlflow.pyfunc.log_model(python_model=<this file>)`` stores this source
instead of a pickled object; MLflow runs it at load time to get the model.
The pyfunc class lives here, not in ``model``, so that only code that asks
MLflow for a model imports MLflow.
"""

from pathlib import Path

import mlflow.models
import pandas as pd
from mlflow.pyfunc import PythonModel, PythonModelContext

from salarymodel.core.model import SalaryModel
from salarymodel.data.derivations import parse_skills


class SalaryPyfunc(PythonModel):
    """MLflow pyfunc view of a bundle: canonical records in, USD estimates out.

    Logged as models-from-code, so loading it through
    ``mlflow.pyfunc.load_model`` unpickles nothing either.
    """

    def load_context(self, context: PythonModelContext) -> None:
        self.model = SalaryModel.load(Path(context.artifacts["bundle"]))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        aliases = self.model.builder.features.skill_aliases
        rows = model_input.to_dict("records")
        for row in rows:
            if isinstance(row.get("skills"), str):
                row["skills"] = parse_skills(row["skills"], aliases)
        estimates = [self.model.estimate_job(row) for row in rows]
        return pd.DataFrame(
            {
                "estimate_usd": [round(e.estimate_usd, 2) for e in estimates],
                "low_usd": [e.low_usd for e in estimates],
                "high_usd": [e.high_usd for e in estimates],
                "warnings": ["; ".join(e.warnings) for e in estimates],
            }
        )


mlflow.models.set_model(SalaryPyfunc())
