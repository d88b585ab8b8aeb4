"""Written rules that derive canonical fields a source carries in another form.

Each rule takes the source columns named in ``configs/sources.yaml`` (as a list
of Series, in the configured order) and returns one Series of canonical
values, missing (None) where the source does not say. Rules never guess: a
posting that does not name its seniority gets no experience level.

Rules (each unit-tested in tests/code/test_derivations.py):

- ``country_to_iso2``: codes and common names to ISO 3166 alpha-2.
- ``posting_country``: the posting's place wins over its country field when
  they disagree, because the country field carries a known mislabel (US
  postings marked "Sudan"); a "Sudan" posting with no place has no country.
- ``posting_remote_ratio``: work-from-home flag or location "Anywhere" -> 100,
  otherwise 0 (postings do not distinguish hybrid).
- ``posting_state`` / ``posting_metro``: the US state (USPS code) and BLS
  metro area code a posting's location names, read by
  ``geography.resolve_location`` with the posting's resolved country ("Austin,
  TX" -> TX and Austin's metro; "Texas" -> TX, no metro; "Anywhere", "United
  States" and places outside the US -> missing).
- ``schedule_to_employment_type``: the first schedule listed decides:
  Full-time FT, Part-time PT, Contractor / Temp work CT, Per diem FL;
  Internship says nothing about employment type (missing).
- ``experience_from_titles``: seniority words of the first title that has
  any (free-text title, then the source's short title) -> EN/MI/SE/EX.
- ``parse_skill_list``: a flat list of quoted names ("['sql', 'python']",
  read by a bounded parser, never evaluated) or ';'-separated text ->
  lower-case, alias-folded, de-duplicated skill names.
- ``year_from_date`` / ``month_from_date``: the calendar year / month of an ISO
  8601 date; a date that cannot be read is a row error, never a silent gap.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from salarymodel.config.settings import Settings
from salarymodel.data import geography
from salarymodel.data.skills import normalise_skill
from salarymodel.data.titles import title_rules
from salarymodel.vocabulary import MAX_SKILLS

# The postings' country field marks many US jobs as Sudan (every such row that
# names a place names a US one); the value alone cannot be trusted.
UNRELIABLE_POSTING_COUNTRIES = frozenset({"SD"})

_SCHEDULE_TO_EMPLOYMENT = {
    "full-time": "FT",
    "part-time": "PT",
    "contractor": "CT",
    "temp work": "CT",
    "per diem": "FL",
    "internship": None,
}


@dataclass(frozen=True)
class RuleContext:
    """What rules may read besides their input columns."""

    settings: Settings


Rule = Callable[[list[pd.Series], RuleContext], pd.Series]


@dataclass(frozen=True)
class RowError:
    """A cell a rule could not read; validation quarantines its row with this message."""

    message: str
    value: object = None  # the cell as read, when the message does not already show it


def _map_unique(series: pd.Series, func: Callable[[Any], object]) -> pd.Series:
    """Apply ``func`` once per distinct value (titles and places repeat a lot)."""
    uniques = series.dropna().unique()
    lookup = {value: func(value) for value in uniques}
    return series.map(lookup).astype(object).where(series.notna(), None)


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NA


def _iso2_or_error(value: object) -> str | RowError:
    code = geography.to_iso2(str(value))
    return code if code is not None else RowError(f"unknown country {str(value)[:60]!r}")


def country_to_iso2(inputs: list[pd.Series], ctx: RuleContext) -> pd.Series:
    """Country codes or names to ISO 3166 alpha-2; an unknown name is a row error."""
    return _map_unique(inputs[0].astype(object), _iso2_or_error)


def location_country(location: object) -> str | None:
    """The country a posting location names, or None ("Anywhere", blank, unknown)."""
    if _is_missing(location):
        return None
    text = re.sub(r"\(\+\d+ others?\)", "", str(location)).strip()
    if not text or text.lower() == "anywhere":
        return None
    if geography.us_place(text):
        return "US"
    return geography.to_iso2(text.split(",")[-1].strip()) or geography.to_iso2(text)


def resolve_posting_country(country: object, location: object) -> str | None:
    """Country of a posting from its country field and its location text."""
    from_location = location_country(location)
    if from_location is not None:
        return from_location
    code = None if _is_missing(country) else geography.to_iso2(str(country))
    return None if code in UNRELIABLE_POSTING_COUNTRIES else code


def posting_country(inputs: list[pd.Series], ctx: RuleContext) -> pd.Series:
    """Rule: country from (country field, location), the location winning."""
    country, location = inputs
    pairs = pd.Series(list(zip(country.astype(object), location.astype(object), strict=True)))
    resolved = _map_unique(pairs, lambda pair: resolve_posting_country(*pair))
    resolved.index = country.index
    return resolved


def posting_place(country: object, location: object) -> tuple[str | None, str | None]:
    """(USPS state, BLS metro code) a posting's location names; (None, None) outside the US."""
    if _is_missing(location):
        return None, None
    iso2 = resolve_posting_country(country, location)
    if iso2 != "US":
        return None, None
    found = geography.resolve_location(str(location), iso2)
    return (found.state, found.metro) if found.country == "US" else (None, None)


def _posting_places(inputs: list[pd.Series], part: int) -> pd.Series:
    country, location = inputs
    pairs = pd.Series(list(zip(country.astype(object), location.astype(object), strict=True)))
    resolved = _map_unique(pairs, lambda pair: posting_place(*pair)[part])
    resolved.index = country.index
    return resolved


def posting_state(inputs: list[pd.Series], ctx: RuleContext) -> pd.Series:
    """Rule: the US state (USPS code) of (country field, location), else missing."""
    return _posting_places(inputs, 0)


def posting_metro(inputs: list[pd.Series], ctx: RuleContext) -> pd.Series:
    """Rule: the BLS metro area code of (country field, location), else missing."""
    return _posting_places(inputs, 1)


def posting_remote_ratio(inputs: list[pd.Series], ctx: RuleContext) -> pd.Series:
    """Rule: 100 when flagged work-from-home or located "Anywhere", else 0."""
    flag, location = inputs
    wfh = flag.astype(object).map(lambda v: str(v).strip().lower() in {"true", "1", "yes"})
    anywhere = location.astype(object).map(lambda v: str(v).strip().lower() == "anywhere")
    return (wfh | anywhere).map({True: 100, False: 0}).astype(object)


def employment_type_from_schedule(schedule: object) -> str | None:
    """FT/PT/CT/FL from a schedule text such as "Full-time and Part-time"."""
    if _is_missing(schedule):
        return None
    first = re.split(r",\s*(?:and\s+)?|\s+and\s+", str(schedule).strip().lower())[0]
    return _SCHEDULE_TO_EMPLOYMENT.get(first.strip())


def schedule_to_employment_type(inputs: list[pd.Series], ctx: RuleContext) -> pd.Series:
    """Rule: employment type from the first schedule listed."""
    return _map_unique(inputs[0].astype(object), employment_type_from_schedule)


def experience_from_titles(inputs: list[pd.Series], ctx: RuleContext) -> pd.Series:
    """Rule: experience level from the seniority words of the first title that has any."""
    rules = title_rules(ctx.settings.features)
    result = pd.Series([None] * len(inputs[0]), index=inputs[0].index, dtype=object)
    for titles in inputs:
        derived = _map_unique(titles.astype(object), rules.experience_level)
        result = result.where(result.notna(), derived)
    return result.astype(object).where(result.notna(), None)


# One quoted name of a list literal: '...' or "..." with backslash escapes. The
# two alternatives cannot overlap, so matching is linear in the text.
_QUOTED = re.compile(r"""\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")\s*""", re.DOTALL)
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)


def _list_literal(text: str, max_items: int) -> list[str]:
    """The quoted names of a flat list literal ("['sql', 'python']").

    A small parser instead of ``ast.literal_eval``: it reads only a flat list
    of quoted strings, in one left-to-right pass with no recursion, and stops
    at the first item past ``max_items``, so no cell can exhaust memory or the
    stack (nested brackets, "[" + "1+" * 50000 + "1]" made literal_eval do both).
    """
    if not text.endswith("]"):
        raise ValueError("not a list literal: it starts with '[' but does not end with ']'")
    inner, position = text[1:-1], 0
    items: list[str] = []
    if not inner.strip():
        return items
    while True:
        found = _QUOTED.match(inner, position)
        if found is None:
            raise ValueError(
                "not a list literal of quoted names (at character "
                f"{position + 2}: {inner[position : position + 20]!r})"
            )
        quoted = found.group(1) if found.group(1) is not None else found.group(2)
        items.append(_ESCAPE.sub(r"\1", quoted))
        if len(items) > max_items:
            raise ValueError(f"more than {max_items} names")
        position = found.end()
        if position == len(inner):
            return items
        if inner[position] != ",":
            raise ValueError(
                f"not a list literal of quoted names (expected ',' at character {position + 2})"
            )
        position += 1
        if not inner[position:].strip():
            return items  # a trailing comma, as Python allows


def parse_skills(value: object, aliases: dict[str, str], max_chars: int | None = None) -> list[str]:
    """Skill names from a list literal ("['sql', 'python']") or ';'-separated text.

    Raises ``ValueError`` (the row's reason) for text that is neither, longer
    than ``max_chars`` (None: the caller bounded it) or with more than
    ``MAX_SKILLS`` names.
    """
    if isinstance(value, list | tuple):
        items = [str(v) for v in value]
    elif _is_missing(value) or not str(value).strip():
        return []
    else:
        text = str(value).strip()
        if max_chars is not None and len(text) > max_chars:
            raise ValueError(
                f"{len(text):,} characters, more than {max_chars:,} (input_limits.max_cell_chars)"
            )
        if text.startswith("["):
            items = _list_literal(text, MAX_SKILLS)
        else:
            items = text.split(";", MAX_SKILLS)
            if len(items) > MAX_SKILLS:
                raise ValueError(f"more than {MAX_SKILLS} names")
    seen: dict[str, None] = {}
    for item in items:
        skill = normalise_skill(item, aliases)
        if skill:
            seen.setdefault(skill, None)
    return list(seen)


def parse_skill_list(inputs: list[pd.Series], ctx: RuleContext) -> pd.Series:
    """Rule: normalised skill lists (an unparseable or oversized cell becomes a row error)."""
    aliases = ctx.settings.features.skill_aliases
    max_chars = ctx.settings.input_limits.max_cell_chars
    out: list[list[str] | RowError] = []
    for value in inputs[0].astype(object):
        try:
            out.append(parse_skills(value, aliases, max_chars))
        except ValueError as error:
            out.append(RowError(str(error), value))  # a reason shows its first 80 characters
    return pd.Series(out, index=inputs[0].index, dtype=object)


def _date_part(values: pd.Series, part: str) -> pd.Series:
    """A part of ISO 8601 dates (a time and zone may follow); a present value that is
    not such a date is a row error."""
    dates = pd.to_datetime(values, format="ISO8601", utc=True, errors="coerce")
    unreadable = values.notna() & dates.isna()
    out = getattr(dates.dt, part).astype(object).where(dates.notna(), None)
    out[unreadable] = [RowError("not a date (expected YYYY-MM-DD)", v) for v in values[unreadable]]
    return out


def year_from_date(inputs: list[pd.Series], ctx: RuleContext) -> pd.Series:
    """Rule: the calendar year of an ISO date (an unreadable date is a row error, not missing)."""
    return _date_part(inputs[0], "year")


def month_from_date(inputs: list[pd.Series], ctx: RuleContext) -> pd.Series:
    """Rule: the calendar month (1-12) of an ISO date (an unreadable date is a row error)."""
    return _date_part(inputs[0], "month")


RULES: dict[str, Rule] = {
    "country_to_iso2": country_to_iso2,
    "posting_country": posting_country,
    "posting_remote_ratio": posting_remote_ratio,
    "posting_state": posting_state,
    "posting_metro": posting_metro,
    "schedule_to_employment_type": schedule_to_employment_type,
    "experience_from_titles": experience_from_titles,
    "parse_skill_list": parse_skill_list,
    "year_from_date": year_from_date,
    "month_from_date": month_from_date,
}
