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
import re
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from salarymodel import geography
from salarymodel.config import FeaturesConfig
from salarymodel.titles import OTHER_FAMILY, TitleRules, title_rules
from salarymodel.vocabulary import (
    COMPANY_SIZE_ORDER,
    EMPLOYMENT_TYPES,
    EXPERIENCE_ORDER,
    rare_country_warning,
    unknown_country_warning,
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


def _missing(value: object) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return True
    # pandas' NA can only reach us from a frame, so pandas is loaded then.
    pandas = sys.modules.get("pandas")
    return pandas is not None and value is pandas.NA


def normalise_skill(name: str, aliases: Mapping[str, str]) -> str:
    """Lower-case, trim and alias-fold one skill name ("PowerBI" -> "power bi")."""
    key = re.sub(r"\s+", " ", name.strip().lower())
    return aliases.get(key, key)


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
        return cls(
            features=features,
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
    def columns(self) -> list[str]:
        skills = [SKILL_PREFIX + s for s in self.skills]
        return BASE_COLUMNS + skills + [WORD_PREFIX + w for w in self.title_words]

    @property
    def skill_columns(self) -> slice:
        """Where the skill flags sit in a matrix row."""
        return slice(N_BASE, N_BASE + len(self.skills))

    @property
    def word_columns(self) -> slice:
        """Where the title-word flags sit in a matrix row."""
        return slice(N_BASE + len(self.skills), len(self.columns))

    @property
    def categorical_indices(self) -> list[int]:
        return [BASE_COLUMNS.index(c) for c in CATEGORICAL_COLUMNS]

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
        country, country_code, region_code, found = self.place(job.get("country"))
        warnings += found
        company, _ = resolve_country(job.get("company_country"))
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
        return EncodedJob(row, warnings, country)

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
        places: dict[object, tuple[str | None, float, float, list[str]]] = {}
        companies: dict[object, str | None] = {}
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
            if country not in places:
                places[country] = self.place(country)
            iso2, country_code, region_code, found = places[country]
            notes += found
            iso2s[i] = iso2
            company = job.get("company_country")
            if company not in companies:
                companies[company] = resolve_country(company)[0]
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
                code = None if _missing(source) else tables["source"].get(str(source))
                bad = code is None and not _missing(source)
                sources[source] = (
                    math.nan if code is None else float(code),
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
        codes = {c: self.country_code(c)[:2] for c in countries.dropna().unique()}
        matrix[:, AT["country"]] = countries.map(lambda c: codes.get(c, (math.nan,))[0]).to_numpy(
            float
        )
        matrix[:, AT["region"]] = countries.map(lambda c: codes.get(c, (0, math.nan))[1]).to_numpy(
            float
        )
        company = records["company_country"].astype(object)
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
