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
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from salarymodel.config.data import FeaturesConfig
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

# Base columns in matrix order; skills follow as "skill:<name>".
BASE_COLUMNS = [
    "role_family",
    "title",
    "title_seniority",
    "experience_level",
    "company_size",
    "country",
    "region",
    "employer_abroad",
    "remote_ratio",
    "employment_type",
    "year",
    "source",
    "n_skills",
]
CATEGORICAL_COLUMNS = ["role_family", "title", "country", "region", "employment_type", "source"]
N_BASE = len(BASE_COLUMNS)
AT = {name: i for i, name in enumerate(BASE_COLUMNS)}
SKILL_PREFIX = "skill:"
WORD_PREFIX = "word:"
# Place below the country (features.location), after the title words: the US
# state (a category) and BLS's median wage of the job's occupation in its
# metro, else state, relative to the nation's. Missing outside the US.
STATE_COLUMN = "state"
AREA_WAGE_COLUMN = "area_wage_ratio"


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


# What a bundle saved before these settings existed meant: no title words, no location.
OLD_BUNDLE_FEATURES = {"title_words": {"min_count": None, "ngrams": 1}, "location": None}


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
            from salarymodel.config.settings import resolve_path

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
    def columns(self) -> list[str]:
        skills = [SKILL_PREFIX + s for s in self.skills]
        words = [WORD_PREFIX + w for w in self.title_words]
        return BASE_COLUMNS + skills + words + self.location_columns

    @property
    def skill_columns(self) -> slice:
        """Where the skill flags sit in a matrix row."""
        return slice(N_BASE, N_BASE + len(self.skills))

    @property
    def word_columns(self) -> slice:
        """Where the title-word flags sit in a matrix row."""
        start = N_BASE + len(self.skills)
        return slice(start, start + len(self.title_words))

    def location_index(self, name: str) -> int | None:
        """Matrix column of a place column (``STATE_COLUMN``, ``AREA_WAGE_COLUMN``), if any."""
        names = self.location_columns
        return len(self.columns) - len(names) + names.index(name) if name in names else None

    @property
    def categorical_indices(self) -> list[int]:
        state = self.location_index(STATE_COLUMN)
        return [BASE_COLUMNS.index(c) for c in CATEGORICAL_COLUMNS] + (
            [] if state is None else [state]
        )

    def _rules(self) -> TitleRules:
        # Per builder, not per call: looking the rules up by config costs about
        # 20 µs, several times per request on the serving path.
        cached = getattr(self, "_cached_rules", None)
        if cached is None:
            cached = self._cached_rules = title_rules(self.features)
        return cached

    def _tables(self) -> dict[str, dict[str, int]]:
        cached = getattr(self, "_cached_tables", None)
        if cached is None:
            cached = {
                "role_family": {v: i for i, v in enumerate(self.role_families)},
                "title": {v: i for i, v in enumerate(self.titles)},
                "country": {v: i for i, v in enumerate(self.countries)},
                "region": {v: i for i, v in enumerate(self.regions)},
                "employment_type": {v: i for i, v in enumerate(EMPLOYMENT_TYPES)},
                "source": {v: i for i, v in enumerate(self.sources)},
                "skill": {v: i for i, v in enumerate(self.skills)},
                "word": {v: i for i, v in enumerate(self.title_words)},
                "state": {v: i for i, v in enumerate(self.states)},
            }
            self._cached_tables = cached
        return cached

    # ----- single values (shared by both paths) -----------------------------
    def job_title(self, title: object, category: object = None) -> JobTitle:
        """Role family, code of the core words and seniority of a title, each parsed once.

        Where the title says nothing of one (family "other", core words too
        rare for a code, no seniority word), the source's short title
        (``category``) is read for it.
        """
        rules, table = self._rules(), self._tables()["title"]
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
        table = self._tables()["word"]
        if not table:
            return []
        start = N_BASE + len(self.skills)
        return [start + table[w] for w in words if w in table]

    def country_code(self, country: object) -> tuple[float, float, str | None]:
        """(country code, region code, warning) for an ISO2 country or None."""
        if _missing(country):
            return math.nan, math.nan, None
        tables = self._tables()
        iso2 = str(country)
        warning = None
        code = tables["country"].get(iso2)
        if code is None:
            code = tables["country"][OTHER]
            warning = rare_country_warning(iso2)
        region = geography.region(iso2)
        region_code = tables["region"].get(region or "", tables["region"][OTHER])
        return float(code), float(region_code), warning

    def skill_flags(self, skills: object) -> tuple[np.ndarray, float, list[str]]:
        """(multi-hot over the vocabulary, count of skills, unknown skill names)."""
        if not isinstance(skills, list | tuple):
            return np.full(len(self.skills), np.nan), math.nan, []
        table = self._tables()["skill"]
        flags = np.zeros(len(self.skills))
        unknown = []
        for skill in skills:
            index = table.get(skill)
            if index is None:
                unknown.append(skill)
            else:
                flags[index] = 1.0
        return flags, float(len(skills)), unknown

    def place(self, value: object) -> tuple[str | None, float, float, list[str]]:
        """(ISO2 code, country code, region code, warnings) for a country a person gave."""
        iso2, note = resolve_country(value)
        found = [note] if note else []
        country_code, region_code, note = self.country_code(iso2)
        return iso2, country_code, region_code, found + ([note] if note else [])

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
            table = self._tables()["state"]
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

    def normalised_skills(self, skills: object) -> object:
        """Skills alias-folded and de-duplicated in order; anything not a list as given."""
        if not isinstance(skills, list | tuple):
            return skills
        aliases = self.features.skill_aliases
        return list(dict.fromkeys(normalise_skill(s, aliases) for s in skills))

    # ----- one request ------------------------------------------------------
    def encode(self, job: Mapping[str, object]) -> tuple[np.ndarray, list[str]]:
        """One canonical job (a dict) to a matrix row and the warnings it raised."""
        encoded = self.encode_job(job)
        return encoded.row, encoded.warnings

    def encode_job(self, job: Mapping[str, object]) -> EncodedJob:
        """One canonical job (a dict) to its matrix row, warnings and resolved country.

        Countries may be codes or names (resolved as the adapters resolve them);
        skills are alias-folded.
        """
        warnings: list[str] = []
        tables = self._tables()
        title = self.job_title(job.get("job_title"), job.get("job_category"))
        if title.family == OTHER_FAMILY:
            warnings.append(unknown_title_warning(job.get("job_title")))
        where = self.job_place(
            job.get("country"), job.get("location"), job.get("state"), job.get("metro")
        )
        country = where.country
        warnings += where.warnings
        country_code, region_code, note = self.country_code(country)
        warnings += [note] if note else []
        company = self._company(job, country)
        skills = self.normalised_skills(job.get("skills"))
        flags, n_skills, unknown = self.skill_flags(skills)
        if unknown:
            warnings.append(unknown_skills_warning(unknown))
        source = job.get("source")
        source_code = tables["source"].get(str(source)) if not _missing(source) else None
        if source_code is None and not _missing(source):
            warnings.append(unknown_source_warning(source))
        row = np.zeros(len(self.columns))
        row[:N_BASE] = (
            tables["role_family"][title.family],
            title.code,
            title.seniority,
            EXPERIENCE_ORDER.get(str(job.get("experience_level")), math.nan),
            COMPANY_SIZE_ORDER.get(str(job.get("company_size")), math.nan),
            country_code,
            region_code,
            _abroad(country, company),
            _number(job.get("remote_ratio")),
            tables["employment_type"].get(str(job.get("employment_type")), math.nan),
            _number(job.get("year")),
            math.nan if source_code is None else source_code,
            n_skills,
        )
        row[self.skill_columns] = flags
        row[title.words] = 1.0
        places = self.location_values(country, title.family, where.state, where.metro)
        row[len(self.columns) - len(places) :] = places
        return EncodedJob(row, warnings, country, where.state, where.metro)

    def _company(self, job: Mapping[str, object], country: str | None) -> str | None:
        """The employer's country; it follows a location that moved the job's country,
        when it was the country given (the service fills it in from the country)."""
        company, _ = resolve_country(job.get("company_country"))
        given, _ = resolve_country(job.get("country"))
        return country if given != country and company == given else company

    # ----- many requests -----------------------------------------------------
    def encode_many(
        self, jobs: Sequence[Mapping[str, object]]
    ) -> tuple[np.ndarray, list[list[str]], list[str | None]]:
        """Many canonical jobs (dicts) to a matrix, each row's warnings and ISO2 country.

        The same rows and warnings as :meth:`encode` job by job (a test
        checks), built column by column: each distinct title, country, skill
        list and source is looked up once, so a 10,000-job batch costs a few
        dictionary look-ups per job and no pandas.
        """
        n = len(jobs)
        tables = self._tables()
        columns = {name: [math.nan] * n for name in BASE_COLUMNS}
        warnings: list[list[str]] = [[] for _ in range(n)]
        iso2s: list[str | None] = [None] * n
        titles: dict[tuple, tuple[float, float, float, list[str], list[int]]] = {}
        places: dict[tuple, tuple[Place, float, float, list[str]]] = {}
        place_values: dict[tuple, tuple[float, ...]] = {}
        location_rows: list[tuple[float, ...]] = []
        companies: dict[tuple, str | None] = {}
        skill_sets: dict[tuple, tuple[list[int], float, list[str]]] = {}
        sources: dict[object, tuple[float, list[str]]] = {}
        levels, sizes = EXPERIENCE_ORDER, COMPANY_SIZE_ORDER
        folded_skills: dict[str, str] = {}  # as typed -> the vocabulary's name
        # Rows that state skills, and the (row, skill) cells listed: set in one go.
        stated: list[int] = []
        listed_rows: list[int] = []
        listed_columns: list[int] = []
        word_rows: list[int] = []
        word_columns: list[int] = []
        for i, job in enumerate(jobs):
            notes = warnings[i]
            key = (job.get("job_title"), job.get("job_category"))
            if key not in titles:
                title = self.job_title(*key)
                titles[key] = (
                    float(tables["role_family"][title.family]),
                    float(title.code),
                    title.seniority,
                    [unknown_title_warning(key[0])] if title.family == OTHER_FAMILY else [],
                    title.words,
                )
            family_code, title_code, seniority, found, words = titles[key]
            notes += found
            word_rows += [i] * len(words)
            word_columns += words
            country = job.get("country")
            place_key = (country, job.get("location"), job.get("state"), job.get("metro"))
            if place_key not in places:
                where = self.job_place(*place_key)
                code, region, note = self.country_code(where.country)
                places[place_key] = (where, code, region, where.warnings + ([note] if note else []))
            where, country_code, region_code, found = places[place_key]
            iso2 = where.country
            notes += found
            iso2s[i] = iso2
            company_key = (job.get("company_country"), country, iso2)
            if company_key not in companies:
                companies[company_key] = self._company(job, iso2)
            company = company_key
            family = self.role_families[int(family_code)]
            values_key = (iso2, family, where.state, where.metro)
            if values_key not in place_values:
                place_values[values_key] = self.location_values(*values_key)
            location_rows.append(place_values[values_key])
            skills = job.get("skills")
            if isinstance(skills, list | tuple):
                skill_key = tuple(skills)
                if skill_key not in skill_sets:
                    skill_sets[skill_key] = self._skill_set(skills, folded_skills)
                listed, count, found = skill_sets[skill_key]
                stated.append(i)
                listed_rows += [i] * len(listed)
                listed_columns += listed
                columns["n_skills"][i] = count
                notes += found
            source = job.get("source")
            if source not in sources:
                source_code = None if _missing(source) else tables["source"].get(str(source))
                bad = source_code is None and not _missing(source)
                sources[source] = (
                    math.nan if source_code is None else float(source_code),
                    [unknown_source_warning(source)] if bad else [],
                )
            columns["source"][i], found = sources[source]
            notes += found
            columns["role_family"][i] = family_code
            columns["title"][i] = title_code
            columns["title_seniority"][i] = seniority
            columns["experience_level"][i] = levels.get(str(job.get("experience_level")), math.nan)
            columns["company_size"][i] = sizes.get(str(job.get("company_size")), math.nan)
            columns["country"][i] = country_code
            columns["region"][i] = region_code
            columns["employer_abroad"][i] = _abroad(iso2, companies[company])
            columns["remote_ratio"][i] = _number(job.get("remote_ratio"))
            columns["employment_type"][i] = tables["employment_type"].get(
                str(job.get("employment_type")), math.nan
            )
            columns["year"][i] = _number(job.get("year"))
        matrix = np.empty((n, len(self.columns)))
        matrix[:, :N_BASE] = np.array([columns[name] for name in BASE_COLUMNS], dtype=float).T
        matrix[:, self.skill_columns] = np.nan
        matrix[stated, self.skill_columns] = 0.0
        matrix[listed_rows, [N_BASE + c for c in listed_columns]] = 1.0
        matrix[:, self.word_columns] = 0.0
        matrix[word_rows, word_columns] = 1.0
        n_places = len(self.location_columns)
        if n_places:
            matrix[:, len(self.columns) - n_places :] = np.array(location_rows, dtype=float)
        return matrix, warnings, iso2s

    def _skill_set(
        self, skills: Sequence[str], folded: dict[str, str]
    ) -> tuple[list[int], float, list[str]]:
        """(vocabulary positions listed, number of skills, warnings) of one skill list,
        as :meth:`skill_flags` counts them; ``folded`` caches each name's folding."""
        aliases, table = self.features.skill_aliases, self._tables()["skill"]
        for skill in skills:
            if skill not in folded:
                folded[skill] = normalise_skill(skill, aliases)
        names = list(dict.fromkeys(folded[s] for s in skills))
        unknown = [name for name in names if name not in table]
        listed = [table[name] for name in names if name in table]
        return listed, float(len(names)), [unknown_skills_warning(unknown)] if unknown else []

    # ----- many records ---------------------------------------------------
    def transform(self, records: pd.DataFrame) -> np.ndarray:
        """Canonical records (validated frame) to the feature matrix."""
        import pandas as pd

        tables = self._tables()
        n = len(records)
        matrix = np.full((n, len(self.columns)), np.nan)
        titles = records["job_title"].astype(object)
        categories = [None if _missing(c) else c for c in records["job_category"].astype(object)]
        pairs = list(zip(titles, categories, strict=True))
        parsed = {p: self.job_title(*p) for p in dict.fromkeys(pairs)}
        families = tables["role_family"]
        matrix[:, AT["role_family"]] = [families[parsed[p].family] for p in pairs]
        matrix[:, AT["title"]] = [parsed[p].code for p in pairs]
        matrix[:, AT["title_seniority"]] = [parsed[p].seniority for p in pairs]
        # Titles' own words (not the short title's), as in encode.
        words = [parsed[p].words for p in pairs]
        matrix[:, AT["experience_level"]] = _lookup(records["experience_level"], EXPERIENCE_ORDER)
        matrix[:, AT["company_size"]] = _lookup(records["company_size"], COMPANY_SIZE_ORDER)
        countries = records["country"].astype(object)
        if self.features.location is not None:
            wheres = self._record_places(records)
            countries = pd.Series([w.country for w in wheres], index=records.index, dtype=object)
            matrix[:, len(self.columns) - len(self.location_columns) :] = self._place_matrix(
                wheres, [parsed[p].family for p in pairs]
            )
        codes = {c: self.country_code(c)[:2] for c in countries.dropna().unique()}
        matrix[:, AT["country"]] = countries.map(lambda c: codes.get(c, (math.nan,))[0]).to_numpy(
            float
        )
        matrix[:, AT["region"]] = countries.map(lambda c: codes.get(c, (0, math.nan))[1]).to_numpy(
            float
        )
        company = records["company_country"].astype(object)
        if self.features.location is not None:
            # As encode: an employer in the given country follows a location that moved it.
            given = [None if _missing(g) else g for g in records["country"].astype(object)]
            company = pd.Series(
                [
                    c if g != c and (None if _missing(k) else k) == g else k
                    for c, g, k in zip(countries, given, company, strict=True)
                ],
                index=records.index,
                dtype=object,
            )
        matrix[:, AT["employer_abroad"]] = [
            _abroad(a, b) for a, b in zip(countries, company, strict=True)
        ]
        matrix[:, AT["remote_ratio"]] = pd.to_numeric(
            records["remote_ratio"], errors="coerce"
        ).to_numpy(float)
        matrix[:, AT["employment_type"]] = _lookup(
            records["employment_type"], tables["employment_type"]
        )
        matrix[:, AT["year"]] = pd.to_numeric(records["year"], errors="coerce").to_numpy(float)
        matrix[:, AT["source"]] = _lookup(records["source"], tables["source"])
        self._skill_columns(records["skills"].astype(object), matrix)
        matrix[:, self.word_columns] = 0.0
        word_rows = [i for i, positions in enumerate(words) for _ in positions]
        matrix[word_rows, [c for positions in words for c in positions]] = 1.0
        return matrix

    def _record_places(self, records: pd.DataFrame) -> list[Place]:
        """:meth:`job_place` of each record (each distinct input resolved once)."""
        n = len(records)
        columns = [
            records[name].astype(object).tolist() if name in records else [None] * n
            for name in ("country", "location", "state", "metro")
        ]
        keys = list(zip(*columns, strict=True))
        found = {key: self.job_place(*key) for key in dict.fromkeys(keys)}
        return [found[key] for key in keys]

    def _place_matrix(self, places: Sequence[Place], families: Sequence[str]) -> np.ndarray:
        """The place columns of many jobs, as :meth:`location_values` gives one."""
        keys = [(p.country, f, p.state, p.metro) for p, f in zip(places, families, strict=True)]
        values = {key: self.location_values(*key) for key in dict.fromkeys(keys)}
        return np.array([values[key] for key in keys], dtype=float).reshape(len(keys), -1)

    def _skill_columns(self, skills: pd.Series, matrix: np.ndarray) -> None:
        """Fill the skill count and flags as ``skill_flags`` would, row by row, in one go."""
        table = self._tables()["skill"]
        listed, rows, columns, counts = [], [], [], []
        for i, row_skills in enumerate(skills):
            if not isinstance(row_skills, list | tuple):
                continue  # no skill list: count and flags stay missing
            listed.append(i)
            counts.append(float(len(row_skills)))
            for skill in row_skills:
                index = table.get(skill)
                if index is not None:
                    rows.append(i)
                    columns.append(N_BASE + index)
        matrix[listed, AT["n_skills"]] = counts
        matrix[np.ix_(listed, range(N_BASE, N_BASE + len(self.skills)))] = 0.0
        matrix[rows, columns] = 1.0

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
            # Bundles saved before title words and location had neither (no code defaults).
            features=FeaturesConfig.model_validate({**OLD_BUNDLE_FEATURES, **data["features"]}),
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


def _lookup(series: pd.Series, table: Mapping[str, int]) -> np.ndarray:
    return series.astype(object).map(lambda v: table.get(v, math.nan)).to_numpy(float)
