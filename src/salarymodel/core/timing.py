"""Wall seconds of the steps of a flow (training, retraining, evaluation jobs).

The seconds a run logs (``seconds.<step>`` metrics, ``retrain.json``) are
wall time on a shared machine: they say where a run spent its time, not how
fast the code is (benchmarks/ measures that).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class Stopwatch:
    """Seconds since the flow started, and per named step, recorded in ``seconds``.

    ``seconds`` may be a dict the caller already fills (a step run twice adds up).
    """

    def __init__(self, seconds: dict[str, float] | None = None) -> None:
        self.seconds: dict[str, float] = {} if seconds is None else seconds
        self.started = time.perf_counter()

    def elapsed(self) -> float:
        """Seconds since the stopwatch was made."""
        return time.perf_counter() - self.started

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Add the seconds the ``with`` block takes (even when it raises) to ``seconds[name]``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    def total(self, name: str = "total") -> dict[str, float]:
        """Record the seconds since the start as ``seconds[name]``; return ``seconds``."""
        self.seconds[name] = self.elapsed()
        return self.seconds
