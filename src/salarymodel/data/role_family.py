"""Each record's derived role family (baselines, groups and the report group by it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from salarymodel.data.titles import title_rules

if TYPE_CHECKING:
    import pandas as pd

    from salarymodel.config.settings import Settings


def with_role_family(records: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """Add the derived role family (the group-median baseline groups by it)."""
    rules = title_rules(settings.features)
    pairs = list(zip(records["job_title"], records["job_category"], strict=True))
    families = {}
    for title, category in dict.fromkeys(pairs):
        family = rules.role_family(title)
        if family == "other" and isinstance(category, str):
            family = rules.role_family(category)
        families[(title, category)] = family
    return records.assign(role_family=[families[p] for p in pairs])
