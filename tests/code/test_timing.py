"""The stopwatch the training, retraining and evaluation runs record their steps' seconds with."""

from __future__ import annotations

import pytest

from salarymodel.core import timing
from salarymodel.core.timing import Stopwatch


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """A clock that reads 0, 1, 2, ... seconds, one tick per reading."""
    ticks = [0.0]

    def reading() -> float:
        ticks[0] += 1.0
        return ticks[0]

    monkeypatch.setattr(timing.time, "perf_counter", reading)
    return ticks


def test_steps_add_up_into_the_callers_dict_and_total_spans_them(clock) -> None:
    seconds = {"earlier": 5.0}
    watch = Stopwatch(seconds)  # reads 1
    with watch.step("data"):  # 2 .. 3
        pass
    with watch.step("data"):  # 4 .. 5: a step run twice adds up
        pass
    assert watch.total() is seconds  # reads 6
    assert seconds == {"earlier": 5.0, "data": 2.0, "total": 5.0}


def test_a_step_that_raises_is_still_recorded(clock) -> None:
    watch = Stopwatch()
    with pytest.raises(ValueError), watch.step("fit"):
        raise ValueError("the fit failed")
    assert watch.seconds == {"fit": 1.0}
