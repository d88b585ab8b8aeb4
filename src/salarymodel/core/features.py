"""The one feature builder, used by training and serving alike.

``FeatureBuilder.fit`` learns the vocabularies (countries, regions, skills, title words, and
which of them each source uses) from training records; they are stored with the model as
JSON. The row is stated once (``core.row_spec``) and filled by one encoder
(``core.encoding.RowEncoder``) for ``encode_job`` (one request, a plain dict: a one-row frame
costs ~4 ms, the booster ~25 us), ``encode_many`` and ``transform``: the same row for the
same job, bit for bit (tests/code/test_row_spec.py). pandas is imported only by the
training-side methods: a service worker never loads it. Unknown values never crash: an
unseen country or title becomes "other", an unknown skill is ignored, each is reported.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from salarymodel.config.data import OLD_BUNDLE_FEATURES, FeaturesConfig
from salarymodel.core.encoding import (
    JobTitle,
    Place,
    RowEncoder,
    is_missing,
    records_as_jobs,
    resolve_country,
    sources_stating_months,
    sources_stating_skills,
    title_words_by_source,
)
from salarymodel.core.row_spec import AREA_WAGE_COLUMN, QUARTER_TIME_COLUMN, STATE_COLUMN, RowLayout
from salarymodel.data import geography
from salarymodel.data.bls_reference import BlsWages, load_wages
from salarymodel.data.titles import OTHER_FAMILY, TitleRules, title_rules
from salarymodel.vocabulary import (
    COMPANY_SIZE_ORDER,
    EMPLOYMENT_TYPES,
    EXPERIENCE_ORDER,
    location_country_warning,
    rare_country_warning,
    unknown_location_warning,
)

if TYPE_CHECKING:
    import pandas as pd


OTHER = "other"


class EncodedJob(NamedTuple):
    """One job as the model sees it, with what encoding it found out on the way."""

    row: np.ndarray
    warnings: list[str]
    country: str | None  # ISO2, resolved once: ranges and explanations read it here
    state: str | None = None  # USPS code, US jobs whose location names one
    metro: str | None = None  # BLS metro area code


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
    # What each source's records use (other views read it as missing; None: all of it):
    skill_sources: list[str] | None = None  # the sources stating skills
    month_sources: list[str] | None = None  # the sources stating months (features.time_within_year)
    word_sources: dict[str, list[str]] | None = None  # each source's title words

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
            # No state column (frames before the place fields): all missing, by an array mask.
            given = records.get("state", records["country"].where(np.zeros(len(records), bool)))
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
            skill_sources=sources_stating_skills(records),
            month_sources=sources_stating_months(records),
            title_words=(words := _frequent_words(records["job_title"], rules, features)),
            word_sources=title_words_by_source(records, rules, words),
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
        """This model's row layout (the vocabularies' sizes, the time and place columns)."""
        time = [QUARTER_TIME_COLUMN] * self.features.time_within_year
        return RowLayout(self.skills, self.title_words, self.location_columns, time)

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

    @property
    def categorical_indices(self) -> list[int]:
        """Matrix columns LightGBM treats as categories."""
        return self.layout.categorical_indices

    def _rules(self) -> TitleRules:
        # Per builder: looking the rules up costs ~20 µs, several times a request.
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
        if not is_missing(category) and (family == OTHER_FAMILY or code is None or level is None):
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
        if is_missing(country):
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
        if not is_missing(state) or not is_missing(metro):
            return Place(
                iso2,
                None if is_missing(state) else str(state),
                None if is_missing(metro) else str(metro),
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
        return self.encode_job(job)[:2]

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
        return RowEncoder(self).encode(records_as_jobs(records))[0]

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
            "skill_sources": self.skill_sources,
            "month_sources": self.month_sources,
            "word_sources": self.word_sources,
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
            title_words=list(data.get("title_words", [])),  # none before them, nor location
            states=list(data.get("states", [])),
            bls=None if data.get("bls") is None else BlsWages.from_dict(data["bls"]),
            skill_sources=data.get("skill_sources"),  # absent before: every source
            month_sources=data.get("month_sources"),
            word_sources=data.get("word_sources"),  # absent before: every word everywhere
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
