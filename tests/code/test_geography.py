"""The one country resolver: spellings people type, the shipped table, lean imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from helpers.country_spellings import COUNTRY_SPELLINGS

import salarymodel
from salarymodel.core.encoding import resolve_country
from salarymodel.data import geography
from salarymodel.data.derivations import RULES, RowError, RuleContext, location_country
from salarymodel.data.geography import country_name, load_table, region, to_iso2

ROOT = Path(__file__).resolve().parents[2]


UNKNOWN = [
    "Atlantis",
    "XX",
    "ZZZ",
    "Bundesrepublik Wakanda",
    "...",
    "Dominica or Dominican Republic",  # no fuzzy matching: neither is guessed
    "CA (+1 other)",  # a code after a count: California as often as Canada
    "Abu Dhabi - Atlantis",  # the part after " - " is no country either
]

# Texts only the written rules (not an exact name, code or alias) resolve: the
# first five as the shipped data writes them, the rest as ISO and UN lists do.
RULE_READINGS = {
    "Indonesia   (+16 others)": "ID",
    "Switzerland (+1 other)": "CH",
    "United States  (+1 other)": "US",
    "Dubai - United Arab Emirates": "AE",
    "Abu Dhabi - United Arab Emirates": "AE",
    "Congo, Democratic Republic of the": "CD",
    "Korea, Republic of": "KR",
    "Bahamas, The": "BS",
    "Virgin Islands, U.S.": "VI",
    "China excluding Hong Kong": "CN",
}


@pytest.mark.parametrize(("text", "code"), COUNTRY_SPELLINGS.items())
def test_common_spellings_resolve_to_iso2(text: str, code: str) -> None:
    assert to_iso2(text) == code


@pytest.mark.parametrize(("text", "code"), RULE_READINGS.items())
def test_counts_city_prefixes_and_inverted_names_are_read_by_rule(text: str, code: str) -> None:
    assert to_iso2(text) == code
    assert geography._table().exact.get(geography.normalise(text)) is None  # not by a key


def test_every_country_label_in_the_shipped_data_resolves(
    aijobs_raw: pd.DataFrame, postings_raw: pd.DataFrame
) -> None:
    labels = {
        *aijobs_raw["employee_residence"].dropna(),
        *aijobs_raw["company_location"].dropna(),
        *postings_raw["job_country"].dropna(),
    }
    assert {label for label in labels if to_iso2(str(label)) is None} == set()
    places = set(postings_raw["job_location"].dropna())
    # "USVI" has no alias: those postings' country field says VI.
    assert {p for p in places if location_country(p) is None} <= {"Anywhere", "St Thomas, USVI"}


@pytest.mark.parametrize("text", UNKNOWN)
def test_unknown_countries_and_codes_resolve_to_nothing(text: str) -> None:
    assert to_iso2(text) is None


def test_adapters_and_serving_resolve_every_spelling_alike(settings) -> None:
    texts = [*COUNTRY_SPELLINGS, *UNKNOWN]
    adapted = RULES["country_to_iso2"]([pd.Series(texts, dtype=object)], RuleContext(settings))
    for text, by_adapter in zip(texts, adapted, strict=True):
        by_service, warning = resolve_country(text)
        if isinstance(by_adapter, RowError):
            assert by_service is None and text.strip() in warning, text
            assert text.strip() in by_adapter.message
        else:
            assert by_service == by_adapter == COUNTRY_SPELLINGS[text], text
            assert warning is None


def test_an_unknown_country_or_code_warns_naming_it() -> None:
    for text in ("Atlantis", "XX"):
        code, warning = resolve_country(text)
        assert code is None
        assert f"country {text!r} not recognised" in warning


def test_regions_and_names_of_codes() -> None:
    assert region("US") == "Northern America"
    assert region("DE") == "Western Europe"
    assert region("NA") == "Southern Africa"
    assert region("XX") is None
    assert country_name("GB") == "United Kingdom"
    assert country_name("XX") == "XX"


def test_every_country_has_a_region_and_each_key_one_country() -> None:
    table = load_table()
    assert len(table.countries) >= 249
    assert all(country.region for country in table.countries.values())
    assert table.exact["uk"] == "GB" and table.exact["na"] == "NA"


def test_the_table_holds_codes_names_regions_and_aliases_only() -> None:
    # country_converter's matching regexes are its own expression (GPL-3.0):
    # they must not be shipped, nor read by the script.
    data = json.loads(geography.TABLE_FILE.read_text(encoding="utf-8"))
    assert set(data) == {"about", "countries", "code_aliases", "aliases"}
    fields = {"name", "official", "iso3", "numeric", "region"}
    assert all(set(row) == fields for row in data["countries"].values())
    assert "No country_converter expression" in data["about"]


def test_a_table_giving_one_spelling_two_countries_is_refused(tmp_path: Path) -> None:
    data = json.loads(geography.TABLE_FILE.read_text(encoding="utf-8"))
    data["aliases"]["Austria"] = "DE"  # Austria is AT by name
    broken = tmp_path / "countries.json"
    broken.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ValueError, match="'Austria' is both AT and DE"):
        load_table(broken)


def test_the_shipped_table_is_what_the_script_writes() -> None:
    pytest.importorskip("country_converter")  # a dev dependency
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "write_country_table.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_serving_imports_and_lookups_never_load_country_converter() -> None:
    code = (
        "import sys, salarymodel.core.features as f\n"
        # A code, a name found exactly and one only a written rule finds.
        "print([f.resolve_country(t)[0] for t in ('GB', 'Deutschland', 'Korea, Republic of')])\n"
        "print(sorted(m for m in sys.modules if m.startswith('country_converter')))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(salarymodel.__file__).parents[1])}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert done.stdout.splitlines() == ["['GB', 'DE', 'KR']", "[]"]
