"""The promotion decision, one for `train` and `retrain`: the gate's rule on a paired interval.

Both commands pair the challenger's and the champion's estimates of the same
rows (``train``: the rolling backtest's records, ``decide``; ``retrain``:
held-out new rows, ``model_checks``) and hand the paired bootstrap interval
(``salarymodel.promotion.gate``) to ``judge``: the verdict, whether it promotes and
the sentence that says why. Only who a tie goes to differs, and each
caller names its rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from salarymodel.config.settings import Settings
from salarymodel.promotion.gate import PairedInterval, describe, paired_interval, promotes, verdict
from salarymodel.promotion.recent_periods import PeriodComparison
from salarymodel.registry.champion import champion_version
from salarymodel.registry.store import (
    TAG_BACKTEST,
    TAG_FINGERPRINT,
    TAG_FOLDS,
    champion_backtest,
    compare,
    pair_backtest,
    run_id_of,
    store_errors,
)
from salarymodel.vocabulary import ALL, FUSED_MODEL

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient


# The challenger learnt from the new file too: when the held-out rows cannot
# tell the two apart, the newest data goes into the model ...
TIE_IN_RETRAIN = "the tie goes to the challenger (trained on newer data)"
# ... but only newer data that passed the whole-file checks.
TIE_KEEPS_CHAMPION = "a tie keeps the champion (the new data failed the file checks)"
HELD_OUT_CHECK = "held-out new rows"


@dataclass
class Comparison:
    """Challenger and champion metrics on the same rows, and the gate metric's
    paired bootstrap interval on the held-out ones."""

    holdout: dict[str, dict[str, dict[str, float]]]  # model -> slice -> metrics
    existing: dict[str, dict[str, dict[str, float]]]
    holdout_rows: int
    existing_rows: int
    train_rows: int
    interval: PairedInterval
    periods: list[PeriodComparison] = field(default_factory=list)


def judge(
    interval: PairedInterval,
    champion: str,
    settings: Settings,
    tie_rule: str,
    tie_goes_to_challenger: bool,
) -> tuple[bool, str]:
    """Does the challenger replace ``champion`` on this interval, and the sentence why.

    Clearly better promotes, clearly worse beyond ``gate.tolerance`` refuses,
    otherwise ``tie_goes_to_challenger`` decides (``tie_rule`` says why).
    """
    tolerance = settings.gate.tolerance
    found = verdict(interval, tolerance)
    text = describe(interval, found, champion, tolerance, tie_rule)
    return promotes(found, tie_goes_to_challenger), text


# ----- train: the backtest rows of the same data ----------------------------------------
@dataclass(frozen=True)
class GateDecision:
    """Whether a challenger replaces the champion, and why (with the interval, when compared)."""

    promote: bool
    reason: str
    interval: PairedInterval | None = None


def gate_metric_name(settings: Settings) -> str:
    """The pooled backtest metric the gate compares (``backtest.fused_lightgbm.all.<metric>``)."""
    return f"backtest.{FUSED_MODEL}.all.{settings.gate.metric}"


# Both models were trained on the same data (the fingerprints match), so
# neither is newer in data; the challenger is what the current code and
# configuration make, and the backtest cannot tell it from the champion.
TIE_IN_TRAIN = "the tie goes to the challenger (same data, current code and configuration)"
_NOT_COMPARABLE = (
    "champion v{version} was evaluated on other data or folds; "
    "metrics are not comparable (retrain evaluates both on shared held-out data)"
)


def decide(
    client: MlflowClient,
    settings: Settings,
    challenger_tags: dict[str, str],
    challenger_rows: pd.DataFrame | None,
) -> GateDecision:
    """Apply the promotion gate to a challenger's per-row backtest estimates.

    The champion run's estimates of the same backtest rows are downloaded and
    paired with ``challenger_rows`` (``BacktestReport.estimates``); the
    paired bootstrap of ``salarymodel.promotion.gate`` decides. Comparable only when
    the data fingerprint, the CV folds and the backtest's configuration are
    the same and the two runs scored the same rows.
    """
    current = champion_version(client, settings)
    if current is None:
        return GateDecision(True, "no champion yet: the first version becomes champion")
    with store_errors(f"cannot read the run of champion v{current.version}"):
        run = client.get_run(run_id_of(current))
    evaluation = (TAG_FINGERPRINT, TAG_FOLDS, TAG_BACKTEST)
    comparable = all(run.data.tags.get(k) == challenger_tags[k] for k in evaluation)
    if not comparable:
        return GateDecision(False, _NOT_COMPARABLE.format(version=current.version))
    if challenger_rows is None or challenger_rows.empty:
        return GateDecision(
            False,
            "the challenger has no backtest rows to compare (no backtest fold has enough "
            "records: evaluation.backtest); `salarymodel promote` decides explicitly",
        )
    theirs = champion_backtest(client, current)
    if theirs is None:
        return GateDecision(
            False,
            f"champion v{current.version} has no backtest estimates to compare with; "
            "`salarymodel promote` decides explicitly",
        )
    paired = pair_backtest(challenger_rows, theirs)
    if paired is None:
        return GateDecision(False, _NOT_COMPARABLE.format(version=current.version))
    gate = settings.gate
    interval = paired_interval(
        gate.metric,
        paired["salary_usd"].to_numpy(float),
        paired["challenger"].to_numpy(float),
        paired["champion"].to_numpy(float),
        paired["group_id"].to_numpy(),
        gate.resamples,
        gate.confidence,
        gate.seed,
    )
    folds = paired["fold"].nunique()
    promote, text = judge(interval, f"champion v{current.version}", settings, TIE_IN_TRAIN, True)
    return GateDecision(promote, f"{gate_metric_name(settings)} ({folds} folds): {text}", interval)


# ----- retrain: held-out new rows ------------------------------------------------------
@dataclass
class Check:
    """One condition of the retrain gate."""

    name: str
    passed: bool
    detail: str
    whole_file: bool = False  # a failure quarantines the new file as a whole
    # A failure still registers the refit challenger, not promoted: the gate cannot
    # judge it, an operator may (`salarymodel promote`).
    by_hand: bool = False


@dataclass
class RetrainDecision:
    """Every check the retrain made, and whether the challenger is promoted."""

    checks: list[Check] = field(default_factory=list)

    @property
    def promote(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def registers(self) -> bool:
        """Whether the challenger is refit and registered: every check passed but,
        at most, those that leave its promotion to an operator."""
        return bool(self.checks) and all(c.passed or c.by_hand for c in self.checks)

    @property
    def reason(self) -> str:
        failed = [c for c in self.checks if not c.passed]
        shown = failed or self.checks
        return "; ".join(f"{c.name}: {c.detail}" for c in shown)

    def add(
        self, name: str, passed: bool, detail: str, whole_file: bool = False, by_hand: bool = False
    ) -> bool:
        self.checks.append(Check(name, passed, detail, whole_file, by_hand))
        return passed

    def registered_unpromoted(self, version: str) -> None:
        """Name, on each failed check that left it to an operator, the version
        registered and the command that promotes it."""
        for check in self.checks:
            if check.by_hand and not check.passed:
                check.detail += (
                    f"; registered as v{version}, not promoted: "
                    f"`salarymodel promote {version}` makes it champion by hand"
                )

    @property
    def file_refused(self) -> list[Check]:
        """The failed checks that refuse the new file as a whole (it goes to quarantine)."""
        return [c for c in self.checks if c.whole_file and not c.passed]


def model_checks(
    comparison: Comparison,
    champion: str,
    settings: Settings,
    decision: RetrainDecision,
    data_passed: bool,
) -> bool:
    """Challenger vs champion on the same held-out rows, and the forgetting guard.

    On the held-out rows the paired bootstrap decides (``salarymodel.promotion.gate``);
    a tie goes to the challenger (trained on newer data) only when that data
    passed the whole-file checks (``data_passed``); otherwise it keeps the champion.
    """
    metric = settings.gate.metric
    rule = TIE_IN_RETRAIN if data_passed else TIE_KEEPS_CHAMPION
    promote, text = judge(comparison.interval, f"champion v{champion}", settings, rule, data_passed)
    rows = f"{comparison.holdout_rows:,} held-out new rows"
    ok = decision.add(HELD_OUT_CHECK, promote, f"{metric} on {rows}: {text}")
    old_challenger = comparison.existing["challenger"][ALL][metric]
    old_current = comparison.existing["champion"][ALL][metric]
    tolerance = settings.retraining.existing_tolerance
    kept, wording = compare(settings, old_challenger, old_current, tolerance)
    decision.add(
        "existing records",
        kept,
        f"{metric} on {comparison.existing_rows:,} existing records (both models trained on "
        f"them): challenger {old_challenger:,.2f} is {wording} champion {old_current:,.2f} "
        f"(tolerance {tolerance:.1%})",
    )
    return ok and kept


RECORDS_CHECK = "training records"


def records_check(
    challenger: int, champion: int, version: str, settings: Settings, decision: RetrainDecision
) -> bool:
    """A challenger trained on clearly fewer records than the champion is not promoted.

    Neither the held-out new rows nor the existing records both were fit on
    show what a model fit on fewer records lost: a ``retrain --sample 300``
    tied on 48 held-out rows and replaced a champion of 54,589 records with
    one of 738 (CV MAE 43,235 against 37,380). ``champion`` is the count its
    bundle's metadata gives; below ``min_records_share`` of it the challenger
    is registered, and its promotion left to an operator.
    """
    share = settings.retraining.min_records_share
    needed = math.ceil(share * champion)
    return decision.add(
        RECORDS_CHECK,
        challenger >= needed,
        f"challenger trained on {challenger:,} records, champion v{version} on {champion:,} "
        f"(the gate promotes one trained on at least {share:.0%} of them, {needed:,})",
        by_hand=True,
    )
