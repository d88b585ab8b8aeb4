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

from salarymodel.data.dataset import load_training_data
from salarymodel.data.role_family import with_role_family
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
        if "Maimai" in caption:  # the China section: a published report, not our records
            assert "Maimai 2023 AIGC talent report, Feb 2022 - Feb 2023" in caption, caption
            continue
        assert re.search(r"n=\d[\d,]*", caption), caption
        assert re.search(r"20\d\d", caption), caption
        assert "survey" in caption or "postings" in caption, caption


def test_china_section_shows_the_reports_figures_cited(page) -> None:
    """Role pay in 万元, CNY and USD, the four cities, the statements and what is not shown."""
    china = page[page.index('<h2 id="china">') :]
    assert "Our model has no Chinese records of its own: 4 of 54,589" in china
    for role, pay, cny in [("computer vision (image recognition)", "110.6", "¥1,106,000"),
                           ("AI product manager", "90.3", "¥903,000")]:  # fmt: skip
        row = re.search(rf"<td>{re.escape(role)}</td>.*?</tr>", china, flags=re.S)
        assert row and f"<td>{pay}</td>" in row.group(0) and cny in row.group(0), role
    # Highest pay first, as the report ranks them.
    assert china.index("computer vision") < china.index("algorithm researcher")
    assert china.index("algorithm researcher") < china.index("AI product manager")
    for city, share in [("Beijing", "31.42%"), ("Shanghai", "17.93%"), ("Shenzhen", "11.44%"),
                        ("Hangzhou", "8.06%")]:  # fmt: skip
        assert re.search(rf"<td>{city}</td>\s*<td>[^<]+</td>\s*<td>{share}</td>", china), city
    assert "aigc.cn/24208.html" in china and "6.7754 CNY per USD" in china
    assert "Not transcribed" in china and "education shares" in china


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


def test_country_medians_are_also_in_each_countrys_own_money(sample, settings, page) -> None:
    from salarymodel.core.currency import exchange_rates
    from salarymodel.core.money_format import format_money
    from salarymodel.data.geography import country_name
    from salarymodel.report.statistics import country_medians
    from salarymodel.report.text import source_label

    year = int(sample["year"].max())
    medians = country_medians(sample, settings.report.top_countries, settings.report.min_group_size)
    table = next(t for t in tables_of(page) if t[0][:3] == ["source", "country", "n"])
    local = table[0].index(f"median in local money ({year} rate)")
    shown = {(cells[0], cells[1]): cells[local] for cells in table[1:]}
    rates = exchange_rates()
    checked = set()
    for source, country, median in zip(medians["source"], medians["country"], medians["median"],
                                       strict=True):  # fmt: skip
        currency = rates.by_country[country]
        currency = currency if currency in rates.supported else "USD"
        amount = median * rates.rate(currency, year).per_usd
        cell = shown[(source_label(source), country_name(country))]
        assert cell == format_money(amount, currency, rates.locales[country]), (country, cell)
        checked.add(country)
    assert {"US", "DE"} <= checked  # dollars the US way, euros the German way (1.234 €)
    assert shown and all("€" in v for (_, c), v in shown.items() if c == "Germany")


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


MARKUP = "<script>alert('x')</script>"


@pytest.fixture(scope="module")
def decorated(sample, settings, tmp_path_factory) -> tuple[Path, Path, str]:
    """One report built with everything the model section can be given (premiums, a
    plot and a missing one, the accuracy) from a sample whose skill lists all end with
    markup: (output folder, the plot, the page). Two tests below read it."""
    premiums = pd.DataFrame(
        {
            "concept": ["skill", "skill", "experience_level", "country"],
            "value": ["python", "excel", "SE", "US"],
            "mean_premium_pct": [7.3, -4.2, 18.5, 35.0],
            "dollars_at_median": [9100.0, -5200.0, 23000.0, 43700.0],
            "count": [1500, 900, 20000, 12],
        }
    )
    root = tmp_path_factory.mktemp("decorated")
    figure = Figure(figsize=(3, 2))
    figure.subplots().bar(["a", "b"], [1, 2])
    plot = root / "shap_premiums.png"
    figure.savefig(plot)
    out = root / "out"
    # Skills are read verbatim from the postings file: a page must not run them.
    listed = sample["skills"].map(lambda s: isinstance(s, list) and len(s) > 0)
    tainted = sample.assign(
        skills=[[*s, MARKUP] if has else s for s, has in zip(sample["skills"], listed, strict=True)]
    )
    built = build_report(tainted, settings, out, premiums, [plot, root / "gone.png"], ACCURACY)
    return out, plot, built.read_text(encoding="utf-8")


def test_premiums_plots_and_accuracy_appear(decorated) -> None:
    out, plot, page = decorated
    headline = re.search(r'<p class="headline">(.*?)</p>', page, flags=re.S)
    assert headline and html.unescape(headline[1]) == accuracy_sentence(ACCURACY)
    assert row(page, "model premium", "python")["model premium"] == "+7.3%"
    assert row(page, "model premium", "excel")["model premium"] == "-4.2%"
    # The US row has 12 records: under the group minimum, counted, not shown.
    assert "United States" not in page.split("Premiums (SHAP)")[1].split("<figure")[0]
    assert "1 more group with fewer than 30 records is not shown" in page
    assert row(page, "dollars at median", "senior (SE)")["premium"] == "+18.5%"
    assert base64.b64encode(plot.read_bytes()).decode() in page
    assert (out / "model_shap_premiums.png").read_bytes() == plot.read_bytes()
    assert "A chart of the model's explanations" in html.unescape(page)  # words, not a file name
    assert "Plot not found: gone.png" in page


def test_one_source_only_still_builds(sample, settings, tmp_path) -> None:
    survey = sample[sample["source"] == "aijobs"]
    page = build_report(survey, settings, tmp_path).read_text(encoding="utf-8")
    for title in SECTION_TITLES:
        assert f">{title}</h2>" in page
    assert "job postings (advertised pay)" not in page.split("Skills</h2>")[0]
    assert "Of 0 postings, 0 list at least one skill" in page


# ----- templates ---------------------------------------------------------------
def test_a_skill_with_markup_is_shown_as_text(decorated) -> None:
    # Every listed skill set ends with MARKUP (see `decorated`): shown, never run.
    page = decorated[2]
    assert "<script" not in page
    assert "&lt;script&gt;" in page
    assert row(page, "share asking", MARKUP)["share asking"] == "100.0%"


def test_a_template_given_too_little_fails_instead_of_printing_blanks() -> None:
    from jinja2 import UndefinedError

    from salarymodel.report.render import render

    with pytest.raises(UndefinedError, match="report"):
        render("drift.html")


# ----- the model section on a real explanation ---------------------------------
SMALL_SAMPLE = 1000  # records explained with SHAP for these tests
CODE = re.compile(r"^[A-Z]{2}$")


@pytest.fixture(scope="module")
def explained(sample, settings, tmp_path_factory) -> tuple[Path, pd.DataFrame, str]:
    """A model fitted on the real sample, explained, then the report built from its files."""
    from salarymodel.cli.scoring import explanation_outputs
    from salarymodel.core.explanations import Explainer
    from salarymodel.core.features import FeatureBuilder
    from salarymodel.core.model import SalaryModel
    from salarymodel.report.explanation_plots import write_global_explanations

    builder = FeatureBuilder.fit(sample, settings.features)
    model = SalaryModel.fit(sample, builder, settings.model, country_levels=settings.country_levels)
    root = tmp_path_factory.mktemp("explained")
    write_global_explanations(
        Explainer.from_model(model),
        sample,
        root / "explanations",
        SMALL_SAMPLE,
        settings.explanations.min_count,
    )
    out = root / "report"
    premiums, plots = explanation_outputs(out)  # read back as `salarymodel report` does
    page = build_report(sample, settings, out, premiums, plots, ACCURACY).read_text("utf-8")
    start = page.index("What the model says</h2>")
    # the model section only: the China section (Maimai's published figures) follows it
    end = page.find("<h2", start + 1)
    return out, premiums, page[start : end if end != -1 else len(page)]


def _premium_rows(section: str) -> list[dict[str, str]]:
    (table,) = [t for t in tables_of(section) if "dollars at median" in t[0]]
    return [dict(zip(table[0], cells, strict=True)) for cells in table[1:]]


@pytest.mark.slow
def test_model_section_shows_only_groups_with_enough_records(explained, settings) -> None:
    _, premiums, section = explained
    min_n = settings.report.min_group_size
    rows = _premium_rows(section)
    counts = [int(r["records in the sample"].replace(",", "")) for r in rows]
    assert rows and min(counts) >= min_n
    # Every group of the explanation is either shown or counted in the one line.
    from salarymodel.report.premiums import tidy

    groups = tidy(premiums)
    small = int((groups["count"] < min_n).sum())
    assert small > 0  # the real table has small groups: the rule says no to some
    assert len(rows) + small == len(groups)
    assert f"{small:,} more groups with fewer than {min_n} records are not shown" in section


@pytest.mark.slow
def test_model_section_states_the_sample_and_has_no_nan(explained) -> None:
    _, _, section = explained
    text = html.unescape(re.sub(r"<[^>]+>", " ", section))
    assert f"random sample of {SMALL_SAMPLE:,} training records" in text
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", section, flags=re.S)
    assert len(captions) >= 8
    for caption in captions:
        assert f"random sample of {SMALL_SAMPLE:,} training records" in caption
    assert not re.search(r"\bnan\b", text, flags=re.I)
    values = [r["value"] for r in _premium_rows(section)]
    assert "missing" not in values
    for concept in {r["concept"] for r in _premium_rows(section)}:
        stated = [r["value"] for r in _premium_rows(section) if r["concept"] == concept]
        assert stated.count("not stated") <= 1, concept


@pytest.mark.slow
def test_model_captions_are_words_and_countries_are_names(explained) -> None:
    _, _, section = explained
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", section, flags=re.S)
    for caption in captions:
        assert not re.search(r"\.(png|csv|json)\b", caption), caption
        assert not re.search(r"\b[a-z]+_[a-z_]+\b", caption), caption
    assert "What each country adds to the estimate, in dollars" in "".join(captions)
    countries = [r["value"] for r in _premium_rows(section) if r["concept"] == "country"]
    assert "United States" in countries
    assert not [c for c in countries if CODE.match(c)], countries


def _hues(png: Path) -> int:
    """Distinct hues (36 bins of 10 degrees) among the clearly coloured pixels of a PNG."""
    import matplotlib.colors
    import matplotlib.image

    rgb = matplotlib.image.imread(png)[..., :3]
    hsv = matplotlib.colors.rgb_to_hsv(rgb.reshape(-1, 3))
    coloured = hsv[(hsv[:, 1] > 0.4) & (hsv[:, 2] > 0.3)]
    bins = np.bincount((coloured[:, 0] * 36).astype(int) % 36, minlength=36)
    return int((bins > 20).sum())  # a bin counts with more than a few stray pixels


@pytest.mark.slow
def test_the_beeswarm_is_coloured_by_value(explained, sample, settings, tmp_path) -> None:
    from salarymodel.report.explanation_plots import beeswarm

    out, _, _ = explained
    assert _hues(out / "model_shap_beeswarm.png") >= 6  # shap's blue-to-red value scale
    # Without the values it is one colour: the measure says no to that.
    grouped = np.random.default_rng(0).normal(0, 0.1, (300, 4))
    plain = beeswarm(grouped, ["a", "b", "c", "d"], tmp_path / "plain.png")
    assert _hues(plain) <= 2


def test_premium_table_refuses_a_small_group(settings) -> None:
    from salarymodel.report import tables
    from salarymodel.report.statistics import premium_table

    small = pd.DataFrame(
        {"concept": ["country"], "value": ["US"], "mean_premium_pct": [5.0],
         "dollars_at_median": [6000.0], "count": [settings.report.min_group_size - 1]}
    )  # fmt: skip
    with pytest.raises(ValueError, match="fewer than"):
        tables.premiums_shown(premium_table(small, settings.report.min_group_size), 30)


def test_missing_and_nan_are_one_not_stated_group() -> None:
    from salarymodel.report.premiums import tidy

    table = pd.DataFrame(
        {"concept": ["country"] * 3, "value": ["missing", np.nan, "US"],
         "mean_premium_pct": [10.0, 40.0, 5.0], "dollars_at_median": [100.0, 400.0, 50.0],
         "count": [30, 10, 50]}
    )  # fmt: skip
    merged = tidy(table)
    assert list(merged["value"]) == ["not stated", "US"]
    assert merged["count"].tolist() == [40, 50]
    assert merged["mean_premium_pct"].iloc[0] == pytest.approx((10 * 30 + 40 * 10) / 40)


def test_css_keeps_images_and_tables_inside_a_phone(page) -> None:
    css = page[page.index("<style") : page.index("</style>")]
    assert re.search(r"(^|\}|\s)img\{[^}]*max-width:100%", css)
    assert re.search(r"\.table-wrap\{[^}]*overflow-x:auto", css)
    assert page.count("<table>") == page.count('<div class="table-wrap">\n<table>') > 0


@pytest.mark.slow
def test_the_report_does_not_scroll_sideways_on_a_phone(explained, tmp_path) -> None:
    import shutil

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver is None:
        pytest.skip("no Chromium/chromedriver on this machine to measure the page width")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium (dev extra) missing")
    from selenium.webdriver.chrome.service import Service

    out, _, _ = explained
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", f"--user-data-dir={tmp_path / 'profile'}",
                 "--host-resolver-rules=MAP * ~NOTFOUND"):  # fmt: skip
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(driver), options=options)
    try:
        # Emulated like a phone: 390 CSS px wide, the page's own viewport meta applies.
        browser.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True},
        )
        browser.get((out / "report.html").as_uri())
        width = browser.execute_script("return document.documentElement.scrollWidth")
        client = browser.execute_script("return document.documentElement.clientWidth")
    finally:
        browser.quit()
    assert client == 390
    assert width <= 390, f"the report is {width} px wide at 390 px"
