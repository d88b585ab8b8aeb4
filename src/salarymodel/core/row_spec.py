"""The row layout, stated once: base columns with their kinds, then skill, word and place blocks.

``BASE`` names each base column, its kind (category, ordinal, number, flag,
count) and, for a column read straight from the job's field, the vocabulary
that codes it; ``RowLayout`` places the blocks that follow for one model's
vocabularies. Every encoder (``core.encoding.RowEncoder``) and every reader of
the matrix (explanations, drift, country levels) takes positions from here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

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
# Time within the year (features.time_within_year), before the place columns:
# year x 4 + quarters into the year (the middle of the record's quarter), for
# sources whose records state a month (the postings); missing for the others.
QUARTER_TIME_COLUMN = "quarter_time"

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
    "month",  # a record's month (features.time_within_year); a person states none
    *(column.name for column in DIRECT_COLUMNS),
)


@dataclass(frozen=True)
class RowLayout:
    """Where each block sits in one model's row: base, skill flags, title words, time, place."""

    skills: Sequence[str]
    words: Sequence[str]
    place: Sequence[str]  # STATE_COLUMN and/or AREA_WAGE_COLUMN, as configured
    time: Sequence[str] = ()  # QUARTER_TIME_COLUMN, as configured

    @property
    def columns(self) -> list[str]:
        """Every column's name, in matrix order."""
        skills = [SKILL_PREFIX + s for s in self.skills]
        words = [WORD_PREFIX + w for w in self.words]
        return [*BASE_COLUMNS, *skills, *words, *self.time, *self.place]

    @property
    def width(self) -> int:
        """The number of columns."""
        return N_BASE + len(self.skills) + len(self.words) + len(self.time) + len(self.place)

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
    def time_block(self) -> slice:
        """Where the time column sits (empty without one)."""
        start = self.word_block.stop
        return slice(start, start + len(self.time))

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
