"""The page as a person reads it, measured in headless Chromium at 390x844 and 1280x900.

No sideways scroll for real jobs of the shipped data (the longest titles, the
most skills, a 200-character word), a range bar drawn to scale, the reasons in
the form's own words, one tab stop for the skills, WCAG AA contrast read from
the computed styles, and errors that replace the old answer where the person
looks. Same browser set-up as ``test_web`` (Debian's chromium + chromedriver).
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pandas as pd
import pytest
from helpers.browser import chromium_session, fresh_page
from helpers.served import champion_root, served_url

from salarymodel.config.settings import load_settings
from salarymodel.data.derivations import parse_skills
from salarymodel.data.reading import read_csv

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PHONE, DESKTOP = (390, 844), (1280, 900)
# The form's words for the inputs the reasons chart may show (index.html's labels).
ROW_NAMES = {"Job title", "Experience", "Company size", "Country", "Remote", "Location",
             "Employment", "Pay", "Skills", "Everything else"}  # fmt: skip
MAX_TABS_TO_ESTIMATE = 14  # 12 fields before the button (one of them the skills box)
LONG_WORD = ("MachineLearningPlatformEngineer" * 7)[:200]


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> str:
    return served_url(champion_root(tmp_path_factory), request)


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory):
    """One headless Chromium for the module (a start costs seconds of CPU)."""
    with chromium_session(tmp_path_factory.mktemp("page") / "profile") as session:
        yield session


@pytest.fixture()
def browser(chromium):
    return fresh_page(chromium)


def _viewport(browser, size: tuple[int, int]) -> None:
    """The page's viewport exactly ``size`` (a phone's, when narrow)."""
    width, height = size
    metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 500}
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)


def _wait(browser, condition, seconds: float = 30):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, seconds).until(condition)


def _open(browser, url: str, size: tuple[int, int]) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    _viewport(browser, size)
    browser.get(url + "/")
    _wait(browser, lambda b: len(Select(b.find_element(By.ID, "experience_level")).options) == 4)


def _fill(browser, job: dict) -> None:
    """Types a job into the form; skills through the page's own skill picker."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    for name in ("job_title", "country", "current_salary"):
        box = browser.find_element(By.ID, name)
        box.clear()
        if job.get(name) is not None:
            box.send_keys(str(job[name]))
    for name in ("experience_level", "company_size", "remote_ratio", "employment_type"):
        if job.get(name) is not None:
            Select(browser.find_element(By.ID, name)).select_by_value(str(job[name]))
    for skill in job.get("skills", []):
        browser.execute_script("toggleSkill(arguments[0])", skill)


def _estimate(browser) -> None:
    from selenium.webdriver.common.by import By

    browser.find_element(By.ID, "submit").click()
    _wait(
        browser,
        lambda b: b.execute_script(
            "const a = document.getElementById('answer');"
            "return !a.hidden && !a.classList.contains('stale') && !$('submit').disabled"
        ),
    )


def _widths(browser) -> dict[str, tuple[int, int]]:
    """(scrollWidth, clientWidth) of the page and of each card."""
    return browser.execute_script(
        "const d = document.documentElement;"
        "const out = {page: [d.scrollWidth, d.clientWidth]};"
        "for (const c of document.querySelectorAll('.card'))"
        " out[c.id] = [c.scrollWidth, c.clientWidth];"
        "return out;"
    )


@pytest.fixture(scope="module")
def real_jobs(url: str) -> list[dict]:
    """Ten real jobs from the shipped data: the longest posting title, the posting
    with the most skills (of the model's vocabulary), the longest survey title and
    seven drawn at random from each file."""
    settings = load_settings(ROOT / "configs" / "salarymodel.yaml")
    aliases = settings.features.skill_aliases
    vocabulary = set(httpx.get(f"{url}/model", timeout=30).json()["vocabulary"]["skills"])
    postings = read_csv(ROOT / "data" / "data_jobs_2023_annual_salary.csv.gz")
    survey = read_csv(ROOT / "data" / "aijobs_salaries_2020_2024.csv.gz")
    postings["skills"] = [
        [s for s in parse_skills(v, aliases) if s in vocabulary] for v in postings["job_skills"]
    ]

    def posting(row: pd.Series) -> dict:
        country = row["job_country"] if isinstance(row["job_country"], str) else None
        return {"job_title": row["job_title"], "country": country, "skills": row["skills"]}

    def surveyed(row: pd.Series) -> dict:
        fields = ("experience_level", "company_size", "remote_ratio", "employment_type")
        return {"job_title": row["job_title"], "country": row["employee_residence"],
                **{name: row[name] for name in fields}}  # fmt: skip

    longest = postings.loc[postings["job_title"].str.len().idxmax()]
    most_skills = postings.loc[postings["skills"].map(len).idxmax()]
    longest_survey = survey.loc[survey["job_title"].str.len().idxmax()]
    jobs = [posting(longest), posting(most_skills), surveyed(longest_survey)]
    jobs += [posting(r) for _, r in postings.sample(4, random_state=7).iterrows()]
    jobs += [surveyed(r) for _, r in survey.sample(3, random_state=7).iterrows()]
    assert len(jobs) == 10 and len(most_skills["skills"]) >= 10
    return jobs


@pytest.mark.parametrize("size", [PHONE, DESKTOP], ids=["390", "1280"])
def test_no_sideways_scroll_and_reasons_in_the_forms_words(
    browser, url: str, real_jobs: list[dict], size: tuple[int, int]
) -> None:
    from selenium.webdriver.common.by import By

    labels = httpx.get(f"{url}/model", timeout=30).json()["labels"]
    _open(browser, url, size)
    jobs = [*real_jobs, {"job_title": LONG_WORD, "country": "Germany"}]
    measured = []
    for job in jobs:
        browser.execute_script("for (const s of [...chosenSkills]) toggleSkill(s)")
        _fill(browser, job)
        _estimate(browser)
        widths = _widths(browser)
        measured.append(widths["page"])
        for where, (scroll, client) in widths.items():
            assert scroll <= client, (size, job["job_title"][:40], where, scroll, client)
        rows = [r.text for r in browser.find_elements(By.CSS_SELECTOR, "#chart .bar-label")]
        names = [r.split(":", 1)[0] for r in rows]
        assert set(names) <= ROW_NAMES, names
        # Only the person's own inputs, plus at most one line for everything else.
        assert names.count("Everything else") <= 1
        skills = sorted(r.split(": ", 1)[1] for r in rows if r.startswith("Skills:"))
        assert set(skills) <= set(job.get("skills", [])), skills
        for field, name in (("experience_level", "Experience"), ("company_size", "Company size")):
            row = next((r for r in rows if r.startswith(name + ":")), None)
            if row is not None and job.get(field):
                assert row == f"{name}: {labels[field][job[field]]}"  # "senior", never "SE"
        country = next((r for r in rows if r.startswith("Country:")), None)
        if country is not None:
            assert not re.fullmatch(r"Country: [A-Z]{2}", country), country
        percents = browser.find_elements(By.CSS_SELECTOR, "#chart .bar-percent")
        assert percents and all(p.text.endswith("% of average pay") for p in percents)
    print(f"\n{size[0]}px scrollWidth/clientWidth per job: {measured}")


def test_range_bar_is_to_scale_with_labels_at_the_bands_ends(browser, url: str) -> None:
    from selenium.webdriver.common.by import By

    for size in (PHONE, DESKTOP):
        _open(browser, url, size)
        for salary in (90000, 20000):  # inside the range, and below its low end
            _fill(browser, {"job_title": "Senior Data Scientist", "country": "United States",
                            "experience_level": "SE", "current_salary": salary})  # fmt: skip
            _estimate(browser)
            box = browser.execute_script(
                "const r = (id) => document.getElementById(id).getBoundingClientRect();"
                "const out = {}; for (const id of ['range-track', 'range-band', 'range-you',"
                " 'low', 'high']) { const b = r(id); out[id] = [b.left, b.right]; } return out;"
            )
            job = {"job_title": "Senior Data Scientist", "country": "United States",
                   "experience_level": "SE", "current_salary": salary}  # fmt: skip
            chosen = browser.execute_script("return jobFromForm()")
            answer = httpx.post(f"{url}/predict", json={**chosen, **job}, timeout=30).json()
            low, high = answer["low_usd"], answer["high_usd"]
            you = answer["current_salary"]["usd_per_year"]
            band_left, band_right = box["range-band"]
            # The pin at its true value on the band's own scale (pin drawn 3 px wide).
            pin = box["range-you"][0] + 1.5
            expected = band_left + (you - low) / (high - low) * (band_right - band_left)
            assert abs(pin - expected) <= 2, (size, salary, pin, expected)
            # Each label centred under its end of the band, unless kept inside the track.
            track_left, track_right = box["range-track"]
            for label, end in (("low", band_left), ("high", band_right)):
                left, right = box[label]
                touches = left - 1 <= end <= right + 1
                clamped = abs(left - track_left) <= 1 or abs(right - track_right) <= 1
                assert touches or clamped, (size, label, box)
            assert box["low"][1] < box["high"][0]  # the two labels never overlap
            shown = browser.find_element(By.ID, "low").text
            assert shown.replace(",", "").endswith(f"{answer['amounts']['low']:.0f}")


def test_skills_are_one_tab_stop_and_keyboard_usable(browser, url: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    _open(browser, url, DESKTOP)
    search = browser.find_element(By.ID, "skill-search")
    search.send_keys("pyth")
    search.send_keys(Keys.ARROW_DOWN, Keys.ENTER)
    search.send_keys("sq", Keys.ENTER)
    chips = [c.text.strip() for c in browser.find_elements(By.CSS_SELECTOR, "#chosen-skills .chip")]
    assert chips == ["python", "sql"], chips
    search.send_keys(Keys.BACKSPACE)  # the box is empty: the last chip goes
    chips = [c.text.strip() for c in browser.find_elements(By.CSS_SELECTOR, "#chosen-skills .chip")]
    assert chips == ["python"]
    search.send_keys("sql", Keys.ENTER, "pandas", Keys.ENTER)
    # A chip removes itself when clicked.
    browser.find_elements(By.CSS_SELECTOR, "#chosen-skills .chip")[0].click()
    chips = [c.text.strip() for c in browser.find_elements(By.CSS_SELECTOR, "#chosen-skills .chip")]
    assert chips == ["sql", "pandas"]
    # Tab from the top of the page (a click on the heading starts the sequence
    # there) to the Estimate button, chips and all.
    browser.find_element(By.TAG_NAME, "h1").click()
    stops: list[str] = []
    while (not stops or stops[-1] != "submit") and len(stops) < 200:
        ActionChains(browser).send_keys(Keys.TAB).perform()
        element = browser.switch_to.active_element
        stops.append(element.get_attribute("id") or element.get_attribute("class"))
    print(f"\nTab presses to reach Estimate: {len(stops)}: {stops}")
    assert stops[0] == "job_title" and stops[-1] == "submit", stops
    assert stops.count("skill-search") == 1 and "chip" not in stops
    assert len(stops) <= MAX_TABS_TO_ESTIMATE, stops


def _rgb(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in re.findall(r"[\d.]+", text)[:3])


def _contrast(a: str, b: str) -> float:
    """WCAG 2 contrast ratio of two CSS rgb() colours."""

    def luminance(color: str) -> float:
        channels = [c / 255 for c in _rgb(color)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    light, dark = sorted((luminance(a), luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


BACKGROUND = (
    "let e = arguments[0]; while (e) { const c = getComputedStyle(e).backgroundColor;"
    " if (c && c !== 'rgba(0, 0, 0, 0)' && c !== 'transparent') return c; e = e.parentElement; }"
    " return 'rgb(255, 255, 255)';"
)


def test_focus_ring_and_you_label_meet_wcag_aa(browser, url: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    _open(browser, url, DESKTOP)
    page = browser.execute_script("return getComputedStyle(document.body).backgroundColor")
    ratios = {}
    for target in ("job_title", "experience_level", "skill-search", "current_salary", "submit"):
        element = browser.find_element(By.ID, target)
        element.send_keys(Keys.SHIFT)  # keyboard focus (``:focus-visible``)
        browser.execute_script("arguments[0].focus()", element)
        ringed = element if target != "skill-search" else browser.find_element(By.ID, "skill-box")
        style = browser.execute_script(
            "const s = getComputedStyle(arguments[0]);"
            "return [s.outlineStyle, s.outlineWidth, s.outlineColor, s.outlineOffset];",
            ringed,
        )
        assert style[0] != "none" and float(style[1].rstrip("px")) >= 2, (target, style)
        # Adjacent colours: the card around the field, the page, and the field
        # itself unless the ring stands off it (outline-offset > 0: the card shows between).
        adjacent = [browser.execute_script(BACKGROUND, ringed.find_element(By.XPATH, "..")), page]
        if float(style[3].rstrip("px")) <= 0:
            adjacent.append(browser.execute_script(BACKGROUND, ringed))
        ratios[target] = min(_contrast(style[2], c) for c in adjacent)
    _fill(browser, {"job_title": "Data Scientist", "country": "United States",
                    "current_salary": 90000})  # fmt: skip
    _estimate(browser)
    you = browser.find_element(By.CSS_SELECTOR, ".range-you-label")
    color = browser.execute_script("return getComputedStyle(arguments[0]).color", you)
    ratios["you label"] = _contrast(color, browser.execute_script(BACKGROUND, you))
    percent = browser.find_element(By.CSS_SELECTOR, "#chart .bar-percent")
    color = browser.execute_script("return getComputedStyle(arguments[0]).color", percent)
    ratios["percent text"] = _contrast(color, browser.execute_script(BACKGROUND, percent))
    print("\ncontrast ratios:", {k: round(v, 2) for k, v in ratios.items()})
    assert min(v for k, v in ratios.items() if k not in ("you label", "percent text")) >= 3
    assert ratios["you label"] >= 4.5 and ratios["percent text"] >= 4.5


def _in_view(browser, element_id: str) -> bool:
    return browser.execute_script(
        "const b = document.getElementById(arguments[0]).getBoundingClientRect();"
        "return b.height > 0 && b.top >= 0 && b.bottom <= window.innerHeight;",
        element_id,
    )


@pytest.mark.parametrize("size", [PHONE, DESKTOP], ids=["390", "1280"])
def test_errors_replace_the_old_answer_where_the_person_looks(
    browser, url: str, size: tuple[int, int]
) -> None:
    from selenium.webdriver.common.by import By

    _open(browser, url, size)
    _fill(browser, {"job_title": "Data Scientist", "country": "United States"})
    _estimate(browser)
    answer, error = browser.find_element(By.ID, "answer"), browser.find_element(By.ID, "form-error")
    # A service that does not answer (as when it is stopped): the request fails in the browser.
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*/explain"]})
    _fill(browser, {"job_title": "Machine Learning Engineer", "country": "Germany"})
    browser.find_element(By.ID, "submit").click()
    _wait(browser, lambda b: error.is_displayed())
    assert not answer.is_displayed()  # the old job's estimate is gone
    assert "did not answer" in error.text and "press Estimate again" in error.text
    assert _in_view(browser, "form-error"), size
    browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
    _estimate(browser)
    assert not error.is_displayed()
    # A salary the service refuses (422): its message, the field named in the form's words.
    _fill(browser, {"job_title": "Data Scientist", "country": "United States",
                    "current_salary": 30})  # fmt: skip
    browser.find_element(By.ID, "submit").click()
    _wait(browser, lambda b: error.is_displayed())
    assert not answer.is_displayed()
    assert "not a plausible salary" in error.text and "Correct “Current salary”" in error.text
    salary = browser.find_element(By.ID, "current_salary")
    assert salary.get_attribute("aria-invalid") == "true"
    assert _in_view(browser, "form-error"), size
