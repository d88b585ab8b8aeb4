"""The market insights report: built on a real sample, checked against direct pandas."""

from __future__ import annotations

import base64
import html
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from salarymodel.dataset import load_training_data
from salarymodel.evaluation import with_role_family
from salarymodel.report.build import build_report
from salarymodel.report.statistics import group_stats, salary_levels, skill_demand
from salarymodel.report.text import SECTION_TITLES, accuracy_sentence

SUBSECTIONS = (
    "Salary by role family",
    "Salary by experience level",
    "Salary by company size",
    "Medians by year",
    "Top countries by number of records",
    "Top countries by median salary",
    "The US against the rest of the world",
    "Share of remote, hybrid and on-site by year",
    "Pay gap between work models",
    "Full-time against contract",
    "Demand: which skills postings ask for",
    "Pay: with against without each skill",
    "Skill groups",
    "Accuracy on held-out data",
    "Premiums (SHAP)",
)


class _Tables(HTMLParser):
    """Every <table> of a page as a list of rows of cell texts (header row included)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[-1].append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def tables_of(page: str) -> list[list[list[str]]]:
    parser = _Tables()
    parser.feed(page)
    return parser.tables


def row(page: str, header: str, first_cell: str, *, where: str | None = None) -> dict[str, str]:
    """The row whose first cell is ``first_cell`` in the table that has column ``header``.

    ``where`` narrows to rows that also contain that cell text (e.g. a source).
    """
    found = []
    for table in tables_of(page):
        head = table[0]
        if header not in head:
            continue
        for cells in table[1:]:
            if first_cell in cells[:2] and (where is None or where in cells):
                found.append(dict(zip(head, cells, strict=True)))
    assert len(found) == 1, f"{len(found)} rows for {first_cell!r} in a table with {header!r}"
    return found[0]


def usd(value: float) -> str:
    return f"${value:,.0f}"


@pytest.fixture(scope="module")
def sample(settings, sources) -> pd.DataFrame:
    return load_training_data(settings, sources, sample=3000, seed=3).records


@pytest.fixture(scope="module")
def built(sample, settings, tmp_path_factory) -> tuple[Path, str]:
    path = build_report(sample, settings, tmp_path_factory.mktemp("report"))
    return path, path.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def page(built) -> str:
    return built[1]


def postings_listing_skills(sample: pd.DataFrame) -> pd.DataFrame:
    posts = sample[sample["source"] == "postings"]
    return posts[posts["skills"].map(lambda s: isinstance(s, list) and len(s) > 0)]


# ----- structure --------------------------------------------------------------
def test_report_has_every_section(built) -> None:
    path, page = built
    assert path.name == "report.html"
    for title in SECTION_TITLES:
        assert re.search(rf"<h2[^>]*>{re.escape(title)}</h2>", page), title
    for title in SUBSECTIONS:
        assert re.search(rf"<h3[^>]*>{re.escape(title)}</h3>", page), title


def test_every_figure_is_saved_and_embedded_and_nothing_is_fetched(built) -> None:
    path, page = built
    pngs = sorted(path.parent.glob("*.png"))
    assert len(pngs) >= 12
    for png in pngs:
        data = png.read_bytes()
        assert data.startswith(b"\x89PNG"), png.name
        assert "data:image/png;base64," + base64.b64encode(data).decode() in page, png.name
    assert page.count("data:image/png;base64,") == len(pngs)
    # Self-contained: no external scripts, styles or images.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "<script" not in page


def test_every_figure_caption_names_source_count_and_period(page) -> None:
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", page, flags=re.S)
    assert len(captions) >= 12
    for caption in captions:
        assert re.search(r"n=\d[\d,]*", caption), caption
        assert re.search(r"20\d\d", caption), caption
        assert "survey" in caption or "postings" in caption, caption


# ----- numbers against direct pandas -----------------------------------------
def test_role_family_medians_match_pandas(sample, settings, page) -> None:
    survey = with_role_family(sample[sample["source"] == "aijobs"], settings)
    family = survey["role_family"].value_counts().index[0]
    salaries = survey.loc[survey["role_family"] == family, "salary_usd"]
    assert len(salaries) >= settings.report.min_group_size

    stats = salary_levels(with_role_family(sample, settings), "role_family", 30)
    got = stats[(stats["source"] == "aijobs") & (stats["role_family"] == family)].iloc[0]
    assert got["n"] == len(salaries)
    assert got["median"] == salaries.median()
    assert got["q1"] == salaries.quantile(0.25)
    assert got["q3"] == salaries.quantile(0.75)

    shown = row(page, "Survey median", family.replace("_", " "))
    assert shown["Survey n"] == f"{len(salaries):,}"
    assert shown["Survey median"] == usd(salaries.median())


def test_experience_medians_per_source_are_not_pooled(sample, page) -> None:
    for source, column in (("aijobs", "Survey median"), ("postings", "Postings median")):
        salaries = sample.loc[
            (sample["source"] == source) & (sample["experience_level"] == "SE"), "salary_usd"
        ]
        assert row(page, column, "senior (SE)")[column] == usd(salaries.median())
    pooled = sample.loc[sample["experience_level"] == "SE", "salary_usd"].median()
    assert usd(pooled) not in row(page, "Survey median", "senior (SE)").values()


def test_median_by_year_and_level_matches_pandas(sample, page) -> None:
    survey = sample[(sample["source"] == "aijobs") & (sample["year"] == 2024)]
    senior = survey.loc[survey["experience_level"] == "SE", "salary_usd"]
    shown = row(page, "senior (SE)", "2024")
    assert shown["senior (SE)"] == f"{usd(senior.median())} (n={len(senior):,})"
    assert shown["all levels"] == f"{usd(survey['salary_usd'].median())} (n={len(survey):,})"


def test_us_against_rest_matches_pandas(sample, page) -> None:
    survey = sample[(sample["source"] == "aijobs") & sample["country"].notna()]
    us = survey.loc[survey["country"] == "US", "salary_usd"]
    rest = survey.loc[survey["country"] != "US", "salary_usd"]
    shown = row(page, "US premium", "all levels", where="aijobs.net survey (reported pay)")
    assert shown["US median"] == usd(us.median())
    assert shown["rest median"] == usd(rest.median())
    assert shown["US n"] == f"{len(us):,}" and shown["rest n"] == f"{len(rest):,}"
    assert shown["US premium"] == f"{(us.median() / rest.median() - 1) * 100:+.0f}%"


def test_work_model_shares_match_pandas(sample, page) -> None:
    survey = sample[(sample["source"] == "aijobs") & (sample["year"] == 2024)]
    shares = survey["remote_ratio"].value_counts(normalize=True) * 100
    shown = row(page, "hybrid", "2024")
    assert shown["remote"] == f"{shares.get(100.0, 0):.1f}%"
    assert shown["on-site"] == f"{shares.get(0.0, 0):.1f}%"
    # Postings only flag remote jobs: hybrid is unknown there, not 0%.
    assert row(page, "hybrid", "2023", where="job postings (advertised pay)")["hybrid"] == (
        "not recorded"
    )


def test_skill_demand_and_pay_match_pandas(sample, page) -> None:
    posts = postings_listing_skills(sample)
    asks = posts["skills"].map(lambda s: "python" in s)
    share = asks.mean() * 100

    demand = skill_demand(sample, 30).set_index("skill")
    assert demand.at["python", "n_postings"] == asks.sum()
    assert demand.at["python", "share"] == pytest.approx(share)
    assert list(demand["share"]) == sorted(demand["share"], reverse=True)

    shown = row(page, "share asking", "python")
    assert shown["share asking"] == f"{share:.1f}%"
    assert shown["n with"] == f"{asks.sum():,}"
    assert shown["median with"] == usd(posts.loc[asks, "salary_usd"].median())
    assert shown["median without"] == usd(posts.loc[~asks, "salary_usd"].median())


def test_skill_group_share_matches_pandas(sample, settings, page) -> None:
    posts = postings_listing_skills(sample)
    members = set(settings.report.skill_groups["cloud"])
    asks = posts["skills"].map(lambda s: bool(members & set(s)))
    shown = row(page, "postings asking for any", "cloud")
    assert shown["postings asking for any"] == f"{asks.sum():,}"
    assert shown["share"] == f"{asks.mean() * 100:.1f}%"


# ----- suppression -------------------------------------------------------------
def test_group_stats_suppresses_small_groups() -> None:
    records = pd.DataFrame(
        {
            "source": ["aijobs"] * 7,
            "level": ["a"] * 3 + ["b"] * 4,
            "salary_usd": [1.0, 2.0, 3.0, 10.0, 20.0, 30.0, 40.0],
        }
    )
    stats = group_stats(records, ["source", "level"], min_n=4).set_index("level")
    assert stats.at["a", "suppressed"] and stats.at["a", "n"] == 3
    assert np.isnan(stats.at["a", "median"]) and np.isnan(stats.at["a", "q1"])
    assert not stats.at["b", "suppressed"] and stats.at["b", "median"] == 25.0


def test_small_groups_are_suppressed_in_the_page(sample, settings, page) -> None:
    min_n = settings.report.min_group_size
    posts = with_role_family(sample[sample["source"] == "postings"], settings)
    counts = posts["role_family"].value_counts()
    small = counts[counts < min_n]
    assert not small.empty, "the sample should hold a small posting role family"
    family = small.index[0]
    shown = row(page, "Postings median", family.replace("_", " "))
    assert shown["Postings n"] == f"{small.iloc[0]:,}"
    assert shown["Postings median"] == "—" and shown["Postings middle 50%"] == "—"
    assert f"{family.replace('_', ' ')} in postings (n={small.iloc[0]})" in page
    assert f"fewer than {min_n} records are suppressed" in page
    # Country ranking: only countries with enough records.
    for table in tables_of(page):
        if table[0][:3] == ["source", "country", "n"]:
            assert all(int(cells[2].replace(",", "")) >= min_n for cells in table[1:])
            break
    else:
        pytest.fail("no country ranking table")


# ----- model outputs -------------------------------------------------------------
ACCURACY = {
    "model_version": "3",
    "mae_usd": 37807.0,
    "mdape": 21.7,
    "r2_log": 0.435,
    "n": 54591,
    "per_source": {
        "aijobs": {"mae_usd": 45502.0, "mdape": 25.9},
        "postings": {"mae_usd": 25473.0, "mdape": 16.5},
    },
}


def test_missing_model_outputs_say_how_to_get_them(page) -> None:
    model = page[page.index("What the model says</h2>") :]
    assert "not available" in model
    assert "<code>salarymodel train</code>" in model
    assert "<code>salarymodel explain</code>" in model
    assert "model premium" not in page


def test_accuracy_sentence_reads_plainly() -> None:
    text = accuracy_sentence(ACCURACY)
    assert "never saw" in text
    assert "typically within 22% of the real salary" in text
    assert "$37,807 on average" in text and "n=54,591" in text
    assert "within 26% ($45,502 average miss)" in text and "within 16%" in text


def test_premiums_plots_and_accuracy_appear(sample, settings, tmp_path) -> None:
    premiums = pd.DataFrame(
        {
            "concept": ["skill", "skill", "experience_level", "country"],
            "value": ["python", "excel", "SE", "US"],
            "mean_premium_pct": [7.3, -4.2, 18.5, 35.0],
            "dollars_at_median": [9100.0, -5200.0, 23000.0, 43700.0],
            "count": [1500, 900, 20000, 12],
        }
    )
    figure = Figure(figsize=(3, 2))
    figure.subplots().bar(["a", "b"], [1, 2])
    plot = tmp_path / "shap_premiums.png"
    figure.savefig(plot)
    out = tmp_path / "out"

    page = build_report(
        sample, settings, out, premiums, [plot, tmp_path / "gone.png"], ACCURACY
    ).read_text(encoding="utf-8")

    headline = re.search(r'<p class="headline">(.*?)</p>', page, flags=re.S)
    assert headline and html.unescape(headline[1]) == accuracy_sentence(ACCURACY)
    assert row(page, "model premium", "python")["model premium"] == "+7.3%"
    assert row(page, "model premium", "excel")["model premium"] == "-4.2%"
    us = row(page, "dollars at median", "United States")
    assert us["premium"] == "+35.0%" and us["flag"] == "fewer than 30 records"
    assert row(page, "dollars at median", "senior (SE)")["flag"] == ""
    assert base64.b64encode(plot.read_bytes()).decode() in page
    assert (out / "model_shap_premiums.png").read_bytes() == plot.read_bytes()
    assert "Plot not found: gone.png" in page


def test_one_source_only_still_builds(sample, settings, tmp_path) -> None:
    survey = sample[sample["source"] == "aijobs"]
    page = build_report(survey, settings, tmp_path).read_text(encoding="utf-8")
    for title in SECTION_TITLES:
        assert f">{title}</h2>" in page
    assert "job postings (advertised pay)" not in page.split("Skills</h2>")[0]
    assert "Of 0 postings, 0 list at least one skill" in page


# ----- templates ---------------------------------------------------------------
MARKUP = "<script>alert('x')</script>"


def test_a_skill_with_markup_is_shown_as_text(sample, settings, tmp_path) -> None:
    # Skills are read verbatim from the postings file: a page must not run them.
    listed = sample["skills"].map(lambda s: isinstance(s, list) and len(s) > 0)
    tainted = sample.assign(
        skills=[[*s, MARKUP] if has else s for s, has in zip(sample["skills"], listed, strict=True)]
    )
    page = build_report(tainted, settings, tmp_path).read_text(encoding="utf-8")
    assert "<script" not in page
    assert "&lt;script&gt;" in page
    assert row(page, "share asking", MARKUP)["share asking"] == "100.0%"


def test_a_template_given_too_little_fails_instead_of_printing_blanks() -> None:
    from jinja2 import UndefinedError

    from salarymodel.report.render import render

    with pytest.raises(UndefinedError, match="report"):
        render("drift.html")
