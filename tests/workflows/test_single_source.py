"""Training on one source alone (``training_sources: [aijobs]`` or ``[postings]``).

The survey lists no skills: its explanations once crashed drawing the skill
premium chart from no rows ("zero-size array to reduction operation
minimum"). Each source alone trains, registers a champion evaluated on that
source only, explains it and scores a file.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from salarymodel.cli.app import app
from salarymodel.config import settings as config
from salarymodel.report.explanation_plots import skill_premiums

runner = CliRunner()
FAST = (
    ("  num_boost_round: 200\n", "  num_boost_round: 60\n"),
    ("  num_boost_round: 150\n", "  num_boost_round: 40\n"),
    ("  n_folds: 5\n", "  n_folds: 3\n"),
    ("sample_size: 5000", "sample_size: 300"),
)


def _invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_a_premium_chart_without_rows_says_so(tmp_path) -> None:
    table = pd.DataFrame(
        {
            "concept": pd.Series(["country"], dtype=str),
            "value": ["US"],
            "count": [40],
            "mean_premium_pct": [12.0],
            "dollars_at_median": [9000.0],
        }
    )  # a survey-only table: no "skill: ..." rows
    path = skill_premiums(table, tmp_path / "premium_skills.png", min_count=1)
    assert path.stat().st_size > 1000  # a PNG with its title and note, not a crash


@pytest.mark.slow
@pytest.mark.parametrize("source", ["aijobs", "postings"])
def test_one_source_alone_trains_explains_and_predicts(project, source, aijobs_raw, postings_raw):
    sources = project / "configs" / "sources.yaml"
    text = sources.read_text()
    assert "training_sources: [aijobs, postings]" in text
    sources.write_text(text.replace("[aijobs, postings]", f"[{source}]"))
    settings = project / "configs" / "salarymodel.yaml"
    text = settings.read_text()
    for old, new in FAST:
        assert old in text, old
        text = text.replace(old, new, 1)
    settings.write_text(text)
    config._load_settings.cache_clear()
    config._load_sources.cache_clear()
    try:
        _invoke("train", "--sample", "1500", "--no-baselines")
        payload = json.loads(_invoke("evaluate", "--json"))
        assert {row["source"] for row in payload["table"]} == {source, "all"}
        _invoke("explain", "--output", str(project / "explanations"))
        premiums = pd.read_csv(project / "explanations" / "premiums.csv")
        skills = premiums["concept"].str.startswith("skill: ").sum()
        assert (skills == 0) == (source == "aijobs")  # the survey lists none
        assert (project / "explanations" / "premium_skills.png").exists()
        raw = aijobs_raw if source == "aijobs" else postings_raw
        raw.sample(20, random_state=5).to_csv(project / "in.csv", index=False)
        _invoke("predict", "--input", str(project / "in.csv"), "--output", str(project / "o.csv"))
        scored = pd.read_csv(project / "o.csv", keep_default_na=False)
        assert len(scored) == 20 and (scored["view"] == source).sum() >= 15
    finally:
        config._load_settings.cache_clear()
        config._load_sources.cache_clear()
