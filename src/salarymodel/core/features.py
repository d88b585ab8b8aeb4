"""The one feature builder, used by training and serving alike.

``FeatureBuilder.fit`` learns the vocabularies (countries, regions, skills)
from training records; they are stored with the model as JSON. ``transform``
turns a frame of canonical records into the numeric matrix LightGBM sees;
``encode`` turns one request (a plain dict) into the same row without pandas,
because a one-row frame costs ~4 ms and the booster ~25 us; ``encode_many``
does the same for a batch of requests, column by column, each distinct title,
country and skill list looked up once. All three go through the same lookup
tables and warnings, and tests check they agree on real rows. pandas is
imported only by the training-side methods: a service worker never loads it.

Unknown values never crash: an unseen country becomes "other", an unknown
title the family "other", an unknown skill is ignored, and each is reported.
"""

from __future__ import annotations

import math
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import numpy as np

from salarymodel.config import FeaturesConfig
from salarymodel.data import geography
from salarymodel.data.bls_reference import BlsWages, load_wages
from salarymodel.data.skills import normalise_skill
from salarymodel.data.titles import OTHER_FAMILY, TitleRules, title_rules
from salarymodel.vocabulary import (
    COMPANY_SIZE_ORDER,
    EMPLOYMENT_TYPES,
    EXPERIENCE_ORDER,
    location_country_warning,
    rare_country_warning,
    unknown_country_warning,
    unknown_location_warning,
    unknown_skills_warning,
    unknown_source_warning,
    unknown_title_warning,
)

if TYPE_CHECKING:
    import pandas as pd

OTHER = "other"

# What a base column holds: a category code (LightGBM splits it as a set), an
# ordinal rank, a number, a 0/1 flag or a count.
Kind = Literal["category", "ordinal", "number", "flag", "count"]


@dataclass(frozen=True)
class BaseColumn:
    """One base column of the row: its name, its kind and, for a column read
    straight from the job's field of that name, the table that codes the field."""

    name: str
    kind: Kind
    lookup: str | None = None  # a vocabulary (``lookup_tables``); None: a number
    direct: bool = False  # the job's own field, not derived from title, place or skills


# The base columns in matrix order: the one statement of the row's head. The
# skill flags follow as "skill:<name>", then the title words as "word:<words>",
# then the place columns (RowLayout).
BASE = (
    BaseColumn("role_family", "category", "role_family"),
    BaseColumn("title", "category", "title"),
    BaseColumn("title_seniority", "ordinal"),
    BaseColumn("experience_level", "ordinal", "experience_level", direct=True),
    BaseColumn("company_size", "ordinal", "company_size", direct=True),
    BaseColumn("country", "category", "country"),
    BaseColumn("region", "category", "region"),
    BaseColumn("employer_abroad", "flag"),
    BaseColumn("remote_ratio", "number", direct=True),
    BaseColumn("employment_type", "category", "employment_type", direct=True),
    BaseColumn("year", "number", direct=True),
    BaseColumn("source", "category", "source"),
    BaseColumn("n_skills", "count"),
)
BASE_COLUMNS = [column.name for column in BASE]
CATEGORICAL_COLUMNS = [column.name for column in BASE if column.kind == "category"]
DIRECT_COLUMNS = tuple(column for column in BASE if column.direct)
N_BASE = len(BASE_COLUMNS)
AT = {name: i for i, name in enumerate(BASE_COLUMNS)}
SKILL_PREFIX = "skill:"
WORD_PREFIX = "word:"
# Place below the country (features.location), after the title words: the US
# state (a category) and BLS's median wage of the job's occupation in its
# metro, else state, relative to the nation's. Missing outside the US.
STATE_COLUMN = "state"
AREA_WAGE_COLUMN = "area_wage_ratio"
# Every job field an encoder reads: transform takes these columns of a frame.
JOB_FIELDS = (
    "job_title",
    "job_category",
    "country",
    "location",
    "state",
    "metro",
    "company_country",
    "skills",
    "source",
    *(column.name for column in DIRECT_COLUMNS),
)


@dataclass(frozen=True)
class RowLayout:
    """Where each block sits in one model's row: base, skill flags, title words, place."""

    skills: Sequence[str]
    words: Sequence[str]
    place: Sequence[str]  # STATE_COLUMN and/or AREA_WAGE_COLUMN, as configured

    @property
    def columns(self) -> list[str]:
        """Every column's name, in matrix order."""
        skills = [SKILL_PREFIX + s for s in self.skills]
        return [*BASE_COLUMNS, *skills, *(WORD_PREFIX + w for w in self.words), *self.place]

    @property
    def width(self) -> int:
        """The number of columns."""
        return N_BASE + len(self.skills) + len(self.words) + len(self.place)

    @property
    def skill_block(self) -> slice:
        """Where the skill flags sit."""
        return slice(N_BASE, N_BASE + len(self.skills))

    @property
    def word_block(self) -> slice:
        """Where the title-word flags sit."""
        start = N_BASE + len(self.skills)
        return slice(start, start + len(self.words))

    @property
    def place_block(self) -> slice:
        """Where the place columns sit: the row's tail."""
        return slice(self.width - len(self.place), self.width)

    def place_index(self, name: str) -> int | None:
        """Matrix column of a place column, if this layout has it."""
        if name not in self.place:
            return None
        return self.place_block.start + list(self.place).index(name)

    @property
    def categorical_indices(self) -> list[int]:
        """Matrix columns LightGBM treats as categories."""
        state = self.place_index(STATE_COLUMN)
        return [AT[c] for c in CATEGORICAL_COLUMNS] + ([] if state is None else [state])


def _missing(value: object) -> bool:
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


class EncodedJob(NamedTuple):
    """One job as the model sees it, with what encoding it found out on the way."""

    row: np.ndarray
    warnings: list[str]
    country: str | None  # ISO2, resolved once: ranges and explanations read it here
    state: str | None = None  # USPS code, US jobs whose location names one
    metro: str | None = None  # BLS metro area code


class Place(NamedTuple):
    """Where a job is, as the model reads it: country, US state and metro, and warnings."""

    country: str | None
    state: str | None
    metro: str | None
    warnings: list[str]


@dataclass
class FeatureBuilder:
    """Vocabularies learned at training time and the encoding built on them."""

    features: FeaturesConfig
    role_families: list[str] = field(default_factory=list)
    titles: list[str] = field(default_factory=list)
    countries: list[str] = field(default_factory=list)
    regions: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    skills: list[str] = field(default_factory=list)
    # Title words (and word runs) with a 0/1 column each, after the skills.
    title_words: list[str] = field(default_factory=list)
    # US states with a category of their own (features.location.state_feature).
    states: list[str] = field(default_factory=list)
    # BLS OEWS wages of the role families' occupations (features.location).
    bls: BlsWages | None = None

    # ----- learning -------------------------------------------------------
    @classmethod
    def fit(cls, records: pd.DataFrame, features: FeaturesConfig) -> FeatureBuilder:
        """Learn vocabularies from canonical training records."""
        rules = title_rules(features)
        min_count = features.min_category_count
        country_counts = records["country"].dropna().value_counts()
        countries = sorted(country_counts[country_counts >= min_count].index)
        regions = sorted(
            {r for r in (geography.region(c) for c in country_counts.index) if r is not None}
        )
        skill_counts: Counter[str] = Counter()
        for skills in records["skills"]:
            if isinstance(skills, list):
                skill_counts.update(skills)
        skills = sorted(s for s, n in skill_counts.items() if n >= features.min_skill_count)
        # Core titles per distinct title: the 54,591 shipped records have 10,509.
        title_counts: Counter[str] = Counter()
        for title, n in Counter(records["job_title"].astype(object)).items():
            title_counts[rules.core_title(title)] += n
        titles = sorted(t for t, n in title_counts.items() if t and n >= min_count)
        states: list[str] = []
        bls = None
        if features.location is not None:
            from salarymodel.config import resolve_path

            us = records["country"].astype(object) == "US"
            # Frames from before the place fields (or with none) have no state.
            given = records["state"] if "state" in records else records["country"].where(False)
            state_counts = given[us].dropna().value_counts()
            states = [*sorted(state_counts[state_counts >= min_count].index), OTHER]
            path = resolve_path(features.location.bls_table)
            bls = load_wages(path, sorted(set(features.location.occupations.values())))
        return cls(
            features=features,
            states=states,
            bls=bls,
            role_families=rules.family_names,
            titles=[*titles, OTHER],
            countries=[*countries, OTHER],
            regions=[*regions, OTHER],
            sources=sorted(records["source"].dropna().unique()),
            skills=skills,
            title_words=_frequent_words(records["job_title"], rules, features),
        )

    # ----- layout ---------------------------------------------------------
    @property
    def location_columns(self) -> list[str]:
        """The place columns this model has (features.location), after the title words."""
        location = self.features.location
        if location is None:
            return []
        return [STATE_COLUMN] * location.state_feature + [AREA_WAGE_COLUMN] * (
            location.area_wage_feature
        )

    @property
    def layout(self) -> RowLayout:
        """This model's row layout (the vocabularies' sizes and the place columns)."""
        return RowLayout(self.skills, self.title_words, self.location_columns)

    @property
    def columns(self) -> list[str]:
        """Every matrix column's name, in order."""
        return self.layout.columns

    @property
    def skill_columns(self) -> slice:
        """Where the skill flags sit in a matrix row."""
        return self.layout.skill_block

    @property
    def word_columns(self) -> slice:
        """Where the title-word flags sit in a matrix row."""
        return self.layout.word_block

    def location_index(self, name: str) -> int | None:
        """Matrix column of a place column (``STATE_COLUMN``, ``AREA_WAGE_COLUMN``), if any."""
        return self.layout.place_index(name)

    @property
    def categorical_indices(self) -> list[int]:
        """Matrix columns LightGBM treats as categories."""
        return self.layout.categorical_indices

    def _rules(self) -> TitleRules:
        # Per builder, not per call: looking the rules up by config costs about
        # 20 µs, several times per request on the serving path.
        cached = getattr(self, "_cached_rules", None)
        if cached is None:
            cached = self._cached_rules = title_rules(self.features)
        return cached

    def lookup_tables(self) -> dict[str, Mapping[str, int]]:
        """Code of each value, per vocabulary (``BaseColumn.lookup``, "skill", "word", "state")."""
        cached = getattr(self, "_cached_tables", None)
        if cached is None:
            learned = {
                "role_family": self.role_families,
                "title": self.titles,
                "country": self.countries,
                "region": self.regions,
                "employment_type": EMPLOYMENT_TYPES,
                "source": self.sources,
                "skill": self.skills,
                "word": self.title_words,
                "state": self.states,
            }
            cached = {
                name: {v: i for i, v in enumerate(values)} for name, values in learned.items()
            }
            cached |= {"experience_level": EXPERIENCE_ORDER, "company_size": COMPANY_SIZE_ORDER}
            self._cached_tables = cached
        return cached

    # ----- single values (shared by both paths) -----------------------------
    def job_title(self, title: object, category: object = None) -> JobTitle:
        """Role family, code of the core words and seniority of a title, each parsed once.

        Where the title says nothing of one (family "other", core words too
        rare for a code, no seniority word), the source's short title
        (``category``) is read for it.
        """
        rules, table = self._rules(), self.lookup_tables()["title"]
        parsed = rules.parse(title)
        family, code, level = parsed.family, table.get(parsed.core), parsed.seniority
        if not _missing(category) and (family == OTHER_FAMILY or code is None or level is None):
            short = rules.parse(category)
            family = short.family if family == OTHER_FAMILY else family
            code = table.get(short.core) if code is None else code
            level = short.seniority if level is None else level
        return JobTitle(
            family,
            table[OTHER] if code is None else code,
            math.nan if level is None else float(level),
            self._word_positions(parsed.words),
        )

    def _word_positions(self, words: tuple[str, ...]) -> list[int]:
        """Matrix columns of a title's words (``TitleRules.words``) in the vocabulary."""
        table = self.lookup_tables()["word"]
        if not table:
            return []
        start = self.layout.word_block.start
        return [start + table[w] for w in words if w in table]

    def country_code(self, country: object) -> tuple[float, float, str | None]:
        """(country code, region code, warning) for an ISO2 country or None."""
        if _missing(country):
            return math.nan, math.nan, None
        tables = self.lookup_tables()
        iso2 = str(country)
        warning = None
        code = tables["country"].get(iso2)
        if code is None:
            code = tables["country"][OTHER]
            warning = rare_country_warning(iso2)
        region = geography.region(iso2)
        region_code = tables["region"].get(region or "", tables["region"][OTHER])
        return float(code), float(region_code), warning

    def job_place(
        self, country: object, location: object, state: object = None, metro: object = None
    ) -> Place:
        """Country, US state and metro of a job from its country and location, with warnings.

        Records that carry a state or metro (the postings' derived ones) keep
        them; otherwise the location text is resolved (geography.resolve_location)
        and, where it names a country other than the given one, wins with a
        warning. Without features.location the location is not read.
        """
        iso2, note = resolve_country(country)
        notes = [note] if note else []
        if self.features.location is None:
            return Place(iso2, None, None, notes)
        if not _missing(state) or not _missing(metro):
            return Place(
                iso2,
                None if _missing(state) else str(state),
                None if _missing(metro) else str(metro),
                notes,
            )
        if not isinstance(location, str) or not location.strip():
            return Place(iso2, None, None, notes)
        found = geography.resolve_location(location, iso2)
        if found.warning is not None:
            notes.append(unknown_location_warning(location.strip()))
        if found.country is not None and found.country != iso2:
            if iso2 is not None:
                notes.append(location_country_warning(location.strip(), found.country, iso2))
            iso2 = found.country
        return Place(iso2, found.state, found.metro, notes)

    def location_values(
        self, iso2: str | None, family: str, state: str | None, metro: str | None
    ) -> tuple[float, ...]:
        """The place columns' values (in ``location_columns`` order) of one job."""
        location = self.features.location
        if location is None:
            return ()
        us = iso2 == "US"
        values = []
        if location.state_feature:
            table = self.lookup_tables()["state"]
            values.append(float(table.get(state, table[OTHER])) if us and state else math.nan)
        if location.area_wage_feature:
            soc = location.occupations.get(family)
            ratio = self.bls.area_ratio(soc, state, metro) if us and self.bls else math.nan
            values.append(ratio)
        return tuple(values)

    def reference(self, job: Mapping[str, object]) -> dict[str, Any] | None:
        """BLS's wages for a US job's occupation in its metro, else state, else the nation.

        None outside the US, for a model without features.location, or for a
        role family without an occupation.
        """
        location = self.features.location
        if location is None or self.bls is None:
            return None
        place = self.job_place(
            job.get("country"), job.get("location"), job.get("state"), job.get("metro")
        )
        if place.country != "US":
            return None
        family = self.job_title(job.get("job_title"), job.get("job_category")).family
        soc = location.occupations.get(family)
        return self.bls.reference(soc, place.state, place.metro)

    # ----- encoding: every path goes through RowEncoder -----------------------
    def encode(self, job: Mapping[str, object]) -> tuple[np.ndarray, list[str]]:
        """One canonical job (a dict) to a matrix row and the warnings it raised."""
        encoded = self.encode_job(job)
        return encoded.row, encoded.warnings

    def encode_job(self, job: Mapping[str, object]) -> EncodedJob:
        """One canonical job (a dict) to its matrix row, warnings and resolved place.

        Countries may be codes or names (resolved as the adapters resolve them);
        skills are alias-folded. The row is :meth:`encode_many`'s for a batch of one.
        """
        matrix, parts = RowEncoder(self).encode([job])
        where = parts[0].where
        return EncodedJob(matrix[0], parts[0].warnings, where.country, where.state, where.metro)

    def encode_many(
        self, jobs: Sequence[Mapping[str, object]]
    ) -> tuple[np.ndarray, list[list[str]], list[str | None]]:
        """Many canonical jobs (dicts) to a matrix, each row's warnings and ISO2 country.

        The same rows and warnings as :meth:`encode` job by job (a test
        checks): each distinct title, country, skill list and source is looked
        up once, so a 10,000-job batch costs a few dictionary look-ups per job
        and no pandas.
        """
        matrix, parts = RowEncoder(self).encode(jobs)
        return matrix, [p.warnings for p in parts], [p.where.country for p in parts]

    def transform(self, records: pd.DataFrame) -> np.ndarray:
        """Canonical records (validated frame) to the feature matrix: each record's
        row is the one :meth:`encode_many` gives its dict."""
        return RowEncoder(self).encode(_records_as_jobs(records))[0]

    # ----- storage --------------------------------------------------------
    def to_dict(self) -> dict[str, object]:
        return {
            "features": self.features.model_dump(),
            "role_families": self.role_families,
            "titles": self.titles,
            "countries": self.countries,
            "regions": self.regions,
            "sources": self.sources,
            "skills": self.skills,
            "title_words": self.title_words,
            "states": self.states,
            "bls": None if self.bls is None else self.bls.to_dict(),
            "columns": self.columns,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureBuilder:
        builder = cls(
            features=FeaturesConfig.model_validate(data["features"]),
            role_families=list(data["role_families"]),
            titles=list(data["titles"]),
            countries=list(data["countries"]),
            regions=list(data["regions"]),
            sources=list(data["sources"]),
            skills=list(data["skills"]),
            # Bundles saved before title words existed have none.
            title_words=list(data.get("title_words", [])),
            # Bundles saved before features.location have neither.
            states=list(data.get("states", [])),
            bls=None if data.get("bls") is None else BlsWages.from_dict(data["bls"]),
        )
        if builder.columns != list(data["columns"]):
            raise ValueError("stored feature columns do not match the vocabulary")
        return builder


class RowParts(NamedTuple):
    """One job's row in parts, before a matrix is filled with them."""

    base: tuple[float, ...]  # the BASE columns' values, in order
    skills: list[int] | None  # skill-vocabulary positions listed; None: no skill list
    words: list[int]  # matrix columns of the title's words
    place: tuple[float, ...]  # the place columns' values
    where: Place
    warnings: list[str]


class RowEncoder:
    """Jobs (dicts) to matrix rows along one :class:`RowLayout`: the one encoder.

    ``encode_job``, ``encode_many`` and ``transform`` all come here. One encoder
    looks each distinct title, place, employer country, skill list and source up
    once, so a batch costs a few dictionary look-ups per job.
    """

    def __init__(self, builder: FeatureBuilder) -> None:
        self.builder = builder
        self.tables = builder.lookup_tables()
        self.layout = builder.layout
        self._titles: dict[tuple, tuple[tuple[float, float, float], str, list[int], list[str]]] = {}
        self._places: dict[tuple, tuple[Place, float, float, list[str]]] = {}
        self._companies: dict[tuple, str | None] = {}
        self._place_values: dict[tuple, tuple[float, ...]] = {}
        self._skill_sets: dict[tuple, tuple[list[int], float, list[str]]] = {}
        self._folded: dict[str, str] = {}  # a skill as typed -> the vocabulary's name
        self._sources: dict[object, tuple[float, list[str]]] = {}

    def encode(self, jobs: Sequence[Mapping[str, object]]) -> tuple[np.ndarray, list[RowParts]]:
        """The matrix of many jobs and each job's parts (warnings, resolved place)."""
        parts = [self.parts(job) for job in jobs]
        return self.matrix(parts), parts

    def parts(self, job: Mapping[str, object]) -> RowParts:
        """One job's row in parts, with the warnings its title, place, skills and source raised."""
        (family_code, code, seniority), family, words, notes = self._title(job)
        where, country_code, region_code, place_notes = self._place(job)
        listed, n_skills, skill_notes = self._skills(job.get("skills"))
        source_code, source_notes = self._source(job.get("source"))
        derived = {
            "role_family": family_code,
            "title": code,
            "title_seniority": seniority,
            "country": country_code,
            "region": region_code,
            "employer_abroad": _abroad(where.country, self._company(job, where.country)),
            "source": source_code,
            "n_skills": n_skills,
        }
        base = tuple(
            self._direct(c, job.get(c.name)) if c.direct else derived[c.name] for c in BASE
        )
        values_key = (where.country, family, where.state, where.metro)
        if values_key not in self._place_values:
            self._place_values[values_key] = self.builder.location_values(*values_key)
        warnings = notes + place_notes + skill_notes + source_notes
        return RowParts(base, listed, words, self._place_values[values_key], where, warnings)

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
        if layout.place:
            places = np.array([p.place for p in parts], dtype=float)
            matrix[:, layout.place_block] = places.reshape(n, len(layout.place))
        return matrix

    def _direct(self, column: BaseColumn, value: object) -> float:
        if column.lookup is None:
            return _number(value)
        return float(self.tables[column.lookup].get(str(value), math.nan))

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

    def _company(self, job: Mapping[str, object], country: str | None) -> str | None:
        """The employer's country; it follows a location that moved the job's country,
        when it was the country given (the service fills it in from the country)."""
        key = (job.get("company_country"), job.get("country"), country)
        if key not in self._companies:
            company, _ = resolve_country(key[0])
            given, _ = resolve_country(key[1])
            self._companies[key] = country if given != country and company == given else company
        return self._companies[key]

    def _skills(self, skills: object) -> tuple[list[int] | None, float, list[str]]:
        """(vocabulary positions listed, number of distinct skills, warnings) of a skill
        list, alias-folded; (None, NaN, []) when the job gives no list."""
        if not isinstance(skills, list | tuple):
            return None, math.nan, []
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

    def _source(self, source: object) -> tuple[float, list[str]]:
        if source not in self._sources:
            code = None if _missing(source) else self.tables["source"].get(str(source))
            bad = code is None and not _missing(source)
            self._sources[source] = (
                math.nan if code is None else float(code),
                [unknown_source_warning(source)] if bad else [],
            )
        return self._sources[source]


def _records_as_jobs(records: pd.DataFrame) -> list[dict[str, Any]]:
    """Each record as the dict the encoder reads, a missing cell as None."""
    frame = records[[name for name in JOB_FIELDS if name in records]].astype(object)
    return frame.where(frame.notna(), None).to_dict("records")


def _frequent_words(titles: pd.Series, rules: TitleRules, features: FeaturesConfig) -> list[str]:
    """Title words (and word runs) in at least ``title_words.min_count`` training titles."""
    min_count = features.title_words.min_count
    if min_count is None:
        return []
    counts: Counter[str] = Counter()
    for title, n in Counter(titles.astype(object)).items():
        for word in rules.words(title):
            counts[word] += n
    return sorted(w for w, n in counts.items() if n >= min_count)


def resolve_country(value: object) -> tuple[str | None, str | None]:
    """(ISO2 code or None, warning) for a country code or name given by a person.

    The adapters' resolver (``geography.to_iso2``), so "UK" is GB here as in
    training data; an unknown code is missing with a warning, like a name.
    """
    if not isinstance(value, str) or not value.strip():
        return None, None
    text = value.strip()
    code = geography.to_iso2(text)
    if code is None:
        return None, unknown_country_warning(text)
    return code, None


def _number(value: Any) -> float:  # any cell or JSON value
    if type(value) in (int, float):  # the common case, on the serving path
        return float(value)
    try:
        return math.nan if _missing(value) else float(value)
    except (TypeError, ValueError):
        return math.nan


def _abroad(country: object, company_country: object) -> float:
    if _missing(country) or _missing(company_country):
        return math.nan
    return float(country != company_country)
