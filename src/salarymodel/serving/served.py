"""The model being served: the champion, its explainer and its card; JSON-safe values.

Loading builds one and scoring reads it: both import it from here.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from salarymodel.config.settings import load_settings
from salarymodel.core.job_defaults import default_view
from salarymodel.core.model import SalaryModel

logger = logging.getLogger("salarymodel.serving")


@dataclass
class ServingModel:
    """The champion, its explainer, and what the service says about it."""

    model: SalaryModel
    explainer: Any  # salarymodel.core.explanations.Explainer
    version: str
    source: str
    info: dict[str, Any]
    tag: str | None = None  # the BentoML store copy it was loaded from or exported to
    card: dict[str, Any] | None = None  # what GET /model answers (set once built)

    @property
    def default_view(self) -> str | None:
        return default_view(self.model.metadata, load_settings())


def json_safe(value: Any) -> Any:
    """``value`` with NaN and infinities as None (evaluation JSON has them; JSON does not)."""
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value
