"""China: the Maimai 2023 AIGC talent report's pay beside a Chinese estimate.

Our training data holds almost no Chinese records (the shipped table counts
them: 4 of 54,589, too few for China to be a country of its own in the model),
so a Chinese estimate is the model's "other country" reading. The report this
product starts from, Maimai's 《2023 AIGC人才趋势报告》 (Feb 2022 - Feb 2023),
publishes the average yearly pay of six hot AIGC roles in China. When a
Chinese job's title names one of them (``china_reference`` in the config), the
answer carries the report's figure, in CNY and in USD at the ECB's mean rate
for the report's period, labelled with its source and period, and says how
few Chinese records the model has.

The figures are read from ``maimai_aigc_2023.json`` (written, with
``data/maimai_aigc_2023.csv``, by ``scripts/write_maimai_table.py``;
provenance in data/README.md) with the json module: serving reads it without
the data folder or pandas.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from salarymodel.config.model import ChinaReferenceConfig
from salarymodel.config.settings import ConfigError
from salarymodel.data import geography
from salarymodel.data.titles import clean_title

if TYPE_CHECKING:
    from salarymodel.core.features import FeatureBuilder

TABLE_FILE = Path(__file__).with_name("maimai_aigc_2023.json")
CHINA = "CN"
TEN_THOUSAND = 10_000  # the report's unit, 万元


@lru_cache(maxsize=1)
def table() -> dict[str, Any]:
    """The shipped transcription of the report (figures, USD rate, Chinese record count)."""
    data: dict[str, Any] = json.loads(TABLE_FILE.read_text(encoding="utf-8"))
    return data


@dataclass(frozen=True)
class RoleRules:
    """Compiled title keywords per report role, in config order, and the family fallback."""

    patterns: tuple[tuple[str, re.Pattern[str]], ...]
    families: dict[str, str]

    def role(self, title: object, family: str | None) -> str | None:
        """The report role a title names (first match), else its family's; None if neither."""
        text = clean_title(title)
        for role, pattern in self.patterns:
            if pattern.search(text):
                return role
        return None if family is None else self.families.get(family)


def _pattern(keywords: list[str]) -> re.Pattern[str]:
    # Word-bounded, longest first, as the role-family rules match (titles.py).
    words = "|".join(re.escape(k.lower()) for k in sorted(keywords, key=len, reverse=True))
    return re.compile(rf"(?<![a-z0-9])(?:{words})(?![a-z0-9])")


def role_rules(config: ChinaReferenceConfig) -> RoleRules:
    """Compile ``config``; a role the report does not publish is a ConfigError."""
    known = table()["role_pay_10k_cny"]
    named = [r.role for r in config.roles] + list(config.families.values())
    unknown = sorted({r for r in named if r not in known})
    if unknown:
        raise ConfigError(
            f"china_reference: unknown report role(s) {', '.join(unknown)}; "
            f"the report publishes {', '.join(known)}"
        )
    patterns = tuple((r.role, _pattern(r.keywords)) for r in config.roles)
    return RoleRules(patterns, dict(config.families))


_RULES: dict[int, tuple[ChinaReferenceConfig, RoleRules]] = {}


def _cached_rules(config: ChinaReferenceConfig) -> RoleRules:
    # Settings are loaded once per process (config.load_settings caches them):
    # compile once per config object, not per request.
    found = _RULES.get(id(config))
    if found is None or found[0] is not config:
        found = (config, role_rules(config))
        _RULES[id(config)] = found
    return found[1]


def is_china(country: object) -> bool:
    """Whether a job's country (ISO code or a name) is China."""
    if not isinstance(country, str):
        return False
    if len(country) == 2 and country.isupper():
        # Already an ISO code (serving and the CSV path resolve countries): no lookup
        # per job of a batch.
        return country == CHINA
    return geography.to_iso2(country) == CHINA


def records_text() -> str:
    """How many Chinese records the model was trained on, as a sentence."""
    counts = table()["training_records"]
    return (
        f"Our model has no Chinese records of its own: {counts['china']:,} of "
        f"{counts['all']:,} training records are from China, too few for China to "
        "count as a country, so it is estimated as 'other'."
    )


def report_figure(role: str) -> dict[str, Any]:
    """The report's figure for ``role``: labels, CNY and USD a year, the rate and the text."""
    data = table()
    pay = data["role_pay_10k_cny"][role]
    rate = data["usd_rate"]
    cny = pay["value"] * TEN_THOUSAND
    usd = cny / rate["cny_per_usd"]
    return {
        "source": data["source"],
        "period": data["period"],
        "role": pay["en"],
        "role_zh": pay["zh"],
        "area": "China",
        "pay_cny": round(cny),
        "pay_usd": round(usd),
        "cny_per_usd": rate["cny_per_usd"],
        "rate_basis": rate["basis"],
        "text": (
            f"{data['source']} ({data['period']}): {pay['en']} ({pay['zh']}), average "
            f"¥{cny:,.0f} a year, about ${usd:,.0f} at {rate['cny_per_usd']} CNY per USD "
            f"(ECB mean of the period). {records_text()}"
        ),
    }


def market_reference(
    job: Mapping[str, object], builder: FeatureBuilder, config: ChinaReferenceConfig | None
) -> dict[str, Any] | None:
    """The report's figure for a Chinese job in one of its six roles; None otherwise."""
    if config is None or not is_china(job.get("country")):
        return None
    family = builder.job_title(job.get("job_title"), job.get("job_category")).family
    role = _cached_rules(config).role(job.get("job_title"), family)
    return None if role is None else report_figure(role)
