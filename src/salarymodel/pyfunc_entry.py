"""MLflow models-from-code entry point for the salary model.

``mlflow.pyfunc.log_model(python_model=<this file>)`` stores this source
instead of a pickled object; MLflow runs it at load time to get the model.
"""

import mlflow.models

from salarymodel.model import SalaryPyfunc

mlflow.models.set_model(SalaryPyfunc())
