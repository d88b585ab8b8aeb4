"""Write src/salarymodel/data/countries.json, the country table the package resolves with.

Run after upgrading country_converter or editing ALIASES below:

    python scripts/write_country_table.py          # rewrite the table
    python scripts/write_country_table.py --check  # exit 1 when the table is stale

What the table holds and where each part comes from:

- ISO 3166-1 codes (alpha-2, alpha-3, numeric) and English short and official
  names of current countries, and their UN M49 sub-region: facts, read from
  the ``ISO2``, ``ISO3``, ``ISOnumeric``, ``name_short``, ``name_official`` and
  ``UNregion`` columns of country_converter's ``country_data.tsv`` (rows not
  marked obsolete, as ``CountryConverter()`` loads them by default);
- ``code_aliases``: the other two-letter codes its ISO2 cells list ("UK" for
  GB, ISO's exceptionally reserved code; "EL" for GR, the EU's);
- ``aliases``: ALIASES below, written by us.

Nothing else is taken from country_converter: its matching regexes (the
``regex`` column, its own expression, GPL-3.0) are neither copied nor read;
the package resolves by exact lookup plus written rules (see geography.py).
country_converter is a dev dependency needed here only; the package reads the
JSON.

The TSV is read with the csv module, never pandas: pandas parses Namibia's
code "NA" as a missing value.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from importlib.metadata import version
from pathlib import Path

TABLE = Path(__file__).resolve().parents[1] / "src" / "salarymodel" / "data" / "countries.json"

# The columns read from country_converter's table: facts (codes, names, UN
# regions), never its regexes.
COLUMNS = ("ISO2", "ISO3", "ISOnumeric", "name_short", "name_official", "UNregion")

# Our own spellings, written by hand from common usage (not derived from
# country_converter's regexes): English names of UK nations, endonyms people
# type into a form, short forms used in salary surveys, and English exonyms,
# former names and labels the shipped data uses. Keys are matched after the
# package's normalisation (case, accents, dots and a leading "the" ignored;
# "U.S." is "US"), so "España" also covers "Espana" and "ESPAÑA". Inverted
# ("Korea, Republic of"), "City - Country" and "(+N others)" forms need no
# alias: geography.to_iso2 rewrites them by rule.
ALIASES = {
    # United Kingdom: its nations, which people give as their country.
    "Scotland": "GB",
    "Wales": "GB",
    "Northern Ireland": "GB",
    # Short forms.
    "America": "US",
    "UAE": "AE",
    "KSA": "SA",
    "PRC": "CN",
    "Holland": "NL",
    # Endonyms.
    "Deutschland": "DE",
    "España": "ES",
    "Österreich": "AT",
    "Schweiz": "CH",
    "Suisse": "CH",
    "Svizzera": "CH",
    "Italia": "IT",
    "Brasil": "BR",
    "Nederland": "NL",
    "Belgique": "BE",
    "België": "BE",
    "Sverige": "SE",
    "Norge": "NO",
    "Danmark": "DK",
    "Suomi": "FI",
    "Polska": "PL",
    "Česko": "CZ",
    "Slovensko": "SK",
    "Magyarország": "HU",
    "România": "RO",
    "Éire": "IE",
    "Nippon": "JP",
    "Nihon": "JP",
    "Bharat": "IN",
    "Aotearoa": "NZ",
    "Hellas": "GR",
    "Hrvatska": "HR",
    # English exonyms and short forms in everyday use.
    "England": "GB",
    "Great Britain": "GB",
    "Britain": "GB",
    "Turkey": "TR",  # the short name is now Türkiye
    "Korea": "KR",  # in salary surveys, the South
    "S. Korea": "KR",
    "Republic of Ireland": "IE",
    "Viet Nam": "VN",
    "Ivory Coast": "CI",
    "Bosnia": "BA",
    "Brunei": "BN",
    "Cape Verde": "CV",
    "Slovak Republic": "SK",
    "Kyrgyz Republic": "KG",
    "Micronesia": "FM",
    "Saint Barthélemy": "BL",
    "Vatican City": "VA",
    "Holy See": "VA",
    "Macao": "MO",
    "Lao PDR": "LA",
    "US Virgin Islands": "VI",
    "Trinidad": "TT",
    "Antigua": "AG",
    "Saint Kitts": "KN",
    "Turks and Caicos": "TC",
    "Falklands": "FK",
    "Palestinian Territories": "PS",
    # The two Congos: plain "Congo" is the Republic (Brazzaville).
    "Congo": "CG",
    "Republic of Congo": "CG",
    "Congo-Brazzaville": "CG",
    "Congo (Brazzaville)": "CG",
    "Democratic Republic of Congo": "CD",
    "Dem. Rep. Congo": "CD",
    "DRC": "CD",
    "Congo-Kinshasa": "CD",
    "Congo (Kinshasa)": "CD",
    # Former names.
    "Macedonia": "MK",
    "Macedonia (FYROM)": "MK",  # as job postings label it
    "Former Yugoslav Republic of Macedonia": "MK",
    "Burma": "MM",
    "Swaziland": "SZ",
    "East Timor": "TL",
    "Zaire": "CD",
}


def source_file() -> Path:
    """country_converter's country table (the installed version)."""
    import country_converter

    return Path(country_converter.__file__).with_name("country_data.tsv")


def read_countries(path: Path) -> list[dict[str, str]]:
    """Codes, names and regions of current (not obsolete) countries in country_converter's table.

    Only the columns in COLUMNS are kept, so nothing else of its table (its
    regexes above all) can reach the JSON.
    """
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [{c: row[c] for c in COLUMNS} for row in rows if not row["obsolete"].strip()]


def build_table(rows: list[dict[str, str]], source_version: str) -> dict[str, object]:
    """The JSON document: countries keyed by ISO2, extra ISO2 codes, our aliases."""
    countries: dict[str, dict[str, str | None]] = {}
    code_aliases: dict[str, str] = {}
    for row in rows:
        # Most ISO2 cells are a code; a few are a regex of codes ("^GB$|^UK$").
        codes = re.findall(r"[A-Z]{2}", row["ISO2"])
        iso2, others = codes[0], codes[1:]
        if iso2 in countries:
            raise ValueError(f"ISO2 {iso2} appears twice in {row['name_short']!r}")
        countries[iso2] = {
            "name": row["name_short"],
            "official": row["name_official"],
            "iso3": row["ISO3"],
            "numeric": row["ISOnumeric"] or None,
            "region": row["UNregion"] or None,
        }
        code_aliases.update(dict.fromkeys(others, iso2))
    unknown = {alias: code for alias, code in ALIASES.items() if code not in countries}
    if unknown:
        raise ValueError(f"aliases point at unknown codes: {unknown}")
    return {
        "about": (
            "Generated by scripts/write_country_table.py; do not edit by hand. "
            "'countries': ISO 3166-1 codes (alpha-2, alpha-3, numeric) and English "
            "short and official names of current countries, with their UN M49 "
            "sub-region, read as facts from country_converter "
            f"{source_version}'s country_data.tsv. 'code_aliases': other two-letter "
            "codes in use (UK, ISO's exceptionally reserved code; EL, the EU's). "
            "'aliases': spellings written by the salarymodel authors. No "
            "country_converter expression (its matching regexes) is copied; names "
            "are resolved by exact lookup and salarymodel's own written rules."
        ),
        "countries": countries,
        "code_aliases": code_aliases,
        "aliases": ALIASES,
    }


def render(table: dict[str, object]) -> str:
    """JSON with one entry per line, so a regeneration diffs line by line."""

    def dump(value: object) -> str:
        return json.dumps(value, ensure_ascii=False)

    blocks = []
    for key, value in table.items():
        if isinstance(value, dict):
            entries = ",\n".join(f"    {dump(k)}: {dump(v)}" for k, v in value.items())
            blocks.append(f"  {dump(key)}: {{\n{entries}\n  }}")
        else:
            blocks.append(f"  {dump(key)}: {dump(value)}")
    return "{\n" + ",\n".join(blocks) + "\n}\n"


def current_text() -> str:
    """The table as the installed country_converter and ALIASES give it."""
    return render(build_table(read_countries(source_file()), version("country_converter")))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when the table is stale")
    args = parser.parse_args()
    text = current_text()
    if args.check:
        stale = not TABLE.exists() or TABLE.read_text(encoding="utf-8") != text
        print(f"{TABLE} is {'stale' if stale else 'current'}")
        return 1 if stale else 0
    TABLE.write_text(text, encoding="utf-8")
    print(f"wrote {TABLE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
