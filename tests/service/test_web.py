"""The web page end to end: headless Chromium drives the form of a real served process.

Uses Debian's ``chromium`` and ``chromium-driver`` through selenium (``make
test`` installs them with apt-get). Where no browser could be installed the
tests skip and say so. The browser is cut off from every host but
127.0.0.1, so the page is also shown to work offline.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
from helpers.browser import chromium_session, fresh_page
from helpers.served import champion_root, served_url

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def url(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> str:
    return served_url(champion_root(tmp_path_factory), request)


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory):
    """One headless Chromium for the module (a start costs seconds of CPU)."""
    profile = tmp_path_factory.mktemp("web") / "profile"
    with chromium_session(profile, performance_log=True) as session:
        yield session


@pytest.fixture()
def browser(chromium):
    return fresh_page(chromium, performance_log=True)


def _wait(browser, condition, seconds: float = 30):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, seconds).until(condition)


def _open_form(browser, url: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    browser.get(url + "/")
    # The selects are filled from GET /model once it answers.
    _wait(browser, lambda b: len(Select(b.find_element(By.ID, "experience_level")).options) == 4)


def test_form_shows_estimate_range_and_explanation(browser, url: str, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    _open_form(browser, url)
    title = browser.find_element(By.ID, "job_title")
    title.clear()
    title.send_keys("Senior Machine Learning Engineer")
    country = browser.find_element(By.ID, "country")
    country.clear()
    country.send_keys("Germany")
    Select(browser.find_element(By.ID, "remote_ratio")).select_by_value("100")
    # The postings state skills (the survey never does: its view reads none, with a warning).
    Select(browser.find_element(By.ID, "view")).select_by_value("postings")
    search = browser.find_element(By.ID, "skill-search")
    search.send_keys("py")
    options = browser.find_elements(By.CSS_SELECTOR, "#skill-list [role=option]")
    assert options, "the skill list is empty"
    chosen = [option.text for option in options[:2]]
    for name in chosen:  # (the list is drawn anew after each pick)
        browser.find_element(By.XPATH, f"//ul[@id='skill-list']/li[.='{name}']").click()
    chips = browser.find_elements(By.CSS_SELECTOR, "#chosen-skills .chip")
    assert sorted(chip.text.strip() for chip in chips) == sorted(chosen)
    # Germany's own currency (CLDR): the page preselects EUR.
    assert Select(browser.find_element(By.ID, "currency")).first_selected_option.text == "EUR"
    browser.find_element(By.ID, "submit").click()
    _wait(browser, lambda b: b.find_element(By.ID, "answer").is_displayed())

    shown = browser.find_element(By.ID, "estimate").text
    assert re.fullmatch(r"[\d.]+ €", shown), shown  # as Germany writes euros
    job = {
        "job_title": "Senior Machine Learning Engineer",
        "country": "Germany",
        "remote_ratio": 100,
        "skills": chosen,
        **{k: Select(browser.find_element(By.ID, k)).first_selected_option.get_attribute("value")
           for k in ("experience_level", "company_size", "employment_type", "view", "currency",
                     "period")},
    }  # fmt: skip
    expected = httpx.post(f"{url}/explain", json=job, timeout=30).json()
    amounts = expected["amounts"]
    assert shown == _babel(amounts["estimate"], "EUR", "de_DE")
    assert browser.find_element(By.ID, "low").text == _babel(amounts["low"], "EUR", "de_DE")
    assert browser.find_element(By.ID, "high").text == _babel(amounts["high"], "EUR", "de_DE")
    usd_line = browser.find_element(By.ID, "usd-line").text
    assert f"${expected['estimate_usd']:,.0f} per year in USD" in usd_line
    rate_line = browser.find_element(By.ID, "rate-line").text
    assert f"{amounts['exchange_rate']['year']} average of" in rate_line
    bars = browser.find_elements(By.CSS_SELECTOR, "#chart .bar-row")
    # The form's inputs (8, location left out) and the 2 skills, plus one line for the rest.
    assert 3 <= len(bars) <= 10
    rows = [b.find_element(By.CSS_SELECTOR, ".bar-label").text for b in bars]
    assert "Country: Germany" in rows and "Remote: remote" in rows, rows
    assert "Pay: job postings (advertised pay)" in rows, rows
    assert {f"Skills: {skill}" for skill in chosen} <= set(rows), rows
    widths = [b.size["width"] for b in browser.find_elements(By.CSS_SELECTOR, "#chart .bar")]
    assert max(widths) > 50  # the largest contribution is drawn, not a hairline
    browser.save_screenshot(str(tmp_path / "page.png"))


def _babel(amount: float, currency: str, locale: str) -> str:
    """Babel's string (the CLI's and the report's), as WebDriver reads text: no-break
    spaces come back as spaces."""
    from salarymodel.core.money_format import format_money

    return format_money(amount, currency, locale).replace("\xa0", " ").replace("\u202f", " ")


@pytest.mark.parametrize(
    ("country", "currency", "locale"),
    [("India", "INR", "hi_IN"), ("South Africa", "ZAR", "en_ZA"), ("China", "CNY", "zh_Hans_CN"),
     ("Japan", "JPY", "ja_JP")],
)  # fmt: skip
def test_the_country_preselects_its_own_currency_written_its_own_way(
    browser, url: str, country: str, currency: str, locale: str
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    _open_form(browser, url)
    field = browser.find_element(By.ID, "country")
    field.clear()
    field.send_keys(country)
    assert Select(browser.find_element(By.ID, "currency")).first_selected_option.text == currency
    browser.find_element(By.ID, "submit").click()
    _wait(browser, lambda b: b.find_element(By.ID, "answer").is_displayed())
    job = {"job_title": browser.find_element(By.ID, "job_title").get_attribute("value"),
           "country": country, "currency": currency}  # fmt: skip
    for k in ("experience_level", "company_size", "employment_type", "view"):
        job[k] = Select(browser.find_element(By.ID, k)).first_selected_option.get_attribute("value")
    expected = httpx.post(f"{url}/explain", json=job, timeout=30).json()["amounts"]
    shown, babel = (
        browser.find_element(By.ID, "estimate").text,
        _babel(expected["estimate"], currency, locale),
    )
    if locale == "en_ZA":
        # Chromium's ICU spaces a letter symbol from the figures ("R 1 199 350", CLDR's
        # currency spacing); Babel 2.19 does not ("R1 199 350"). The rest is the same.
        shown, babel = shown.replace(" ", ""), babel.replace(" ", "")
    assert shown == babel
    assert "daily ECB reference rates" in browser.find_element(By.ID, "rate-line").text


def test_current_salary_is_marked_on_the_range_in_the_chosen_currency(
    browser, url: str, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    _open_form(browser, url)
    country = browser.find_element(By.ID, "country")
    country.clear()
    country.send_keys("United Kingdom")
    assert Select(browser.find_element(By.ID, "currency")).first_selected_option.text == "GBP"
    Select(browser.find_element(By.ID, "period")).select_by_value("month")
    browser.find_element(By.ID, "current_salary").send_keys("4000")
    browser.find_element(By.ID, "submit").click()
    _wait(browser, lambda b: b.find_element(By.ID, "you-line").is_displayed())

    chosen = {
        k: Select(browser.find_element(By.ID, k)).first_selected_option.get_attribute("value")
        for k in ("experience_level", "company_size", "employment_type", "view")
    }
    job = {"job_title": "Data Scientist", "country": "United Kingdom", "currency": "GBP",
           "period": "month", "current_salary": 4000, "remote_ratio": 0, **chosen}  # fmt: skip
    expected = httpx.post(f"{url}/explain", json=job, timeout=30).json()
    shown = browser.find_element(By.ID, "estimate").text
    assert shown == f"£{expected['amounts']['estimate']:,.0f}"
    assert browser.find_element(By.ID, "per").text == "per month"
    you = browser.find_element(By.ID, "you-line").text
    assert you == f"Your pay, £4,000 per month: {expected['current_salary']['reading']}."
    pin = browser.find_element(By.ID, "range-you")
    band = browser.find_element(By.ID, "range-band")
    assert pin.is_displayed()
    # The pin sits where the pay falls: left of the band's middle when below the estimate.
    middle = band.location["x"] + band.size["width"] / 2
    below = expected["current_salary"]["usd_per_year"] < expected["estimate_usd"]
    assert (pin.location["x"] < middle) is below
    browser.save_screenshot(str(tmp_path / "current-salary.png"))
    # A salary the service refuses is named on the page, and the pin goes away on the next answer.
    salary = browser.find_element(By.ID, "current_salary")
    salary.clear()
    salary.send_keys("30")
    browser.find_element(By.ID, "submit").click()
    error = browser.find_element(By.ID, "form-error")
    _wait(browser, lambda b: error.is_displayed() and "current_salary" in error.text)
    assert "not a plausible salary" in error.text


def test_form_reports_the_services_validation_error(browser, url: str) -> None:
    from selenium.webdriver.common.by import By

    _open_form(browser, url)
    # A value the form never offers: the service's 422 message reaches the person.
    browser.execute_script(
        "const s = document.getElementById('experience_level');"
        "s.add(new Option('XX', 'XX')); s.value = 'XX';"
    )
    browser.find_element(By.ID, "submit").click()
    error = browser.find_element(By.ID, "form-error")
    _wait(browser, lambda b: error.is_displayed() and error.text)
    assert "experience_level" in error.text and "EN, MI, SE, EX" in error.text
    browser.find_element(By.ID, "job_title").clear()
    browser.find_element(By.ID, "submit").click()
    _wait(browser, lambda b: "job title" in error.text)


def test_page_loads_nothing_but_the_service(browser, url: str) -> None:
    from selenium.webdriver.common.by import By

    _open_form(browser, url)
    browser.find_element(By.ID, "submit").click()
    _wait(browser, lambda b: b.find_element(By.ID, "answer").is_displayed())
    requested = set()
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            requested.add(message["params"]["request"]["url"])
    assert {f"{url}/", f"{url}/model", f"{url}/explain"} <= requested
    # (chrome:// pages are the browser's own, never fetched from a network)
    web = {u for u in requested if u.startswith(("http:", "https:", "ws:", "wss:"))}
    outside = {u for u in web if not u.startswith(url)}
    assert not outside, outside


def test_a_us_location_shows_the_official_pay_next_to_the_estimate(browser, url: str) -> None:
    from selenium.webdriver.common.by import By

    _open_form(browser, url)
    title = browser.find_element(By.ID, "job_title")
    title.clear()
    title.send_keys("Senior Data Scientist")
    browser.find_element(By.ID, "location").send_keys("Austin, TX")
    browser.find_element(By.ID, "submit").click()
    line = browser.find_element(By.ID, "reference-line")
    _wait(browser, lambda b: line.is_displayed() and line.text)
    assert "BLS OEWS May 2025, Data Scientists, Austin-Round Rock-San Marcos, TX" in line.text
    country = browser.find_element(By.ID, "country")
    country.clear()
    country.send_keys("Germany")
    location = browser.find_element(By.ID, "location")
    location.clear()
    location.send_keys("Berlin")
    browser.find_element(By.ID, "submit").click()
    _wait(browser, lambda b: not line.is_displayed())


def test_a_chinese_cv_job_shows_maimais_published_pay(browser, url: str) -> None:
    """China: the Maimai 2023 figure on the reference line, with how few Chinese records we have."""
    from selenium.webdriver.common.by import By

    _open_form(browser, url)
    title = browser.find_element(By.ID, "job_title")
    title.clear()
    title.send_keys("Senior Computer Vision Engineer")
    country = browser.find_element(By.ID, "country")
    country.clear()
    country.send_keys("China")
    browser.find_element(By.ID, "submit").click()
    line = browser.find_element(By.ID, "reference-line")
    _wait(browser, lambda b: line.is_displayed() and line.text)
    assert line.text.startswith("Published pay: Maimai 2023 AIGC talent report (Feb 2022 - Feb")
    assert "¥1,106,000" in line.text and "no Chinese records of its own" in line.text
    title.clear()
    title.send_keys("Data Analyst")
    browser.find_element(By.ID, "submit").click()
    _wait(browser, lambda b: not line.is_displayed())


def test_the_page_says_how_the_jobs_group_fared_on_a_later_year(browser, url: str) -> None:
    """Each answer's track record: a line under the range, or (a group that missed) a warning."""
    from selenium.webdriver.common.by import By

    card = httpx.get(f"{url}/model", timeout=30).json()
    records = {row["group"]: row for row in card["track_record"]}
    _open_form(browser, url)
    title = browser.find_element(By.ID, "job_title")
    title.clear()
    title.send_keys("Senior Data Scientist")
    browser.find_element(By.ID, "submit").click()
    line, warnings = (
        browser.find_element(By.ID, "track-line"),
        browser.find_element(By.ID, "warnings"),
    )
    us = records["US"]  # the form's default country
    if us["warned"]:  # said once, among the warnings
        _wait(browser, lambda b: "on a later year than it was trained on" in warnings.text)
        assert not line.is_displayed()
    else:
        _wait(browser, lambda b: line.is_displayed() and line.text)
        assert line.text == us["text"] and "on a later year" not in warnings.text
        assert f"({us['records']:,} records)" in line.text
