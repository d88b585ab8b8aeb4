"""Title normalisation into role family, seniority and core title."""

from __future__ import annotations

import pytest

from salarymodel.data import titles as titles_module
from salarymodel.data.titles import TitleRules, title_rules


@pytest.fixture(scope="module")
def rules(settings):
    return title_rules(settings.features)


@pytest.mark.parametrize(
    ("title", "family"),
    [
        ("Data Scientist", "data_scientist"),
        ("Senior Data Engineer", "data_engineer"),
        ("Machine Learning Engineer", "ml_engineer"),
        ("AI Engineer", "ml_engineer"),
        ("Research Scientist", "research_scientist"),
        ("Applied Scientist", "research_scientist"),
        ("Product Manager", "product"),
        ("Engineering Manager", "management"),
        ("Business Intelligence Analyst", "bi_analyst"),
        ("Data Analyst", "data_analyst"),
        ("Analytics Engineer", "analytics_engineer"),
        ("Software Engineer", "software_engineer"),
        ("Cloud Engineer", "cloud_devops"),
        ("Retail Sales Clerk", "other"),  # "ai" must not match inside "retail"
    ],
)
def test_role_family(rules, title: str, family: str) -> None:
    assert rules.role_family(title) == family


@pytest.mark.parametrize(
    ("title", "level"),
    [
        ("Data Science Intern", 0),
        ("Junior Data Analyst", 1),
        ("Data Engineer II", 2),
        ("Sr. Data Engineer", 3),
        ("Staff Machine Learning Engineer", 4),
        ("Head of Data", 5),
        ("Data Scientist", None),
    ],
)
def test_seniority(rules, title: str, level: int | None) -> None:
    assert rules.seniority(title) == level


def test_core_title_drops_seniority_location_and_numbering(rules) -> None:
    assert rules.core_title("Senior Data Engineer II - Austin, TX") == "data engineer"
    assert rules.core_title("Lead ML Engineer (Remote)") == "ml engineer remote"


def test_title_words_are_words_and_word_runs(rules) -> None:
    assert rules.words("Sr. Machine-Learning Engineer (NLP)") == (
        "sr",
        "machine",
        "learning",
        "engineer",
        "nlp",
        "sr machine",
        "machine learning",
        "learning engineer",
        "engineer nlp",
    )
    # A repeated word counts once; a missing title has none.
    assert rules.words("Data Data") == ("data", "data data") and rules.words(None) == ()


def test_remembered_titles_answer_as_when_first_seen_and_stay_bounded(
    settings, postings_raw, monkeypatch
) -> None:
    fresh = TitleRules.from_config(settings.features)
    titles = postings_raw["job_title"].dropna().head(400).tolist()
    first = [(fresh.role_family(t), fresh.seniority(t), fresh.core_title(t)) for t in titles]
    again = [(fresh.role_family(t), fresh.seniority(t), fresh.core_title(t)) for t in titles]
    assert first == again
    fresh._memo.clear()
    uncached = [fresh._parse(t) for t in titles]
    assert first == [(p.family, p.seniority, p.core) for p in uncached]
    # A service sees titles without end: the memo stops growing at its limit.
    monkeypatch.setattr(titles_module, "MEMO_LIMIT", 30)
    for title in titles:
        fresh.core_title(title)
    assert len(fresh._memo) == 30
    assert fresh.core_title(None) == "" and len(fresh._memo) == 30  # only text is remembered


def test_a_title_is_cleaned_once_for_its_family_core_and_seniority(settings, monkeypatch) -> None:
    fresh = TitleRules.from_config(settings.features)
    cleaned: list[object] = []
    real = titles_module.clean_title
    monkeypatch.setattr(titles_module, "clean_title", lambda t: cleaned.append(t) or real(t))
    parsed = fresh.parse("Senior Data Engineer II - Austin, TX")
    assert cleaned == ["Senior Data Engineer II - Austin, TX"]
    assert (parsed.family, parsed.core) == ("data_engineer", "data engineer")
    assert parsed.seniority == fresh.seniority("Senior Data Engineer II - Austin, TX")
    assert parsed.seniority is not None
    fresh.role_family("Senior Data Engineer II - Austin, TX")  # remembered: not cleaned again
    assert len(cleaned) == 1
