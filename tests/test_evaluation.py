"""The fused-vs-baseline verdict: a difference counts only when it holds across folds."""

import pytest

from salarymodel.evaluation import consistent_effect


@pytest.mark.parametrize(
    ("ours", "theirs", "won", "expected"),
    [
        (45_571, 45_575, 2, "no clear difference"),  # lower pooled MAE, but loses 3 of 5 folds
        (25_783, 25_821, 4, "better"),
        (26_000, 25_000, 1, "worse"),
        (26_000, 25_000, 3, "no clear difference"),  # higher pooled MAE, wins most folds
        (25_000, 25_000, 5, "no clear difference"),  # a tie is not an improvement
    ],
)
def test_consistent_effect(ours: float, theirs: float, won: int, expected: str) -> None:
    assert consistent_effect(ours, theirs, won, 5) == expected
