"""The one encoder: jobs (dicts or a frame's records) to matrix rows along the row specification.

``RowEncoder`` builds each job's row in parts (base values, skills listed,
title words, place values, warnings) and fills a matrix block by block.
``FeatureBuilder.encode_job``, ``encode_many`` and ``transform`` all go
through it, so the three give the same row for the same job (a test checks,
bit for bit). Each distinct title, place, employer country, skill list and
source is looked up once per call. No pandas at import: a service worker
loads this.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import numpy as np

from salarymodel.config.data import FeaturesConfig
from salarymodel.core.row_spec import BASE_COLUMNS, DIRECT_COLUMNS, JOB_FIELDS, N_BASE, RowLayout
from salarymodel.data import geography
from salarymodel.data.skills import normalise_skill
from salarymodel.data.titles import OTHER_FAMILY
from salarymodel.vocabulary import (
    unknown_country_warning,
    unknown_skills_warning,
    unknown_source_warning,
    unknown_title_warning,
    unstated_skills_warning,
)

if TYPE_CHECKING:
    import pandas as pd

    from salarymodel.data.titles import TitleRules


def is_missing(value: object) -> bool:
    """None, NaN or pandas' NA: a value a job does not give."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return True
    # pandas' NA can only reach us from a frame, so pandas is loaded then.
    pandas = sys.modules.get("pandas")
    return pandas is not None and value is pandas.NA


class JobTitle(NamedTuple):
    """What a job's title gives the model: role family, title code, seniority level, words."""

    family: str
    code: int
    seniority: float  # NaN when neither title names one
    words: list[int]  # matrix columns of the title's words (not the short title's)


class Place(NamedTuple):
    """Where a job is, as the model reads it: country, US state and metro, and warnings."""

    country: str | None
    state: str | None
    metro: str | None
    warnings: list[str]


class Vocabulary(Protocol):
    """What the encoder reads of a model's vocabulary (``FeatureBuilder`` has it)."""

    features: FeaturesConfig
    skill_sources: list[str] | None  # sources whose records state skills; None: every one
    month_sources: list[str] | None  # sources whose records state a month; None: none
    word_sources: dict[str, list[str]] | None  # title words each source uses; None: all

    @property
    def layout(self) -> RowLayout: ...

    def lookup_tables(self) -> dict[str, Mapping[str, int]]: ...

    def job_title(self, title: object, category: object = None) -> JobTitle: ...

    def job_place(
        self, country: object, location: object, state: object = None, metro: object = None
    ) -> Place: ...

    def country_code(self, country: object) -> tuple[float, float, str | None]: ...

    def location_values(
        self, iso2: str | None, family: str, state: str | None, metro: str | None
    ) -> tuple[float, ...]: ...


class RowParts(NamedTuple):
    """One job's row in parts, before a matrix is filled with them."""

    base: tuple[float, ...]  # the BASE columns' values, in order
    skills: list[int] | None  # skill-vocabulary positions listed; None: no skill list
    words: list[int]  # matrix columns of the title's words
    place: tuple[float, ...]  # the place columns' values
    where: Place
    warnings: list[str]
    time: tuple[float, ...] = ()  # the time column's value, if the layout has one


class RowEncoder:
    """Jobs (dicts) to matrix rows along one :class:`RowLayout`: the one encoder.

    ``encode_job``, ``encode_many`` and ``transform`` all come here. One encoder
    looks each distinct title, place, employer country, skill list and source up
    once, so a batch costs a few dictionary look-ups per job.
    """

    def __init__(self, builder: Vocabulary) -> None:
        self.builder = builder
        self.tables = builder.lookup_tables()
        self.layout = builder.layout
        self._titles: dict[tuple, tuple[tuple[float, float, float], str, list[int], list[str]]] = {}
        self._places: dict[tuple, tuple[Place, float, float, list[str]]] = {}
        self._companies: dict[tuple, tuple[str | None, list[str]]] = {}
        self._place_values: dict[tuple, tuple[float, ...]] = {}
        self._skill_sets: dict[tuple, tuple[list[int], float, list[str]]] = {}
        self._folded: dict[str, str] = {}  # a skill as typed -> the vocabulary's name
        self._sources: dict[object, tuple[float, list[str]]] = {}
        self._view_words: dict[object, frozenset[int] | None] = {}  # per source (view)
        # Per encoder, not per job: each direct column's lookup table (None: a
        # number), and the BASE order as one C-level getter over a job's values.
        self._direct = [
            (c.name, None if c.lookup is None else self.tables[c.lookup]) for c in DIRECT_COLUMNS
        ]
        self._in_order = itemgetter(*BASE_COLUMNS)
        self._month_sources = frozenset(builder.month_sources or ())

    def encode(self, jobs: Sequence[Mapping[str, object]]) -> tuple[np.ndarray, list[RowParts]]:
        """The matrix of many jobs and each job's parts (warnings, resolved place)."""
        parts = [self.parts(job) for job in jobs]
        return self.matrix(parts), parts

    def parts(self, job: Mapping[str, object]) -> RowParts:
        """One job's row in parts, with the warnings its title, place, skills and source raised."""
        (family_code, code, seniority), family, words, notes = self._title(job)
        where, country_code, region_code, place_notes = self._place(job)
        source_code, source_notes = self._source(job.get("source"))
        listed, n_skills, skill_notes = self._skills(job.get("skills"), job.get("source"))
        words = self._words_read(words, job.get("source"))
        company, company_notes = self._company(job, where.country)
        derived: dict[str, float] = {
            "role_family": family_code,
            "title": code,
            "title_seniority": seniority,
            "country": country_code,
            "region": region_code,
            "employer_abroad": abroad(where.country, company),
            "source": source_code,
            "n_skills": n_skills,
        }
        for name, table in self._direct:
            value = job.get(name)
            derived[name] = as_number(value) if table is None else table.get(str(value), math.nan)
        base = self._in_order(derived)
        values_key = (where.country, family, where.state, where.metro)
        if values_key not in self._place_values:
            self._place_values[values_key] = self.builder.location_values(*values_key)
        warnings = notes + place_notes + company_notes + skill_notes + source_notes
        time = (self._quarter_time(job),) if self.layout.time else ()
        return RowParts(base, listed, words, self._place_values[values_key], where, warnings, time)

    def matrix(self, parts: Sequence[RowParts]) -> np.ndarray:
        """Rows' parts into one matrix, block by block (``RowLayout``)."""
        n, layout = len(parts), self.layout
        matrix = np.empty((n, layout.width))
        matrix[:, :N_BASE] = np.array([p.base for p in parts], dtype=float).reshape(n, N_BASE)
        skills = layout.skill_block
        matrix[:, skills] = np.nan  # no skill list: count and flags stay missing
        stated = [i for i, p in enumerate(parts) if p.skills is not None]
        matrix[stated, skills] = 0.0
        listed = [(i, skills.start + c) for i in stated for c in parts[i].skills or ()]
        matrix[[i for i, _ in listed], [c for _, c in listed]] = 1.0
        matrix[:, layout.word_block] = 0.0
        words = [(i, c) for i, p in enumerate(parts) for c in p.words]
        matrix[[i for i, _ in words], [c for _, c in words]] = 1.0
        if layout.time:
            times = np.array([p.time for p in parts], dtype=float)
            matrix[:, layout.time_block] = times.reshape(n, len(layout.time))
        if layout.place:
            places = np.array([p.place for p in parts], dtype=float)
            matrix[:, layout.place_block] = places.reshape(n, len(layout.place))
        return matrix

    def _quarter_time(self, job: Mapping[str, object]) -> float:
        """When the job is, in quarters (year x 4 + quarters into the year), for a
        source whose records state a month: the middle of its quarter, else of its year.

        Quarters, not months: by month the trees followed the few postings of
        late months and the backtest lost accuracy. A job a person describes
        states no month and sits mid-year: one dated after the training data
        lands past its last quarter, on the latest level. Other sources' jobs
        read it as missing, as their records did.
        """
        if job.get("source") not in self._month_sources:
            return math.nan
        month = as_number(job.get("month"))
        into = (month - 1) // 3 + 0.5 if 1 <= month <= 12 else 2.0
        return as_number(job.get("year")) * 4 + into

    def _title(
        self, job: Mapping[str, object]
    ) -> tuple[tuple[float, float, float], str, list[int], list[str]]:
        key = (job.get("job_title"), job.get("job_category"))
        if key not in self._titles:
            title = self.builder.job_title(*key)
            codes = (float(self.tables["role_family"][title.family]), float(title.code))
            unknown = [unknown_title_warning(key[0])] if title.family == OTHER_FAMILY else []
            self._titles[key] = ((*codes, title.seniority), title.family, title.words, unknown)
        return self._titles[key]

    def _place(self, job: Mapping[str, object]) -> tuple[Place, float, float, list[str]]:
        key = (job.get("country"), job.get("location"), job.get("state"), job.get("metro"))
        if key not in self._places:
            where = self.builder.job_place(*key)
            code, region, note = self.builder.country_code(where.country)
            self._places[key] = (where, code, region, where.warnings + ([note] if note else []))
        return self._places[key]

    def _company(
        self, job: Mapping[str, object], country: str | None
    ) -> tuple[str | None, list[str]]:
        """The employer's country, and a warning when it is not recognised (it is then
        missing, as the job's own country is); it follows a location that moved the
        job's country, when it was the country given (the service fills it in)."""
        key = (job.get("company_country"), job.get("country"), country)
        if key not in self._companies:
            company, unknown = resolve_country(key[0], "company_country")
            given, _ = resolve_country(key[1])
            # Said once: the same text as the job's country (the default) is warned there.
            note = [] if unknown is None or key[0] == key[1] else [unknown]
            if given != country and company == given:
                company = country
            self._companies[key] = (company, note)
        return self._companies[key]

    def _skills(self, skills: object, source: object) -> tuple[list[int] | None, float, list[str]]:
        """(vocabulary positions listed, number of distinct skills, warnings) of a skill
        list, alias-folded; (None, NaN, []) when the job gives no list, and when its
        source (view) never states skills, with a warning if skills were given."""
        if not isinstance(skills, list | tuple):
            return None, math.nan, []
        if self._skills_unstated(source):
            # Trees learned skills' worth from the sources that state them only;
            # read in a view without skills they would move its pay by theirs.
            stating = self.builder.skill_sources or []
            return None, math.nan, [unstated_skills_warning(source, stating)] if skills else []
        key = tuple(skills)
        if key not in self._skill_sets:
            aliases, table = self.builder.features.skill_aliases, self.tables["skill"]
            for skill in skills:
                if skill not in self._folded:
                    self._folded[skill] = normalise_skill(skill, aliases)
            names = list(dict.fromkeys(self._folded[s] for s in skills))
            unknown = [name for name in names if name not in table]
            listed = [table[name] for name in names if name in table]
            notes = [unknown_skills_warning(unknown)] if unknown else []
            self._skill_sets[key] = (listed, float(len(names)), notes)
        return self._skill_sets[key]

    def _skills_unstated(self, source: object) -> bool:
        """True for a source the model was trained on whose records never state skills."""
        stating = self.builder.skill_sources
        if stating is None or is_missing(source) or str(source) not in self.tables["source"]:
            return False  # a bundle from before the fact, or no known view: as given
        return str(source) not in stating

    def _words_read(self, words: list[int], source: object) -> list[int]:
        """A title's word columns as its view reads them: a word the source's training
        records never use is absent, as it was in every one of that source's rows."""
        if not words:
            return words
        if source not in self._view_words:
            self._view_words[source] = self._source_words(source)
        used = self._view_words[source]
        return words if used is None else [c for c in words if c in used]

    def _source_words(self, source: object) -> frozenset[int] | None:
        """Word columns a known source's records use; None: read every word."""
        by_source = self.builder.word_sources
        if by_source is None or is_missing(source) or str(source) not in by_source:
            return None  # a bundle from before the fact, or no known view: as given
        # Trees learned a word's worth from the sources using it only (the survey's
        # titles never say "senior"): in another view it would move pay by theirs.
        table, start = self.tables["word"], self.layout.word_block.start
        return frozenset(start + table[w] for w in by_source[str(source)] if w in table)

    def _source(self, source: object) -> tuple[float, list[str]]:
        if source not in self._sources:
            code = None if is_missing(source) else self.tables["source"].get(str(source))
            bad = code is None and not is_missing(source)
            self._sources[source] = (
                math.nan if code is None else float(code),
                [unknown_source_warning(source)] if bad else [],
            )
        return self._sources[source]


def sources_stating_skills(records: pd.DataFrame) -> list[str]:
    """The sources some of whose training records state a skill list (an empty one too)."""
    stated = records["skills"].map(lambda skills: isinstance(skills, list | tuple))
    return sorted(records.loc[stated, "source"].dropna().astype(str).unique())


def sources_stating_months(records: pd.DataFrame) -> list[str]:
    """The sources some of whose training records state the month (the postings)."""
    if "month" not in records:
        return []
    return sorted(records.loc[records["month"].notna(), "source"].dropna().astype(str).unique())


def title_words_by_source(
    records: pd.DataFrame, rules: TitleRules, words: Sequence[str]
) -> dict[str, list[str]]:
    """Per source, the vocabulary's title words some of its training records' titles use."""
    vocabulary, used = set(words), dict[str, set[str]]()
    pairs = zip(records["source"].astype(object), records["job_title"].astype(object), strict=True)
    for source, title in set(pairs):
        if not is_missing(source):
            found = used.setdefault(str(source), set())
            found.update(w for w in rules.words(title) if w in vocabulary)
    return {source: sorted(found) for source, found in sorted(used.items())}


def records_as_jobs(records: pd.DataFrame) -> list[dict[str, Any]]:
    """Each record as the dict the encoder reads, a missing cell as None."""
    frame = records[[name for name in JOB_FIELDS if name in records]].astype(object)
    return frame.where(frame.notna(), None).to_dict("records")


def resolve_country(value: object, field: str = "country") -> tuple[str | None, str | None]:
    """(ISO2 code or None, warning naming ``field``) for a country code or name given
    by a person.

    The adapters' resolver (``geography.to_iso2``), so "UK" is GB here as in
    training data; an unknown code is missing with a warning, like a name.
    """
    if not isinstance(value, str) or not value.strip():
        return None, None
    text = value.strip()
    code = geography.to_iso2(text)
    if code is None:
        return None, unknown_country_warning(text, field)
    return code, None


def as_number(value: Any) -> float:
    """Any cell or JSON value as a float; NaN for what is missing or not a number."""
    if type(value) in (int, float):  # the common case, on the serving path
        return float(value)
    try:
        return math.nan if is_missing(value) else float(value)
    except (TypeError, ValueError):
        return math.nan


def abroad(country: object, company_country: object) -> float:
    """1.0 when the employer's country is not the job's, NaN when either is missing."""
    if is_missing(country) or is_missing(company_country):
        return math.nan
    return float(country != company_country)
