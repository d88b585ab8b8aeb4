"""How the model fared on a later year, per group of users: the answer's track record.

On average the model is honest out of time, and some groups are not: the
survey's lower-paid countries were over-estimated by 7-16% on a year the model
had not seen (issue 22), because their pay turned in that year (the UK fell
from 0.62 to 0.47 of US pay) and no earlier record shows such a turn. A
person asking from such a country should be told, with the figure.

Every training run measures it: the backtest fits on the records before a
year and scores that year (``evaluation.backtest``), and ``evaluation.groups``
tabulates the estimates per country pay-level group. ``TrackRecord`` keeps
each group's row (records, median estimate/actual - 1, the range's tails and
coverage, the served percentile's worst gap) in the bundle
(``track_record.json``, plain JSON), and says for which groups the median
missed by more than ``group_evaluation.track_record_warn_ratio``: their
answers carry a warning. Reading it is pure Python (serving workers never
import pandas).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from salarymodel.core.percentile_calibration import OVERALL, PAY_LEVEL, group_description

TRACK_RECORD_FILE = "track_record.json"
TRACK_RECORD_FORMAT = 1


@dataclass(frozen=True)
class GroupRecord:
    """One group's backtest figures: how its estimates fared on a later year."""

    group: str
    records: int
    median_ratio: float  # median of estimate / actual - 1
    below_low: float  # share of salaries under the range's low bound
    above_high: float
    coverage: float
    percentile_gap: float | None  # the served percentile's worst gap, points
    warn: bool  # the median missed by more than the configured ratio
    # The gap within its tolerance (group_evaluation); None: not judged (few records).
    percentile_within: bool | None = None

    def text(self) -> str:
        """The record in one sentence, as the page and the CSV show it."""
        return (
            f"Tested on a later year than it was trained on ({self.records:,} records), "
            f"the model's estimates for {group_description(self.group)} {_ran(self.median_ratio)}"
            f" (median), and the range held {self.coverage:.0%} of their salaries."
        )

    def percentile_caveat(self) -> str | None:
        """What a percentile reading of a group whose readings were off adds; else None."""
        if self.percentile_within is not False or self.percentile_gap is None:
            return None
        return (
            f"on a later year, readings for {group_description(self.group)} were off by up "
            f"to {self.percentile_gap:.0f} points"
        )

    def warning(self) -> str:
        """What a warned group's answer says: the direction and size of the miss."""
        return (
            f"on a later year than it was trained on, the model's estimates for "
            f"{group_description(self.group)} {_ran(self.median_ratio)} (median of "
            f"{self.records:,} records): this estimate may be {_direction(self.median_ratio)}"
        )


def _direction(ratio: float) -> str:
    return "high" if ratio > 0 else "low"


def _ran(ratio: float) -> str:
    if round(100 * ratio) == 0:
        return "were on target"
    return f"ran {abs(ratio):.0%} {_direction(ratio)}"


@dataclass
class TrackRecord:
    """Each pay-level group's backtest record (and ``all``'s)."""

    groups: dict[str, GroupRecord]

    def of(self, group: str) -> GroupRecord | None:
        """A group's record; the overall one for a group the backtest did not see."""
        return self.groups.get(group) or self.groups.get(OVERALL)

    def for_rows(
        self, groups: list[str], warnings: list[list[str]] | None
    ) -> list[GroupRecord | None]:
        """Each row's record by its pay-level group; a warned group's warning is added to
        the row's ``warnings`` (when given)."""
        out = [self.of(group) for group in groups]
        for row, record in zip(warnings or [], out, strict=False):
            if record is not None and record.warn:
                row.append(record.warning())
        return out

    @classmethod
    def from_tables(
        cls,
        backtest: dict[str, Any],
        warn_ratio: float,
        min_records: int,
        ignore: tuple[str, ...] = (),
    ) -> TrackRecord:
        """The record of a backtest's group tables (``evaluation.groups``: its ``groups``
        rows and served ``percentile`` check): the overall row and each pay-level group.

        A group with ``min_records`` or more whose median ratio is further than
        ``warn_ratio`` from 0 is warned. Groups in ``ignore`` (records no served
        job is in: without a country) are left out.
        """
        checks = backtest.get("percentile_check", {}).get("percentile", [])
        gaps = {(r["dimension"], r["group"]): r["worst_gap"] for r in checks}
        within = {(r["dimension"], r["group"]): r["within"] for r in checks}
        out = {}
        for row in backtest["groups"]:
            if row["dimension"] not in ("all", PAY_LEVEL) or row["group"] in ignore:
                continue
            warn = row["n"] >= min_records and abs(row["median_ratio"]) > warn_ratio
            out[row["group"]] = GroupRecord(
                group=row["group"],
                records=int(row["n"]),
                median_ratio=float(row["median_ratio"]),
                below_low=float(row["below_low"]),
                above_high=float(row["above_high"]),
                coverage=float(row["coverage"]),
                percentile_gap=gaps.get((row["dimension"], row["group"])),
                warn=bool(warn),
                percentile_within=within.get((row["dimension"], row["group"])),
            )
        return cls(out)

    # ----- storage ---------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        """Write the record as plain JSON into a bundle folder."""
        payload = {
            "format": TRACK_RECORD_FORMAT,
            "groups": [asdict(record) for record in self.groups.values()],
        }
        (folder / TRACK_RECORD_FILE).write_text(json.dumps(payload, indent=1))

    @classmethod
    def load(cls, folder: Path) -> TrackRecord | None:
        """The record a bundle holds; None for a bundle saved without one."""
        path = folder / TRACK_RECORD_FILE
        if not path.is_file():
            return None
        payload = json.loads(path.read_text())
        if payload.get("format") != TRACK_RECORD_FORMAT:
            raise ValueError(f"{path}: unknown track record format")
        try:
            records = [GroupRecord(**row) for row in payload["groups"]]
        except TypeError as error:  # fields this code does not know: a bundle it cannot read
            raise ValueError(f"{path}: {error}") from error
        return cls({record.group: record for record in records})
