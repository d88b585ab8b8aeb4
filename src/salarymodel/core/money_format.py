"""Money in a person's own form: each country's locale, currency and way of writing it.

Amounts are written as that locale writes them (``₹12,11,028``, ``1.234 €``, ``￥1,234``).

Everything here comes from Babel (the Unicode CLDR data it ships), never from
hand lists:

- a country's **currency** is the first legal tender Babel's territory data
  gives it today (``babel.numbers.get_territory_currencies``): South Africa
  ZAR, China CNY;
- a country's **locale** is its most spoken official language (Babel's
  ``get_official_languages``, de facto ones included) in that country, the
  first such pair CLDR has a locale for (India ``hi_IN``, Germany ``de_DE``,
  Japan ``ja_JP``, China ``zh_Hans_CN``), else English in that country, else
  plain English.

:func:`country_money` is the one definition of both maps. Serving workers do
not import Babel (about 80 ms and 19 MB more per worker, measured): the map is
written once, with the exchange rates, into ``exchange_rates.json`` by
``scripts/write_exchange_rates.py`` (a test checks the file still equals what
this module derives), and the page formats with the browser's ``Intl`` under
the same locale tag, checked against :func:`format_money` by a node test.
The command line and the report import this module and format with Babel.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class CountryMoney:
    """A country's locale (CLDR identifier, ``hi_IN``) and currency (ISO 4217), if any."""

    locale: str
    currency: str | None


def _locale_exists(identifier: str) -> str | None:
    from babel import Locale, UnknownLocaleError

    try:
        return str(Locale.parse(identifier))  # "zh_CN" -> "zh_Hans_CN"
    except (UnknownLocaleError, ValueError):
        return None


@functools.lru_cache(maxsize=512)
def country_money(country: str, on: date | None = None) -> CountryMoney:
    """The locale and currency of ``country`` (ISO 3166 alpha-2), from Babel's territory
    data; currency None for a territory without a legal tender (Antarctica)."""
    from babel.languages import get_official_languages
    from babel.numbers import get_territory_currencies

    code = country.strip().upper()
    languages = get_official_languages(code, de_facto=True)
    candidates = [f"{language}_{code}" for language in languages] + [f"en_{code}", "en"]
    locale = next(found for found in map(_locale_exists, candidates) if found)
    currencies = get_territory_currencies(code, start_date=on or date.today(), tender=True)
    return CountryMoney(locale, currencies[0] if currencies else None)


def territories() -> list[str]:
    """Every country (two-letter territory) CLDR names, sorted."""
    from babel import Locale

    names = [str(t) for t in Locale("en").territories]
    return sorted(t for t in names if len(t) == 2 and t.isalpha())


def locale_tag(locale: str) -> str:
    """A CLDR identifier as a BCP 47 tag, the form ``Intl`` takes (``zh_Hans_CN`` ->
    ``zh-Hans-CN``)."""
    return locale.replace("_", "-")


def format_money(amount: float, currency: str, locale: str) -> str:
    """``amount`` of ``currency`` in whole units, as ``locale`` writes money:
    ``format_money(1211028, "INR", "hi_IN") == "₹12,11,028"``."""
    from babel.numbers import format_currency

    parsed, pattern = _whole_units_pattern(locale)
    return format_currency(round(amount), currency, format=pattern, locale=parsed,
                           currency_digits=False)  # fmt: skip


@functools.cache
def _whole_units_pattern(locale: str):  # type: ignore[no-untyped-def]
    # Once per locale: parsing it and copying its pattern took 2/3 of each call
    # (`predict` formats one amount per row; 50,000 rows spent 2 s here).
    from babel import Locale

    parsed = Locale.parse(locale)
    return parsed, _whole_units(parsed.currency_formats["standard"])


def _whole_units(pattern):  # type: ignore[no-untyped-def]
    # The locale's own currency pattern (symbol place, spacing, grouping: Indian
    # 12,11,028) with no decimals: amounts here are estimates in whole units.
    import copy

    whole = copy.copy(pattern)
    whole.frac_prec = (0, 0)
    return whole


def format_country_money(amount: float, currency: str, country: str | None) -> str:
    """``amount`` of ``currency`` as ``country``'s locale writes it (English when the
    country is not given)."""
    locale = country_money(country).locale if country else "en"
    return format_money(amount, currency, locale)


def in_local_money(usd: float, country: str, year: int) -> str:
    """Yearly ``usd`` in ``country``'s own currency at the ECB's average for ``year``
    (the nearest year's past the table), written as the country writes money
    (India: "₹27,45,000"); in US dollars, still in the country's form, when the ECB
    does not quote its currency."""
    from salarymodel.core.currency import USD, exchange_rates, from_usd_yearly

    table = exchange_rates()
    code = country.strip().upper()
    currency = table.by_country.get(code, USD)
    if currency not in table.supported:
        currency = USD
    amount = from_usd_yearly(usd, table.rate(currency, year), "year")
    return format_money(amount, currency, table.locales.get(code, "en"))
