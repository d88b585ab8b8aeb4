"""Official US wages (BLS OEWS May 2025) as a feature, a reference and a reality check.

The shipped table (``data/bls_oews_2025.csv.gz``, written by
``scripts/write_bls_table.py``; provenance in data/README.md) gives, per SOC
occupation and area (nation, state, metro), the annual P10-P90 wages and
employment. Each role family is compared with one occupation
(``features.location.occupations``).

At training time :func:`load_wages` reads the table with the csv module and
keeps the occupations the role families map to; the feature builder stores
that slice in the model bundle, so serving reads the same numbers without the
data folder, pandas or numpy:

- :meth:`BlsWages.area_ratio`: the area's (metro, else state) median wage
  relative to the nation's, for the job's occupation (the feature);
- :meth:`BlsWages.reference`: the occupation's median and P10-P90 in the
  job's metro, else state, else the nation (shown next to a US estimate);
- ``salarymodel.evaluation.reality_check`` (pandas): the model's median
  estimate against BLS's median per role family and area.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from salarymodel.data import geography

SOURCE = "BLS OEWS May 2025"
NATION = "0000000"
AREA_TYPES = {"nation", "state", "metro"}


@dataclass(frozen=True)
class Wages:
    """One occupation in one area: annual wages in USD (None where BLS released none)."""

    p10: float | None
    p50: float | None
    p90: float | None
    employment: float | None


@dataclass
class BlsWages:
    """The occupations a model uses, by area, with their names."""

    occupations: dict[str, str]  # SOC -> BLS title
    areas: dict[str, str]  # area code -> name ("Austin-Round Rock-San Marcos, TX")
    area_types: dict[str, str]  # area code -> nation | state | metro
    wages: dict[str, dict[str, Wages]]  # SOC -> area code -> wages

    def _wages(self, soc: str | None, area: str | None) -> Wages | None:
        if soc is None or area is None:
            return None
        found = self.wages.get(soc, {}).get(area)
        return found if found is not None and found.p50 is not None else None

    def area_of(self, soc: str | None, state: str | None, metro: str | None) -> str | None:
        """The most local area with a median for ``soc``: the metro, else the state; None."""
        for area in (metro, None if state is None else geography.state_area(state)):
            if self._wages(soc, area) is not None:
                return area
        return None

    def area_ratio(self, soc: str | None, state: str | None, metro: str | None) -> float:
        """Median wage of ``soc`` in the metro (else state) over the nation's; NaN if none."""
        area = self.area_of(soc, state, metro)
        local, nation = self._wages(soc, area), self._wages(soc, NATION)
        if local is None or nation is None or local.p50 is None or nation.p50 is None:
            return math.nan
        return local.p50 / nation.p50

    def reference(
        self, soc: str | None, state: str | None, metro: str | None
    ) -> dict[str, Any] | None:
        """BLS's wages for ``soc`` in the metro, else the state, else the nation (a dict)."""
        area = self.area_of(soc, state, metro) or NATION
        found = self._wages(soc, area)
        if found is None or soc is None:
            return None
        kind = self.area_types[area]
        name = self.areas[area] + ("" if kind == "nation" else f" ({kind})")
        median, low, high = found.p50, found.p10, found.p90
        return {
            "source": SOURCE,
            "occupation": self.occupations[soc],
            "soc": soc,
            "area": name,
            "median_usd": median,
            "p10_usd": low,
            "p90_usd": high,
            "text": reference_text(self.occupations[soc], name, median, low, high),
        }

    # ----- storage (in the model bundle, as JSON) ---------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "occupations": self.occupations,
            "areas": self.areas,
            "area_types": self.area_types,
            "wages": {
                soc: {a: [w.p10, w.p50, w.p90, w.employment] for a, w in by_area.items()}
                for soc, by_area in self.wages.items()
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BlsWages:
        return cls(
            occupations=dict(data["occupations"]),
            areas=dict(data["areas"]),
            area_types=dict(data["area_types"]),
            wages={
                soc: {a: Wages(*values) for a, values in by_area.items()}
                for soc, by_area in data["wages"].items()
            },
        )


def _dollars(value: float | None) -> str:
    return "n/a" if value is None else f"${value:,.0f}"


def reference_text(
    occupation: str, area: str, median: float | None, low: float | None, high: float | None
) -> str:
    """ "BLS OEWS May 2025, Data Scientists, Austin-... (metro): median $X, P10-P90 $Y-$Z"."""
    return (
        f"{SOURCE}, {occupation}, {area}: median {_dollars(median)}, "
        f"P10\u2013P90 {_dollars(low)}\u2013{_dollars(high)}"
    )


def _number(text: str) -> float | None:
    return float(text) if text.strip() else None


def read_table(path: Path) -> list[dict[str, str]]:
    """The shipped table's rows (csv module; gzip when the name ends in .gz)."""
    raw = path.read_bytes()
    text = gzip.decompress(raw) if path.suffix == ".gz" else raw
    return list(csv.DictReader(io.StringIO(text.decode("utf-8"))))


def load_wages(path: Path, occupations: Sequence[str]) -> BlsWages:
    """The table's rows for ``occupations`` (SOC codes), indexed by occupation and area."""
    wanted = set(occupations)
    rows = [row for row in read_table(path) if row["soc"] in wanted]
    missing = wanted - {row["soc"] for row in rows}
    if missing:
        raise ValueError(f"{path}: no rows for occupations {sorted(missing)}")
    wages: dict[str, dict[str, Wages]] = {}
    for row in rows:
        if row["area_type"] not in AREA_TYPES:
            raise ValueError(f"{path}: unknown area type {row['area_type']!r}")
        wages.setdefault(row["soc"], {})[row["area_code"]] = Wages(
            _number(row["p10_usd"]),
            _number(row["p50_usd"]),
            _number(row["p90_usd"]),
            _number(row["employment"]),
        )
    return BlsWages(
        occupations={row["soc"]: row["occupation"] for row in rows},
        areas={row["area_code"]: row["area_name"] for row in rows},
        area_types={row["area_code"]: row["area_type"] for row in rows},
        wages=wages,
    )
