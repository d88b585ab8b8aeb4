"""How the report words things: names of sources and codes, number formats.

The names and order of codes are the project's (``salarymodel.vocabulary``);
the prose around them lives in the templates (``templates/``); this module
holds what Python code needs too (figures, tables and the template alike).
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from salarymodel.data.geography import country_name
from salarymodel.vocabulary import (
    ALL,
    COMPANY_SIZE_NAMES,
    EMPLOYMENT_NAMES,
    EXPERIENCE_NAMES,
    NOT_STATED,
    REMOTE_NAMES,
    REMOTE_RATIOS,
    SOURCE_NAMES,
    SOURCE_SHORT,
)

DASH, MINUS = "\u2013", "\u2212"  # typographic en dash and minus sign
# One colour per source, in the vocabulary's order of sources (survey, postings).
SOURCE_COLORS = dict(zip(SOURCE_NAMES, ("#1f6fb4", "#d9730d"), strict=True))
# Work models are the remote ratios' names, on-site to remote.
WORK_MODEL_ORDER = [REMOTE_NAMES[ratio] for ratio in REMOTE_RATIOS]
WORK_MODEL_COLORS = dict(zip(WORK_MODEL_ORDER, ("#8c8c8c", "#e3a83b", "#2a9d8f"), strict=True))
# (anchor, title) of each section, in page order.
SECTIONS = (
    ("data", "About the data"),
    ("levels", "Salary levels"),
    ("geography", "Geography"),
    ("work", "Work models"),
    ("skills", "Skills"),
    ("model", "What the model says"),
    ("china", "China: AIGC talent (Maimai 2023)"),
)
SECTION_TITLES = tuple(title for _, title in SECTIONS)


def source_label(source: str) -> str:
    """Readable name of a source, saying which kind of pay it measures."""
    return SOURCE_NAMES.get(source, source)


def source_short(source: str) -> str:
    """One word for a source ('Survey', 'Postings'), for column headers and legends."""
    return SOURCE_SHORT.get(source, source)


def level_name(level: str) -> str:
    """'senior (SE)', or 'all levels' for the overall row."""
    return "all levels" if level == ALL else f"{EXPERIENCE_NAMES.get(level, level)} ({level})"


def role_name(family: str) -> str:
    """A role family as words ('data_scientist' -> 'data scientist')."""
    return family.replace("_", " ")


def size_name(size: str) -> str:
    """A company size code with its head count ('medium (50-250)')."""
    return COMPANY_SIZE_NAMES.get(size, size)


def employment_name(code: str) -> str:
    """An employment type code as a word ('full-time')."""
    return EMPLOYMENT_NAMES.get(code, code)


def premium_value_name(concept: str, value: object) -> str:
    """A premium's value as the rest of the report names it ('senior (SE)', 'Canada')."""
    text = str(value)
    if text == NOT_STATED:
        return text
    namers: dict[str, Callable[[str], str]] = {
        "country": country_name,
        "experience_level": level_name,
        "company_size": size_name,
        "employment_type": employment_name,
        "role_family": role_name,
        "job_title": role_name,  # the explanations name the title concept by its role family
        "pay_view": source_label,
    }
    concept = concept.replace(" ", "_")  # the explanations write 'experience level'
    if concept == "remote_ratio":
        names = {str(ratio): name for ratio, name in REMOTE_NAMES.items()}
        return names.get(text.removesuffix(".0"), text)
    return namers.get(concept, str)(text)


# ----- numbers ----------------------------------------------------------------
def usd(value: float) -> str:
    """'$123,456', or an em dash for a missing (suppressed) value."""
    return "—" if pd.isna(value) else f"${value:,.0f}"


def usd_short(value: float, _pos: object = None) -> str:
    """'$120k' or '$1.2M' (an axis tick formatter: matplotlib passes the position)."""
    if value == 0:
        return "$0"
    if abs(value) >= 1_000_000:
        return f"${value / 1_000_000:.1f}M"
    return f"${value / 1000:.0f}k"


def signed_usd(value: float) -> str:
    """'+$9,100' or '-$5,200'."""
    if pd.isna(value):
        return "—"
    return ("+" if value >= 0 else "-") + usd(abs(value))


def pct(value: float, signed: bool = False, digits: int = 1) -> str:
    """'12.3%' (or '+12.3%' when ``signed``); an em dash when missing."""
    if pd.isna(value):
        return "—"
    return f"{value:+.{digits}f}%" if signed else f"{value:.{digits}f}%"


def signed_pct(value: float, digits: int = 1) -> str:
    """'+12.3%' or '-4.0%'; an em dash when missing."""
    return pct(value, signed=True, digits=digits)


def count(value: float) -> str:
    """'1,234'; an em dash when missing."""
    return "—" if pd.isna(value) else f"{int(value):,}"


def usd_range(low: float, high: float) -> str:
    """'$80,000 - $120,000' (en dash) (the middle 50%), or an em dash when suppressed."""
    return "—" if pd.isna(low) else f"{usd(low)} {DASH} {usd(high)}"


def accuracy_sentence(accuracy: dict) -> str:
    """The model's held-out accuracy in one sentence a non-specialist understands."""
    n, version = accuracy.get("n"), accuracy.get("model_version")
    mdape, mae = accuracy.get("mdape"), accuracy.get("mae_usd")
    held_out = "held-out cross-validation"
    held_out += f" of model version {version}" if version is not None else ""
    held_out += f", n={int(n):,} records" if n is not None else ""
    claims = []
    if mdape is not None:
        claims.append(f"is typically within {mdape:.0f}% of the real salary (median error)")
    if mae is not None:
        claims.append(f"misses by {usd(mae)} on average")
    text = (
        f"On job records it never saw during training ({held_out}), the model's estimate "
        + " and ".join(claims or ["has no accuracy figures"])
    )
    per_source = [
        f"{source_label(s)} within {m['mdape']:.0f}%"
        + (f" ({usd(m['mae_usd'])} average miss)" if "mae_usd" in m else "")
        for s, m in (accuracy.get("per_source") or {}).items()
        if isinstance(m, dict) and "mdape" in m
    ]
    if per_source:
        text += "; by source: " + ", ".join(per_source)
    return text + "."
