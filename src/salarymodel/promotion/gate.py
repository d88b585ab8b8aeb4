"""The promotion gate's rule: a paired bootstrap of the metric's difference on the same rows.

Challenger and champion estimate the same rows (``train``: the rolling
backtest's records; ``retrain``: held-out new rows). The rows are
resampled with replacement, whole groups at a time (a record's repeats
and a posting's reposts err together), and the challenger's metric minus
the champion's is measured on each resample. Its percentile interval says
how large a difference noise alone can make:

- the challenger is worse than the champion beyond noise and beyond the
  tolerance (the whole interval past ``tolerance`` x the champion's
  metric): refused;
- better beyond noise: promoted;
- otherwise the two are indistinguishable (or the challenger is worse but
  within the tolerance): the caller's tie rule decides, which prefers the
  model trained on newer data.

Pure functions of numpy arrays: the registry (``train``, backtest rows)
and ``retraining`` (held-out rows) pair the rows and word the decision here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

# Verdicts, worded to read "challenger X is <verdict> champion vN Y".
BETTER = "better than"
TIE = "indistinguishable from"
WITHIN = "worse than but within the tolerance of"
WORSE = "worse than"
HIGHER_IS_BETTER = {"mae_usd": False, "mdape": False, "r2_log": True}
_CHUNK = 64  # resamples per batch: a batch holds a resamples x rows weight matrix


@dataclass(frozen=True)
class PairedInterval:
    """The metric of both models on the same rows, their difference and its interval."""

    metric: str
    challenger: float
    champion: float
    difference: float  # challenger - champion
    low: float
    high: float
    confidence: float
    resamples: int
    rows: int
    groups: int


def interval_metrics(interval: PairedInterval) -> dict[str, float]:
    """The interval's numbers, for MLflow (the caller prefixes their names)."""
    return {k: float(v) for k, v in asdict(interval).items() if not isinstance(v, str)}


def weighted_metric(
    name: str, salary: np.ndarray, estimate: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    """``evaluation.metrics``' ``name`` under row weights, one value per row of ``weights``.

    ``weights`` is (resamples, rows); unit weights give ``evaluation.metrics`` exactly.
    """
    total = weights.sum(axis=1)
    if name == "mae_usd":
        return weights @ np.abs(salary - estimate) / total
    if name == "mdape":
        error = np.abs(estimate - salary) / salary * 100
        order = np.argsort(error, kind="stable")
        ranked, cumulative = error[order], np.cumsum(weights[:, order], axis=1)
        half = total[:, None] / 2
        # The mean of the lower and upper weighted medians: np.median at unit weights.
        lower = ranked[np.argmax(cumulative >= half, axis=1)]
        upper = ranked[np.argmax(cumulative > half, axis=1)]
        return (lower + upper) / 2
    if name == "r2_log":
        y, p = np.log(salary), np.log(estimate)
        mean = weights @ y / total
        ss_tot = weights @ (y * y) - total * mean * mean
        return 1.0 - weights @ ((y - p) ** 2) / ss_tot
    raise ValueError(f"unknown gate metric {name!r}; one of {sorted(HIGHER_IS_BETTER)}")


def group_codes(groups: np.ndarray | None, rows: int) -> np.ndarray:
    """An integer per row naming its group (each row its own group without ``groups``)."""
    if groups is None:
        return np.arange(rows)
    return np.unique(np.asarray(groups), return_inverse=True)[1].ravel()


def paired_interval(
    metric: str,
    salary: np.ndarray,
    challenger: np.ndarray,
    champion: np.ndarray,
    groups: np.ndarray | None,
    resamples: int,
    confidence: float,
    seed: int,
) -> PairedInterval:
    """Bootstrap percentile interval of ``metric``(challenger) - ``metric``(champion).

    Every resample draws as many groups as there are, with replacement; a
    drawn group brings all its rows. Both models are scored on the same
    resampled rows, so what the rows have in common (hard jobs, a pay
    rise) cancels out of the difference.
    """
    salary, challenger, champion = (np.asarray(a, float) for a in (salary, challenger, champion))
    codes = group_codes(groups, len(salary))
    count = int(codes.max()) + 1
    rng = np.random.default_rng(seed)
    differences = []
    for start in range(0, resamples, _CHUNK):
        size = min(_CHUNK, resamples - start)
        draws = rng.integers(0, count, size=(size, count))
        draws += np.arange(size)[:, None] * count
        drawn = np.bincount(draws.ravel(), minlength=size * count).reshape(size, count)
        weights = drawn[:, codes].astype(float)
        differences.append(
            weighted_metric(metric, salary, challenger, weights)
            - weighted_metric(metric, salary, champion, weights)
        )
    spread = np.concatenate(differences)
    tail = (1 - confidence) / 2
    low, high = np.quantile(spread, [tail, 1 - tail])
    unit = np.ones((1, len(salary)))
    ours = float(weighted_metric(metric, salary, challenger, unit)[0])
    theirs = float(weighted_metric(metric, salary, champion, unit)[0])
    return PairedInterval(
        metric, ours, theirs, ours - theirs, float(low), float(high), confidence, resamples,
        len(salary), count,
    )  # fmt: skip


def verdict(interval: PairedInterval, tolerance: float) -> str:
    """How the challenger compares with the champion, noise accounted for.

    ``tolerance`` is a share of the champion's metric by which the
    challenger may be worse beyond noise and still not be refused.
    """
    sign = 1.0 if HIGHER_IS_BETTER[interval.metric] else -1.0
    # Gain: how much better the challenger is (positive: better), as an interval.
    gain_low, gain_high = sorted((sign * interval.low, sign * interval.high))
    if gain_low > 0:
        return BETTER
    if gain_high >= 0:
        return TIE
    return WITHIN if -gain_high <= tolerance * abs(interval.champion) else WORSE


def promotes(found: str, tie_goes_to_challenger: bool) -> bool:
    """Promote on a clear win; refuse a clear loss; a tie (or a loss within tolerance)
    goes to the challenger only when the caller's tie rule says so."""
    if found == BETTER:
        return True
    if found == WORSE:
        return False
    return tie_goes_to_challenger


def describe(
    interval: PairedInterval, found: str, champion: str, tolerance: float, tie_rule: str
) -> str:
    """The gate's sentence, the same in ``train`` and ``retrain``.

    ``champion`` names it (``champion v3``); ``tie_rule`` says who a tie goes to and why.
    """
    i = interval
    text = (
        f"challenger {i.challenger:,.2f} is {found} {champion} {i.champion:,.2f}: "
        f"difference {i.difference:+,.2f}, {i.confidence:.0%} interval "
        f"[{i.low:+,.2f}, {i.high:+,.2f}] ({i.rows:,} rows in {i.groups:,} groups, "
        f"{i.resamples:,} resamples; tolerance {tolerance:.1%})"
    )
    if found in (TIE, WITHIN):
        text += f"; {tie_rule}"
    return text
