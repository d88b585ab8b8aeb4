"""Countries: names and codes to ISO 3166 alpha-2, regions, display names.

Backed by country_converter's table. We read that table ourselves with
``keep_default_na=False`` because pandas otherwise parses Namibia's code "NA"
as a missing value, and country_converter then fails to build its regexes.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

import country_converter
import pandas as pd

_NOT_FOUND = "__not_found__"

# Postings write US places as "City, ST" or a bare state name; "Georgia" the
# state must not become Georgia the country.
US_STATES = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California",
    "CO": "Colorado", "CT": "Connecticut", "DE": "Delaware", "FL": "Florida", "GA": "Georgia",
    "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois", "IN": "Indiana", "IA": "Iowa",
    "KS": "Kansas", "KY": "Kentucky", "LA": "Louisiana", "ME": "Maine", "MD": "Maryland",
    "MA": "Massachusetts", "MI": "Michigan", "MN": "Minnesota", "MS": "Mississippi",
    "MO": "Missouri", "MT": "Montana", "NE": "Nebraska", "NV": "Nevada", "NH": "New Hampshire",
    "NJ": "New Jersey", "NM": "New Mexico", "NY": "New York", "NC": "North Carolina",
    "ND": "North Dakota", "OH": "Ohio", "OK": "Oklahoma", "OR": "Oregon", "PA": "Pennsylvania",
    "RI": "Rhode Island", "SC": "South Carolina", "SD": "South Dakota", "TN": "Tennessee",
    "TX": "Texas", "UT": "Utah", "VT": "Vermont", "VA": "Virginia", "WA": "Washington",
    "WV": "West Virginia", "WI": "Wisconsin", "WY": "Wyoming", "DC": "District of Columbia",
    "PR": "Puerto Rico",
}  # fmt: skip
_US_STATE_NAMES = {name.lower() for name in US_STATES.values()}


@lru_cache(maxsize=1)
def _converter() -> country_converter.CountryConverter:
    table_path = Path(country_converter.__file__).with_name("country_data.tsv")
    table = pd.read_csv(
        table_path, sep="\t", encoding="utf-8", keep_default_na=False, na_values=[""], dtype=str
    )
    # country_converter logs every miss at WARNING; misses are expected input here.
    logging.getLogger("country_converter").setLevel(logging.ERROR)
    return country_converter.CountryConverter(country_data=table)


@lru_cache(maxsize=1)
def _iso2_codes() -> frozenset[str]:
    return frozenset(_converter().data["ISO2"].dropna())


@lru_cache(maxsize=4096)
def to_iso2(value: str) -> str | None:
    """ISO 3166 alpha-2 code for a country code or common name, or None if unknown."""
    text = value.strip()
    if not text:
        return None
    if len(text) == 2 and text.upper() in _iso2_codes():
        return text.upper()
    code = _converter().convert(text, to="ISO2", not_found=_NOT_FOUND)
    return code if isinstance(code, str) and code != _NOT_FOUND else None


def us_place(location: str) -> bool:
    """True when a posting location names a US place ("Austin, TX", "Texas", "United States")."""
    text = location.strip()
    parts = [p.strip() for p in text.split(",")]
    if len(parts) >= 2 and parts[-1] in US_STATES:
        return True
    return text.lower() in _US_STATE_NAMES or text.lower() in {"united states", "usa", "us"}


@lru_cache(maxsize=512)
def region(iso2: str) -> str | None:
    """UN sub-region ("Northern America", "Western Europe", ...) of an ISO2 code."""
    found = _converter().convert(iso2, src="ISO2", to="UNregion", not_found=_NOT_FOUND)
    return found if isinstance(found, str) and found != _NOT_FOUND else None


@lru_cache(maxsize=512)
def country_name(iso2: str) -> str:
    """Short English name of an ISO2 code (the code itself when unknown)."""
    found = _converter().convert(iso2, src="ISO2", to="name_short", not_found=_NOT_FOUND)
    return found if isinstance(found, str) and found != _NOT_FOUND else iso2
