"""China: the Maimai 2023 AIGC talent report's pay beside a Chinese estimate (china_reference)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest

from salarymodel.config.model import ChinaReferenceConfig
from salarymodel.config.settings import ConfigError
from salarymodel.core import china_reference
from salarymodel.core.china_reference import market_reference, report_figure, role_rules, table
from salarymodel.core.features import FeatureBuilder
from salarymodel.data.dataset import load_training_data

ROOT = Path(__file__).resolve().parents[2]
CSV_TABLE = ROOT / "data" / "maimai_aigc_2023.csv"


@pytest.fixture(scope="module")
def sample(settings, sources):
    return load_training_data(settings, sources, sample=2000, seed=5).records


@pytest.fixture(scope="module")
def builder(sample, settings):
    return FeatureBuilder.fit(sample, settings.features)


@pytest.mark.parametrize(
    ("title", "role"),
    [
        ("Senior Computer Vision Engineer", "computer_vision"),
        ("CV Engineer", "computer_vision"),
        ("Computer Vision Research Scientist", "computer_vision"),  # specific before generic
        ("NLP Engineer", "nlp"),
        ("Natural Language Processing Scientist", "nlp"),
        ("Recommendation Systems Engineer", "recommender_algorithms"),
        ("Deep Learning Engineer", "deep_learning"),
        ("Deep Learning Researcher", "deep_learning"),
        ("Algorithm Engineer", "algorithm_researcher"),
        ("Research Scientist", "algorithm_researcher"),
        ("AI Product Manager", "ai_product_manager"),
        ("Applied Research Lead", "algorithm_researcher"),  # family research_scientist
    ],
)
def test_titles_map_to_the_reports_roles(builder, settings, title: str, role: str) -> None:
    rules = role_rules(settings.china_reference)
    family = builder.job_title(title).family
    assert rules.role(title, family) == role


@pytest.mark.parametrize(
    "title", ["Data Analyst", "Product Manager", "Data Engineer", "Supervisor", "Television Host"]
)
def test_titles_outside_the_six_roles_get_no_figure(builder, settings, title: str) -> None:
    """A plain product manager is not an AI product manager; 'vision' needs its word."""
    rules = role_rules(settings.china_reference)
    assert rules.role(title, builder.job_title(title).family) is None


def test_a_role_the_report_does_not_publish_is_a_config_error() -> None:
    config = ChinaReferenceConfig.model_validate(
        {"roles": [{"role": "data_scientist", "keywords": ["data scientist"]}], "families": {}}
    )
    with pytest.raises(ConfigError, match=r"unknown report role.*data_scientist"):
        role_rules(config)
    families = ChinaReferenceConfig.model_validate(
        {"roles": [{"role": "nlp", "keywords": ["nlp"]}], "families": {"product": "pm"}}
    )
    with pytest.raises(ConfigError, match="pm"):
        role_rules(families)


def test_a_chinese_cv_job_carries_the_reports_figure_in_cny_and_usd(builder, settings) -> None:
    job = {"job_title": "Senior Computer Vision Engineer", "country": "CN"}
    found = market_reference(job, builder, settings.china_reference)
    assert found is not None
    rate = table()["usd_rate"]["cny_per_usd"]
    assert found["pay_cny"] == 1_106_000  # 110.6 万元
    assert found["pay_usd"] == round(1_106_000 / rate)
    assert found["source"] == "Maimai 2023 AIGC talent report"
    assert found["period"] == "Feb 2022 - Feb 2023" and found["role_zh"] == "图像识别"
    assert "¥1,106,000" in found["text"] and f"{rate} CNY per USD" in found["text"]
    assert "no Chinese records of its own" in found["text"]
    # China by name, as a person types it, is China too.
    assert market_reference({**job, "country": "China"}, builder, settings.china_reference)


def test_other_countries_roles_and_a_missing_config_get_none(builder, settings) -> None:
    cv = {"job_title": "Computer Vision Engineer", "country": "US"}
    assert market_reference(cv, builder, settings.china_reference) is None
    assert market_reference({**cv, "country": None}, builder, settings.china_reference) is None
    analyst = {"job_title": "Data Analyst", "country": "CN"}
    assert market_reference(analyst, builder, settings.china_reference) is None
    assert market_reference({**cv, "country": "CN"}, builder, None) is None


def test_the_report_ranks_its_roles_as_published() -> None:
    """The six figures, in 万元, and the four city shares, as the report publishes them."""
    pay = {k: v["value"] for k, v in table()["role_pay_10k_cny"].items()}
    assert pay == {
        "computer_vision": 110.6,
        "algorithm_researcher": 101.1,
        "deep_learning": 100.0,
        "recommender_algorithms": 99.3,
        "nlp": 96.1,
        "ai_product_manager": 90.3,
    }
    cities = {k: v["value"] for k, v in table()["city_share_pct"].items()}
    assert cities == {"beijing": 31.42, "shanghai": 17.93, "shenzhen": 11.44, "hangzhou": 8.06}
    assert report_figure("computer_vision")["pay_usd"] > report_figure("nlp")["pay_usd"]


def test_the_csv_and_the_packaged_json_hold_the_same_figures() -> None:
    with CSV_TABLE.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    data = json.loads(china_reference.TABLE_FILE.read_text(encoding="utf-8"))
    from_csv = {(r["section"], r["key"]): float(r["value"]) for r in rows}
    from_json = {("role_pay", k): v["value"] for k, v in data["role_pay_10k_cny"].items()} | {
        ("city_share", k): v["value"] for k, v in data["city_share_pct"].items()
    }
    assert from_csv == from_json
    assert all(r["source"] for r in rows)


def test_the_rate_is_within_the_periods_ecb_range() -> None:
    """USD/CNY traded between about 6.3 and 7.3 from Feb 2022 to Feb 2023 (ECB)."""
    rate = table()["usd_rate"]
    assert 6.3 < rate["cny_per_usd"] < 7.35 and rate["days"] > 250
    assert "2022-02-01 to 2023-02-28" in rate["basis"]


def test_the_chinese_record_count_is_the_shipped_datas(settings, sources) -> None:
    """The count the answer states is what the shipped training data holds."""
    records = load_training_data(settings, sources, accepted=False).records
    china = records[records["country"] == "CN"]
    counts = table()["training_records"]
    assert counts["china"] == len(china) and counts["all"] == len(records)
    assert counts["aijobs"] == int((china["source"] == "aijobs").sum())
    assert counts["postings"] == int((china["source"] == "postings").sum())
    assert counts["china"] < settings.features.min_category_count  # so "other" in the model


def test_the_csv_path_writes_the_market_reference(settings, sources, sample, builder) -> None:
    from salarymodel.core.model import SalaryModel
    from salarymodel.core.prediction import predict_frame

    matrix = builder.transform(sample)
    model = SalaryModel.fit(
        sample, builder, settings.model, matrix, country_levels=settings.country_levels
    )
    model = model.fit_ranges(sample, matrix, settings)  # the CSV path writes a range
    raw = pd.DataFrame(
        {
            "job_title": ["Computer Vision Engineer", "Data Analyst", "NLP Engineer"],
            "country": ["CN", "CN", "DE"],
        }
    )
    scored = predict_frame(raw, model, settings, sources, source="canonical")
    assert scored["market_reference"][0].startswith("Maimai 2023 AIGC talent report")
    assert scored["market_reference"][1] == "" and scored["market_reference"][2] == ""
    assert scored["reference"][0] == ""  # no BLS figure outside the US
