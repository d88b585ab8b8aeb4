"""The codes a job is described with, their order, display names and warning texts: defined once.

Validation, features, serving (schemas, the model card the web page reads),
the report and the explanation plots read these; nothing here imports more
than the standard library, so a service worker can.

The order of ``EMPLOYMENT_TYPES`` is also the employment type's category code
in a saved model: append, never reorder.
"""

from __future__ import annotations

from typing import Literal, get_args

# Each code list is written once, as the type the API's schemas and the settings
# use; the tuples the rest of the code iterates are read from it.
ExperienceLevel = Literal["EN", "MI", "SE", "EX"]  # ordered, entry to executive
CompanySize = Literal["S", "M", "L"]  # ordered, small to large
EmploymentType = Literal["FT", "PT", "CT", "FL"]
RemoteRatio = Literal[0, 50, 100]  # ordered, on-site to remote
EXPERIENCE_LEVELS: tuple[str, ...] = get_args(ExperienceLevel)
COMPANY_SIZES: tuple[str, ...] = get_args(CompanySize)
EMPLOYMENT_TYPES: tuple[str, ...] = get_args(EmploymentType)
REMOTE_RATIOS: tuple[int, ...] = get_args(RemoteRatio)
MAX_TITLE_LENGTH = 200
MAX_LOCATION_LENGTH = 120
MAX_SKILLS = 100

# Rank of each ordered code: the number the model sees.
EXPERIENCE_ORDER = {code: rank for rank, code in enumerate(EXPERIENCE_LEVELS)}
COMPANY_SIZE_ORDER = {code: rank for rank, code in enumerate(COMPANY_SIZES)}

_EN_DASH = "\u2013"
EXPERIENCE_NAMES = {"EN": "entry", "MI": "mid", "SE": "senior", "EX": "executive"}
COMPANY_SIZE_NAMES = {"S": "small (<50)", "M": f"medium (50{_EN_DASH}250)", "L": "large (>250)"}
EMPLOYMENT_NAMES = {"FT": "full-time", "PT": "part-time", "CT": "contract", "FL": "freelance"}
REMOTE_NAMES = {0: "on-site", 50: "hybrid", 100: "remote"}
# Pay periods: payments in a year (pay "per month" is a twelfth of yearly pay).
Period = Literal["year", "month"]
PERIODS: dict[str, int] = dict(zip(get_args(Period), (1, 12), strict=True))
PERIOD_NAMES = {"year": "per year", "month": "per month"}
# The row of a metrics table (and the fold, the level) that pools every other.
ALL = "all"
# The pay views (sources) this project ships; a configured source without a
# name here is shown by its code.
SOURCE_NAMES = {
    "aijobs": "aijobs.net survey (reported pay)",
    "postings": "job postings (advertised pay)",
}
SOURCE_SHORT = {"aijobs": "Survey", "postings": "Postings"}
NOT_STATED = "not stated"  # a code left out of a job
# The models training and evaluation compare, the product first: one LightGBM on
# both sources' features (the model served, the gate's), then its rivals.
ModelName = Literal[
    "fused_lightgbm", "single_source", "raw_lightgbm", "group_median", "global_median"
]
MODEL_NAMES: tuple[str, ...] = get_args(ModelName)
FUSED_MODEL, SINGLE_SOURCE_MODEL, RAW_MODEL, GROUP_MEDIAN_MODEL, GLOBAL_MEDIAN_MODEL = MODEL_NAMES


def display_labels() -> dict[str, dict[str, str]]:
    """Each field's codes (as text, in order) with their display names: what the page shows."""
    return {
        "experience_level": dict(EXPERIENCE_NAMES),
        "company_size": dict(COMPANY_SIZE_NAMES),
        "employment_type": dict(EMPLOYMENT_NAMES),
        "remote_ratio": {str(code): name for code, name in REMOTE_NAMES.items()},
        "view": dict(SOURCE_NAMES),
        "period": dict(PERIOD_NAMES),
    }


# ----- warnings: one wording for one job, a batch and the service ------------------------
def unknown_title_warning(title: object) -> str:
    """A title no role family's keyword matches."""
    return f"job title {title!r} not recognised; role family 'other'"


def unknown_skills_warning(unknown: list[str]) -> str:
    """Skills the model has no column for."""
    return f"skills not in the model's vocabulary, ignored: {unknown}"


def unknown_source_warning(source: object) -> str:
    """A pay view (source) the model was not trained on."""
    return f"source {source!r} unknown; treated as missing"


def unstated_skills_warning(source: object, stating: list[str]) -> str:
    """Skills given for a view (source) whose records never state skills: not used."""
    name = SOURCE_SHORT.get(str(source), str(source)).lower()
    views = ", ".join(stating) or "none"
    return (
        f"the {name} does not record skills; the skills given are not used in its "
        f"estimate (views that read them: {views})"
    )


def unknown_country_warning(text: str, field: str = "country") -> str:
    """A country code or name the resolver does not know (``field``: which country)."""
    return f"{field} {text!r} not recognised; treated as missing"


def unknown_location_warning(text: str) -> str:
    """A location the resolver does not know: the estimate stays at the country level."""
    return f"location {text[:80]!r} not recognised; estimated at the country level"


def location_country_warning(text: str, found: str, given: str) -> str:
    """A location in another country than the one given: the location's wins."""
    return f"location {text[:80]!r} is in {found}, not {given}; {found} used"


def rare_country_warning(iso2: str) -> str:
    """A known country with too few training records for a category of its own."""
    return f"country {iso2!r} is rare or unseen in the training data; treated as 'other'"


def thin_support_warning(support: int) -> str:
    """A job whose range rests on few similar training records."""
    # Worded to read right for 0 and 1 records too ("calibrated on such jobs"
    # read oddly when there were none).
    shared = {0: "no training records share", 1: "only 1 training record shares"}.get(
        support, f"only {support} training records share"
    )
    return (
        f"thin support: {shared} this role family, experience level and country; "
        "the range is calibrated on jobs with similarly thin support, so treat it with care"
    )


NO_RANGE_WARNING = "no calibrated range: where current_salary falls is unknown"
