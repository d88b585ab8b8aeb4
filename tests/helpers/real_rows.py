"""A small real sample of the shipped data, loaded once per process.

Used by the fast unit tests of the estimation core (tests/model/test_ranges_units.py,
tests/model/test_percentile_units.py, tests/code/test_encoders_units.py). Mutation
testing (`make mutation`) runs each mutant's tests in a process forked from one that
collected them: loading the sample there, once, spares every mutant the ~10 s read of
the shipped files. Only data-layer code runs here (no module mutation testing
mutates), so the cached frame is the same whatever mutant runs.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pandas as pd

from salarymodel.config.settings import Settings, load_settings, load_sources
from salarymodel.data.dataset import load_training_data

ROOT = Path(__file__).resolve().parents[2]
# About 1,500 records of both sources: every fit on it takes well under a second.
SAMPLE, SEED = 800, 3


@functools.cache
def real_settings() -> Settings:
    """The shipped configuration."""
    return load_settings(ROOT / "configs" / "salarymodel.yaml")


@functools.cache
def _records() -> pd.DataFrame:
    sources = load_sources(ROOT / "configs" / "sources.yaml")
    return load_training_data(real_settings(), sources, sample=SAMPLE, seed=SEED).records


def real_records() -> pd.DataFrame:
    """The small real sample (a copy: a test may change it)."""
    return _records().copy()


# mutmut sets MUTANT_UNDER_TEST in every process it starts, the one that collects
# the tests and forks each mutant's run too: warm the sample there.
if "MUTANT_UNDER_TEST" in os.environ:
    _records()
