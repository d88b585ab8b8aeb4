"""The gate says no: every refusal path on real samples, and a registry that cannot
answer never promotes.

One small project for the module (tests/workflows/test_retraining.make_project: survey rows
before 2024 and postings; champion v1 trained on them). Each refusal is checked
the same way: the CLI gives its reason on one line, the champion alias has not
moved, and ``versions --json`` lists what was registered (a refused ``train``
registers its version; a refused ``retrain`` registers nothing, unless only the
count of its training records said no) as not champion.
Worse challengers are built honestly: a crippled model configuration, other
data or folds, a new file whose pay disagrees with what the model knew.

The gate's rule (``salarymodel.promotion.gate``: a paired bootstrap over groups of the
same rows) is tested on real estimates of 448 survey records of 2024, the
issue's held-out count; and end to end, a difference that is noise (another
seed in ``train``, a slightly worse challenger in ``retrain``) is promoted
with its interval printed. Tests that promote restore champion v1 or run last.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers.retrain_project import make_project, trained_champion
from typer.testing import CliRunner

from salarymodel.cli.app import app
from salarymodel.config import settings as config
from salarymodel.config.settings import load_settings
from salarymodel.evaluation.metrics import metrics
from salarymodel.promotion.decisions import TIE_IN_TRAIN, decide
from salarymodel.promotion.gate import (
    BETTER,
    HIGHER_IS_BETTER,
    TIE,
    WITHIN,
    WORSE,
    PairedInterval,
    describe,
    paired_interval,
    promotes,
    verdict,
    weighted_metric,
)
from salarymodel.registry.champion import champion_version
from salarymodel.registry.store import (
    BACKTEST_ARTIFACT,
    TAG_BACKTEST,
    TAG_FINGERPRINT,
    TAG_FOLDS,
    RegistryError,
    champion_backtest,
    compare,
    connect,
)

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()
# A model that stops after three boosting rounds: a challenger honestly worse.
CRIPPLED = ("  num_boost_round: 200\n", "  num_boost_round: 3\n")
# Range models of three rounds: every gate here judges the point estimates (train's
# backtest, retrain's held-out and existing rows), which the range models do not
# touch, so the challengers' intervals are the same as with 150 rounds, for less CPU.
CHEAP_RANGES = ("  num_boost_round: 150\n", "  num_boost_round: 3\n")
MODEL_SEED = "    verbosity: -1\n  num_boost_round: 200"  # what follows the model's seed
GATE_METRIC = "backtest.fused_lightgbm.all.mae_usd"


def _invoke(*args: str, code: int = 0) -> tuple[str, str]:
    """Run the CLI in this process; (stdout, stderr)."""
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.stdout, result.stderr


def _line(text: str, start: str) -> str:
    """The one line of the CLI's output that starts with ``start``."""
    found = [line for line in text.splitlines() if line.startswith(start)]
    assert len(found) == 1, text[-3000:]
    return found[0]


def _interval(line: str) -> tuple[float, float]:
    """The gate's printed interval of challenger - champion."""
    found = re.search(r"95% interval \[([-+][\d,.]+), ([-+][\d,.]+)\]", line)
    assert found, line
    low, high = (float(g.replace(",", "")) for g in found.groups())
    return low, high


def _versions() -> list[dict]:
    return json.loads(_invoke("versions", "--json")[0])


def _champion(rows: list[dict]) -> str:
    (champion,) = [row["version"] for row in rows if row["champion"]]
    return champion


def _assert_refused(before: list[dict], registered: int) -> list[dict]:
    """The alias did not move; ``registered`` new versions are listed, none champion."""
    after = _versions()
    assert _champion(after) == _champion(before)
    assert after[: len(before)] == before
    assert len(after) == len(before) + registered
    for row in after[len(before) :]:
        assert not row["champion"] and row["times_champion"] == 0
    print(json.dumps({"before": before, "after": after}, indent=1))  # for the record (-s)
    return after


@contextmanager
def edited_settings(root: Path, *changes: tuple[str, str]) -> Iterator[None]:
    """The project's configs/salarymodel.yaml with text replaced, for one block."""
    path = root / "configs" / "salarymodel.yaml"
    original = path.read_text()
    text = original
    for old, new in changes:
        assert old in text, old
        text = text.replace(old, new, 1)
    path.write_text(text)
    config._load_settings.cache_clear()  # settings are cached per file
    try:
        yield
    finally:
        path.write_text(original)
        config._load_settings.cache_clear()


@pytest.fixture(scope="module")
def gate(tmp_path_factory, aijobs_raw, postings_raw) -> Iterator[Path]:
    """A project whose champion v1 was trained on survey years < 2024 and postings."""
    root = tmp_path_factory.mktemp("gate")
    make_project(root, aijobs_raw, postings_raw)
    with trained_champion(root, tmp_path_factory):
        yield root


# ----- compare: which way is better -------------------------------------------------------
def test_compare_follows_the_direction_of_the_metric(settings) -> None:
    r2 = settings.model_copy(update={"gate": settings.gate.model_copy(update={"metric": "r2_log"})})
    assert compare(r2, 0.60, 0.62, 0.0) == (False, "worse than")  # lower R² is worse
    assert compare(r2, 0.63, 0.62, 0.0) == (True, "at least as good as")
    assert compare(r2, 0.61, 0.62, 0.05) == (True, "worse than but within the tolerance of")
    assert compare(r2, -0.30, -0.20, 0.2) == (False, "worse than")  # |champion| scales it
    mae = settings.model_copy(
        update={"gate": settings.gate.model_copy(update={"metric": "mae_usd"})}
    )
    assert compare(mae, 41_000, 40_000, 0.0) == (False, "worse than")  # higher error is worse
    assert compare(mae, 39_000, 40_000, 0.0) == (True, "at least as good as")
    assert compare(mae, 41_000, 40_000, 0.05) == (True, "worse than but within the tolerance of")


# ----- the paired bootstrap (salarymodel.promotion.gate), on real estimates ---------------
@pytest.fixture(scope="module")
def scored(settings, sources) -> pd.DataFrame:
    """448 survey records of 2024 (the issue's held-out count) with two real estimates.

    ``old``: the model fit on the records before 2024 (a champion); ``new``: fit
    on those plus the other 2024 records of the sample (a retrained challenger).
    """
    from salarymodel.data.dataset import load_training_data
    from salarymodel.evaluation.baselines import fused_lightgbm

    records = load_training_data(settings, sources, sample=2000, seed=5, accepted=False).records
    later = (records["source"] == "aijobs") & (records["year"] == 2024)
    test = records[later].sample(448, random_state=0)
    before = records[~later]
    newer = records[later & ~records["group_id"].isin(test["group_id"])]
    return test.assign(
        old=fused_lightgbm(before, test, settings),
        new=fused_lightgbm(pd.concat([before, newer]), test, settings),
    )


def _interval_of(frame: pd.DataFrame, challenger: str, champion: str, **options) -> PairedInterval:
    settings = {"metric": "mae_usd", "groups": frame["group_id"].to_numpy(), "resamples": 2000}
    settings |= options
    return paired_interval(
        settings["metric"],
        frame["salary_usd"].to_numpy(float),
        frame[challenger].to_numpy(float),
        frame[champion].to_numpy(float),
        settings["groups"],
        settings["resamples"],
        0.95,
        17,
    )


def test_weighted_metrics_are_the_evaluation_metrics(scored: pd.DataFrame) -> None:
    salary, estimate = scored["salary_usd"].to_numpy(float), scored["old"].to_numpy(float)
    expected = metrics(salary, estimate)
    twice = np.ones((1, len(salary)))
    twice[0, :100] = 2  # a weight of 2 is the row counted twice
    doubled = metrics(np.r_[salary, salary[:100]], np.r_[estimate, estimate[:100]])
    for name in HIGHER_IS_BETTER:
        unit = weighted_metric(name, salary, estimate, np.ones((1, len(salary))))
        assert unit[0] == pytest.approx(expected[name], rel=1e-12), name
        assert weighted_metric(name, salary, estimate, twice)[0] == pytest.approx(
            doubled[name], rel=1e-12
        ), name


def test_paired_interval_brackets_the_difference_and_repeats(scored: pd.DataFrame) -> None:
    interval = _interval_of(scored, "new", "old")
    print(interval)
    ours, theirs = (metrics(scored["salary_usd"], scored[m])["mae_usd"] for m in ("new", "old"))
    assert (interval.challenger, interval.champion) == pytest.approx((ours, theirs))
    assert interval.low < interval.difference < interval.high
    assert interval == _interval_of(scored, "new", "old")  # seeded: the same every run
    wider = paired_interval(
        "mae_usd", scored["salary_usd"], scored["new"], scored["old"], None, 2000, 0.99, 17
    )
    assert wider.high - wider.low > interval.high - interval.low


def test_paired_interval_resamples_whole_groups(scored: pd.DataFrame) -> None:
    # Every record three times, as one group (a record and its repeats): the
    # copies err together, so they count as one draw, not three.
    tripled = pd.concat([scored] * 3, ignore_index=True)
    one = _interval_of(scored, "new", "old", groups=None)
    grouped = _interval_of(tripled, "new", "old")
    loose = _interval_of(tripled, "new", "old", groups=None)
    print(one, grouped, loose, sep="\n")
    assert grouped.groups == one.rows == len(scored) and loose.groups == 3 * len(scored)
    width = {k: i.high - i.low for k, i in {"one": one, "grouped": grouped, "loose": loose}.items()}
    assert 0.85 < width["grouped"] / width["one"] < 1.15
    assert width["grouped"] / width["loose"] > 1.5  # about sqrt(3): rows taken as independent


def test_clearly_worse_is_refused_clearly_better_promoted(scored: pd.DataFrame) -> None:
    # Estimates 30% too high lose beyond noise by every metric. A challenger
    # trained without the newer records loses on them in MAE (its R²'s and
    # MdAPE's intervals still hold zero on 448 rows: R² -0.064 [-0.132, +0.004]
    # since a country placed nowhere starts at a typical country's level); the
    # retrained one wins.
    scored = scored.assign(inflated=scored["old"] * 1.3)
    cases = [(m, "inflated", "old", WORSE) for m in HIGHER_IS_BETTER]
    cases += [("mae_usd", "old", "new", WORSE), ("mae_usd", "new", "old", BETTER)]
    for metric, challenger, champion, expected in cases:
        interval = _interval_of(scored, challenger, champion, metric=metric)
        found = verdict(interval, 0.0)
        assert found == expected, (metric, challenger, champion, interval)
        for tie_rule in (True, False):  # a clear result is not a tie
            assert promotes(found, tie_rule) is (expected == BETTER)
    line = describe(_interval_of(scored, "inflated", "old"), WORSE, "champion v3", 0.0, "tie")
    print(line)
    assert re.fullmatch(
        r"challenger [\d,.]+ is worse than champion v3 [\d,.]+: difference \+[\d,.]+, "
        r"95% interval \[\+[\d,.]+, \+[\d,.]+\] \(448 rows in 448 groups, 2,000 resamples; "
        r"tolerance 0\.0%\)",
        line,
    )


def test_a_tie_and_a_loss_within_tolerance_go_by_the_tie_rule(scored: pd.DataFrame) -> None:
    same = _interval_of(scored, "old", "old")
    assert (same.low, same.difference, same.high) == (0.0, 0.0, 0.0)
    assert verdict(same, 0.0) == TIE
    assert promotes(TIE, True) and not promotes(TIE, False)
    line = describe(same, TIE, "champion v1", 0.0, "the tie goes to the challenger (why)")
    assert "is indistinguishable from champion v1" in line
    assert line.endswith("tolerance 0.0%); the tie goes to the challenger (why)")
    # Worse beyond noise, but the interval reaches within the tolerance: not refused.
    worse = _interval_of(scored, "old", "new")
    share = worse.low / worse.champion  # the least it is worse by, as a share
    assert share > 0
    assert verdict(worse, share * 1.01) == WITHIN
    assert verdict(worse, share * 0.99) == WORSE


def _champion_rows(client, settings) -> tuple[str, dict[str, str], pd.DataFrame]:
    """The champion's version, evaluation tags and per-row backtest estimates."""
    current = champion_version(client, settings)
    run = client.get_run(current.run_id)
    tags = {key: run.data.tags[key] for key in (TAG_FINGERPRINT, TAG_FOLDS, TAG_BACKTEST)}
    return str(current.version), tags, champion_backtest(client, current)


def test_gate_on_r2_refuses_a_lower_r2_than_the_champions(gate: Path) -> None:
    settings = load_settings()
    r2 = settings.model_copy(update={"gate": settings.gate.model_copy(update={"metric": "r2_log"})})
    client = connect(r2)
    version, tags, rows = _champion_rows(client, r2)
    # The champion's own backtest estimates, 30% too high: a lower R² beyond noise.
    worse = decide(client, r2, tags, rows.assign(fused_lightgbm=rows["fused_lightgbm"] * 1.3))
    print(worse.reason)
    assert not worse.promote and f"is worse than champion v{version}" in worse.reason
    assert worse.reason.startswith("backtest.fused_lightgbm.all.r2_log (2 folds): challenger")
    assert worse.interval.high < 0  # challenger - champion: R² lower on every resample's tail
    # Halfway (in log terms) to the true salaries: a higher R² beyond noise.
    closer = np.sqrt(rows["fused_lightgbm"] * rows["salary_usd"])
    better = decide(client, r2, tags, rows.assign(fused_lightgbm=closer))
    assert better.promote and f"is better than champion v{version}" in better.reason
    assert better.interval.low > 0


def test_gate_pairs_only_the_same_backtest_rows(gate: Path) -> None:
    settings = load_settings()
    client = connect(settings)
    version, tags, rows = _champion_rows(client, settings)
    fewer = decide(client, settings, tags, rows.iloc[1:])
    other_pay = rows.assign(salary_usd=rows["salary_usd"].where(rows.index != 5, 1.0))
    for decision in (fewer, decide(client, settings, tags, other_pay)):
        assert not decision.promote and decision.interval is None
        assert decision.reason.startswith(f"champion v{version} was evaluated on other data or")
    none = decide(client, settings, tags, None)  # no backtest fold had enough records
    assert not none.promote and "the challenger has no backtest rows to compare" in none.reason
    same = decide(client, settings, tags, rows)  # the champion against itself: a tie
    assert same.promote and "is indistinguishable from" in same.reason
    assert (same.interval.low, same.interval.high) == (0.0, 0.0)


@contextmanager
def champion_artifact(root: Path, text: bytes | None) -> Iterator[None]:
    """The champion run's backtest estimates replaced by ``text`` (None: removed), for one block."""
    settings = load_settings()
    client = connect(settings)
    run = client.get_run(champion_version(client, settings).run_id)
    path = Path(run.info.artifact_uri.removeprefix("file://")) / BACKTEST_ARTIFACT
    original = path.read_bytes()
    try:
        if text is None:
            path.unlink()
        else:
            path.write_bytes(text)
        yield
    finally:
        path.write_bytes(original)


def test_gate_without_the_champions_backtest_refuses_or_stops(gate: Path) -> None:
    settings = load_settings()
    client = connect(settings)
    version, tags, rows = _champion_rows(client, settings)
    with champion_artifact(gate, None):
        missing = decide(client, settings, tags, rows)
    assert not missing.promote
    assert f"champion v{version} has no backtest estimates to compare with" in missing.reason
    # A damaged file is the store failing, not an answer: the gate stops.
    damaged = f"cannot read the backtest estimates of champion v{version}"
    with champion_artifact(gate, b"\x1f\x8b not gzip"), pytest.raises(RegistryError, match=damaged):
        decide(client, settings, tags, rows)


# ----- train ----------------------------------------------------------------------------------
def test_train_worse_than_the_champion_is_registered_not_promoted(gate: Path) -> None:
    before = _versions()
    with edited_settings(gate, CRIPPLED, CHEAP_RANGES):
        _, said = _invoke("train", "--no-baselines")
    line = _line(said, "registered version")
    print(line)
    assert f"kept the current champion: {GATE_METRIC} (2 folds): challenger" in line
    assert f"is worse than champion v{_champion(before)}" in line
    low, high = _interval(line)
    assert 0 < low < high  # worse on the backtest beyond noise
    _assert_refused(before, registered=1)


def test_train_differing_from_the_champion_by_noise_is_promoted(gate: Path) -> None:
    # Another LightGBM seed on the same data and folds: a different model, the
    # same skill; the backtest cannot tell them apart and the tie goes to the challenger.
    before = _versions()
    reseeded = (f"    seed: 17\n{MODEL_SEED}", f"    seed: 18\n{MODEL_SEED}")
    with edited_settings(gate, reseeded, CHEAP_RANGES):
        _, said = _invoke("train", "--no-baselines")
    line = _line(said, "registered version")
    print(line)
    assert f"promoted to champion: {GATE_METRIC} (2 folds): challenger" in line
    assert f"is indistinguishable from champion v{_champion(before)}" in line
    assert line.endswith(f"; {TIE_IN_TRAIN}")
    low, high = _interval(line)
    assert low < 0 < high
    after = _versions()
    assert _champion(after) == after[-1]["version"] != _champion(before)
    settings = load_settings()
    client = connect(settings)
    run = client.get_run(champion_version(client, settings).run_id)
    assert run.data.tags["gate.reason"] in line and run.data.tags["gate.promote"] == "True"
    logged = run.data.metrics["gate.low"], run.data.metrics["gate.high"]
    assert logged == pytest.approx((low, high), abs=0.01)
    _invoke("promote", _champion(before))  # the other tests compare with champion v1


@pytest.mark.parametrize(
    ("args", "changes"),
    [
        (("--sample", "1500"), ()),  # other data: another fingerprint
        ((), (("  n_folds: 5\n", "  n_folds: 3\n"),)),  # other folds
        ((), (("  max_folds_per_source: 1\n", "  max_folds_per_source: 2\n"),)),  # backtest
    ],
    ids=["other-data", "other-folds", "other-backtest"],
)
def test_train_on_another_evaluation_is_not_comparable(gate: Path, args, changes) -> None:
    before = _versions()
    # Three boosting rounds for the point and range models (cheap to train): whether two
    # evaluations compare is read from the data, folds and backtest alone, no model
    # setting; were they compared, this crippled model would be refused as worse.
    with edited_settings(gate, *changes, CRIPPLED, CHEAP_RANGES):
        _, said = _invoke("train", "--no-baselines", *args)
    line = _line(said, "registered version")
    print(line)
    assert (
        f"kept the current champion: champion v{_champion(before)} was evaluated on other "
        "data or folds; metrics are not comparable"
    ) in line
    _assert_refused(before, registered=1)


# ----- retrain --------------------------------------------------------------------------------
def _accepted(root: Path) -> list[Path]:
    return sorted((root / "models").glob("accepted/*/*"))


def _retrain_refused(root: Path, file: Path, check: str) -> str:
    """Retrain with ``file``: refused (exit 1) by ``check``; nothing registered or kept."""
    before, accepted = _versions(), _accepted(root)
    _, said = _invoke("retrain", "--data", str(file), code=1)
    line = _line(said, "kept champion")
    print(line)
    assert line.startswith(f"kept champion v{_champion(before)} (run ")
    assert f"{check}: " in line
    _assert_refused(before, registered=0)
    assert _accepted(root) == accepted
    return line


def test_retrain_losing_on_the_held_out_new_rows_is_refused(gate: Path) -> None:
    with edited_settings(gate, CRIPPLED, CHEAP_RANGES):
        line = _retrain_refused(gate, gate / "data" / "new.csv", "held-out new rows")
    assert "held-out new rows: challenger" in line and "is worse than champion v1" in line
    low, high = _interval(line)
    assert 0 < low < high  # worse beyond noise


def _unshipped_survey(aijobs_raw: pd.DataFrame) -> pd.DataFrame:
    """Survey rows of the years the champion knows (< 2024) that it was not trained on."""
    years = aijobs_raw["work_year"].astype(int)
    known = aijobs_raw[years < 2024]
    shipped = known.sample(2000, random_state=1).index  # make_project's survey sample
    return known.drop(index=shipped)


def test_retrain_that_forgets_the_existing_records_is_refused(gate: Path, aijobs_raw) -> None:
    # Survey rows of the same years the champion knows, paid 40% more (a wrong
    # conversion, say): the challenger wins on them and loses on what it knew.
    rows = _unshipped_survey(aijobs_raw).sample(4000, random_state=4)
    rows = rows.assign(salary_in_usd=(rows["salary_in_usd"].astype(float) * 1.4).round())
    rows.to_csv(gate / "inflated.csv", index=False)
    # The whole-file check on salary PSI sees it first (0.52, above 0.5) ...
    line = _retrain_refused(gate, gate / "inflated.csv", "salary drift (aijobs)")
    assert "PSI of log salary" in line
    # ... and without it, the forgetting guard refuses the challenger.
    no_psi_check = ("  max_salary_psi: 0.5\n", "  max_salary_psi: null\n")
    with edited_settings(gate, no_psi_check, CHEAP_RANGES):
        line = _retrain_refused(gate, gate / "inflated.csv", "existing records")
    assert "existing records (both models trained on them): challenger" in line
    assert "is worse than champion" in line and "(tolerance 5.0%)" in line
    assert "held-out new rows:" not in line  # it won there: only the failed check is named


def test_retrain_with_too_few_held_out_rows_is_refused(gate: Path, aijobs_raw) -> None:
    shipped = pd.read_csv(gate / "data" / "aijobs_old.csv", dtype=str, keep_default_na=False)
    later = aijobs_raw[aijobs_raw["work_year"].astype(int) == 2024].sample(25, random_state=8)
    pd.concat([shipped.head(120), later]).to_csv(gate / "few.csv", index=False)
    line = _retrain_refused(gate, gate / "few.csv", "held-out rows")
    assert "new records held out (at least 30 needed to judge)" in line


def _trained_on(version: str) -> int:
    """The records ``version`` was trained on, as its run logged them (data.json)."""
    import mlflow

    settings = load_settings()
    run_id = connect(settings).get_model_version(settings.tracking.registered_model, version).run_id
    return int(mlflow.artifacts.load_dict(f"runs:/{run_id}/data.json")["fingerprint"]["rows"])


def _later_survey(root: Path, aijobs_raw: pd.DataFrame, rows: int) -> Path:
    """``rows`` real survey rows of 2024 (a year the champion never saw), as a new file."""
    later = aijobs_raw[aijobs_raw["work_year"].astype(int) == 2024].sample(rows, random_state=11)
    later.to_csv(root / f"later{rows}.csv", index=False)
    return root / f"later{rows}.csv"


def _retrain_json(*args: str, code: int) -> tuple[dict, str]:
    out, said = _invoke("retrain", *args, "--json", code=code)
    return json.loads(out), said  # stdout is the JSON alone (the gate table: stderr)


def test_retrain_on_a_sample_is_registered_not_promoted(gate: Path, aijobs_raw) -> None:
    # The tester's case: 160 new survey rows with `--sample 300` (a challenger of 738
    # records) replaced a champion of 54,589 on a tie over 48 held-out rows. Here
    # `--sample 1000` of this project's 2,000 survey rows and 1,200 postings: 2,020
    # records against the champion's 2,790, and every other check passes (with
    # `--sample 300` the forgetting guard said no as well).
    before, accepted = _versions(), _accepted(gate)
    champion = _champion(before)
    file = _later_survey(gate, aijobs_raw, 160)
    with edited_settings(gate, CHEAP_RANGES):
        summary, said = _retrain_json("--data", str(file), "--sample", "1000", code=1)
    line = _line(said, "kept champion")
    print(line)
    failed = [c for c in summary["checks"] if not c["passed"]]
    assert [c["name"] for c in failed] == ["training records"]  # the only one to say no
    theirs, version = _trained_on(champion), summary["version"]
    # The registered challenger was refit on all of them: the gate's fit and its held-out rows.
    ours = summary["comparison"]["train_rows"] + summary["comparison"]["holdout_rows"]
    assert ours < 0.9 * theirs
    assert (
        f"training records: challenger trained on {ours:,} records, champion v{champion} on "
        f"{theirs:,} (the gate promotes one trained on at least 90% of them, "
        f"{math.ceil(0.9 * theirs):,}); registered as v{version}, not promoted: "
        f"`salarymodel promote {version}` makes it champion by hand"
    ) in line
    assert not summary["promoted"] and _trained_on(version) == ours
    _assert_refused(before, registered=1)
    # Its rows are pending, not training data: the next retrain drops them unless
    # an operator promotes it first (retraining.pending.reconcile_accepted).
    pending = [p for p in _accepted(gate) if p not in accepted]
    assert len(pending) == 1 and pending[0].name.endswith(f".{summary['run_id']}.pending")
    run = connect(load_settings()).get_run(summary["run_id"])
    assert run.data.tags["gate.promote"] == "False"
    assert f"`salarymodel promote {version}`" in run.data.tags["gate.reason"]


def test_retrain_on_a_sample_near_the_champions_records_is_promoted(gate: Path, aijobs_raw) -> None:
    # `--sample 1400`: fewer records than the champion's, but not clearly fewer.
    before = _versions()
    champion = _champion(before)
    file = _later_survey(gate, aijobs_raw, 160)
    with edited_settings(gate, CHEAP_RANGES):
        summary, said = _retrain_json("--data", str(file), "--sample", "1400", code=0)
    print(_line(said, "promoted version"))
    (check,) = [c for c in summary["checks"] if c["name"] == "training records"]
    theirs, version = _trained_on(champion), summary["version"]
    ours = summary["comparison"]["train_rows"] + summary["comparison"]["holdout_rows"]
    assert 0.9 * theirs <= ours < theirs and check["passed"]
    assert check["detail"] == (
        f"challenger trained on {ours:,} records, champion v{champion} on {theirs:,} (the "
        f"gate promotes one trained on at least 90% of them, {math.ceil(0.9 * theirs):,})"
    )
    assert summary["promoted"] and _champion(_versions()) == version
    assert _trained_on(version) == ours
    # The other tests compare with champion v1, on the data it was trained on.
    _invoke("promote", champion)
    Path(summary["accepted_file"]).unlink()


def test_retrain_worse_by_noise_is_promoted_with_its_interval(gate: Path, aijobs_raw) -> None:
    # The case: on ~450 held-out new rows the challenger's MAE is a
    # little above the champion's (there: 44,836 vs 44,686, +0.3%), which a
    # point comparison at tolerance 0 refused. 2,400 more survey rows of the
    # years the champion knows; this sample (random_state 27, picked among
    # 48 for a challenger slightly worse on the point estimate) gave +0.8%.
    settings = load_settings()
    before = _versions()
    _unshipped_survey(aijobs_raw).sample(2400, random_state=27).to_csv(
        gate / "more.csv", index=False
    )
    with edited_settings(gate, CHEAP_RANGES):
        out, said = _invoke("retrain", "--data", str(gate / "more.csv"), "--json")
    summary = json.loads(out)  # stdout is the JSON alone
    line = _line(said, "promoted version")
    print(line)
    interval = summary["comparison"]["interval"]
    assert interval["rows"] >= 400 and interval["groups"] <= interval["rows"]
    # Worse on the point estimate: the gate before this one kept the champion...
    challenger, champion = interval["challenger"], interval["champion"]
    assert compare(settings, challenger, champion, 0.0) == (False, "worse than")
    assert 0 < interval["difference"] < 0.01 * champion
    # ...yet the interval holds zero: noise, and the newer data wins.
    assert interval["low"] < 0 < interval["high"]
    assert _interval(line) == pytest.approx((interval["low"], interval["high"]), abs=0.01)
    assert (
        f"held-out new rows: mae_usd on {interval['rows']:,} held-out new rows: challenger "
        f"{challenger:,.2f} is indistinguishable from champion v{_champion(before)} "
        f"{champion:,.2f}: difference +{interval['difference']:,.2f}, 95% interval ["
    ) in line
    assert line.endswith("; the tie goes to the challenger (trained on newer data)")
    after = _versions()
    assert summary["promoted"] and _champion(after) == after[-1]["version"] == summary["version"]
    client = connect(settings)
    run = client.get_run(summary["run_id"])
    assert run.data.tags["gate.promote"] == "True"
    assert "is indistinguishable from champion" in run.data.tags["gate.reason"]
    assert run.data.metrics["holdout.gate.high"] == pytest.approx(interval["high"])


# ----- a registry that cannot answer -----------------------------------------------------------
@contextmanager
def broken_aliases(root: Path) -> Iterator[None]:
    """The store's alias table out of reach: every read of the registered model fails."""
    with sqlite3.connect(root / "mlflow.db", isolation_level=None) as db:
        db.execute("ALTER TABLE registered_model_aliases RENAME TO aliases_away")
        try:
            yield
        finally:
            db.execute("ALTER TABLE aliases_away RENAME TO registered_model_aliases")


def test_registry_error_is_not_no_champion(gate: Path) -> None:
    settings = load_settings()
    client = connect(settings)
    with broken_aliases(gate), pytest.raises(RegistryError, match="no such table"):
        champion_version(client, settings)
    assert str(champion_version(client, settings).version) == _champion(_versions())


def _runs(root: Path) -> int:
    with sqlite3.connect(root / "mlflow.db") as db:
        (count,) = db.execute("SELECT count(*) FROM runs").fetchone()
    db.close()
    return count


def test_train_stops_when_the_registry_cannot_answer(gate: Path) -> None:
    before, runs = _versions(), _runs(gate)
    with broken_aliases(gate):
        _, said = _invoke("train", "--no-baselines", code=2)
        _, again = _invoke("retrain", "--data", str(gate / "data" / "new.csv"), code=2)
    for output in (said, again):
        line = _line(output, "error: ")
        print(line)
        assert line.startswith(
            f"error: cannot read model 'salarymodel' from sqlite:///{gate}/mlflow.db: "
            "(sqlite3.OperationalError) no such table: registered_model_aliases"
        )
        assert "Traceback" not in output and "[SQL:" not in output
    assert _versions() == before
    assert _runs(gate) == runs  # stopped before fitting: no run was started


def _champion_of_locked_copy(root: Path) -> float:
    """``champion_version`` on a copy of the store held by a writer that locks reads
    too: no answer is a ``RegistryError``, not "no champion"; the seconds it waited."""
    copy = root / "locked-copy.db"
    with sqlite3.connect(root / "mlflow.db") as source, sqlite3.connect(copy) as dest:
        source.backup(dest)
    settings = load_settings()
    tracking = settings.tracking.model_copy(update={"uri": f"sqlite:///{copy}"})
    settings = settings.model_copy(update={"tracking": tracking})
    client = connect(settings)  # waits the configured busy timeout, as the commands do
    assert champion_version(client, settings) is not None  # unlocked, the copy answers
    with sqlite3.connect(copy, isolation_level=None) as writer:
        writer.execute("BEGIN EXCLUSIVE")
        start = time.monotonic()
        try:
            with pytest.raises(RegistryError, match="database is locked"):
                champion_version(client, settings)
        finally:
            waited = time.monotonic() - start
            writer.execute("ROLLBACK")
    copy.unlink()
    return waited


# A command waits this long for a locked store here (tracking.sqlite_busy_timeout_seconds,
# 20 s in the shipped configs) before it fails.
BUSY_TIMEOUT = ("  sqlite_busy_timeout_seconds: 20.0\n", "  sqlite_busy_timeout_seconds: 2.0\n")


@pytest.mark.slow
def test_a_locked_store_stops_every_command_that_moves_the_alias(gate: Path) -> None:
    with edited_settings(gate, BUSY_TIMEOUT):
        waited = _refused_while_locked(gate)
    # The read waited the configured 2 s, not MLflow's own 20 s, and not no wait at all.
    assert 2.0 <= waited < 15.0, waited


def _refused_while_locked(gate: Path) -> float:
    """promote and rollback while another connection writes the store: both refused with
    the store's error and nothing moved; then the read of a store locked for reads too,
    on a copy: the seconds it waited. SQLite locks the file for a connection whichever
    process holds it, so the commands run in this process (no child paying the imports)."""
    if len(_versions()) < 2:  # run on its own: a second version to move to
        _invoke("train", "--no-baselines")
    rows = _versions()
    champion = _champion(rows)
    other = next(r["version"] for r in reversed(rows) if r["version"] != champion)
    _invoke("promote", other)
    _invoke("promote", champion)  # a champion before this one: rollback has a target
    before = _versions()
    with sqlite3.connect(gate / "mlflow.db", isolation_level=None) as writer:
        # Another writer: reads go on, every other write waits, then fails.
        writer.execute("BEGIN IMMEDIATE")
        started = time.monotonic()
        try:
            answers = {
                "promote": runner.invoke(app, ["promote", other]),
                "rollback": runner.invoke(app, ["rollback"]),
            }
            refused = time.monotonic() - started
            waited = _champion_of_locked_copy(gate)
        finally:
            writer.execute("ROLLBACK")
    print(f"both refused after {refused:.1f} s; the read waited {waited:.1f} s")
    assert refused >= 2 * 2.0  # each command waited the configured 2 s for the lock
    for name, result in answers.items():
        said = result.stderr
        assert result.exit_code == 2, result.output
        line = _line(said, "error: ")
        print(name, line)
        assert line.startswith("error: cannot move the 'champion' alias of 'salarymodel' to v")
        assert line.endswith("(sqlite3.OperationalError) database is locked")
        assert "Traceback" not in said
    assert _versions() == before
    return waited


def test_a_version_registered_outside_a_run_is_a_registry_error_not_a_crash() -> None:
    # MLflow's client raises a TypeError for a run id of None; the CLI catches RegistryError.
    from mlflow.entities.model_registry import ModelVersion

    from salarymodel.registry.store import RegistryError
    from salarymodel.registry.views import run_evaluation, version_run

    orphan = ModelVersion(name="salarymodel", version="7", creation_timestamp=0, run_id=None)
    with pytest.raises(RegistryError, match="v7 was not registered from a run"):
        run_evaluation(None, orphan)  # type: ignore[arg-type]  # refused before any call
    assert version_run(None, orphan) is None  # type: ignore[arg-type]


def test_a_tie_goes_to_new_data_only_when_it_passed_the_file_checks(
    scored: pd.DataFrame, settings
) -> None:
    """The issue's junk file won a "tie" (held-out MAE 51,822 vs 48,968): a tie now
    keeps the champion unless the new data passed the whole-file checks."""
    from salarymodel.promotion.decisions import (
        HELD_OUT_CHECK,
        TIE_IN_RETRAIN,
        TIE_KEEPS_CHAMPION,
        Comparison,
        RetrainDecision,
        model_checks,
    )
    from salarymodel.vocabulary import ALL

    # By MdAPE the retrained model's gain on 448 rows is within noise: a real tie.
    mdape = settings.model_copy(
        update={"gate": settings.gate.model_copy(update={"metric": "mdape"})}
    )
    interval = _interval_of(scored, "new", "old", metric="mdape")
    assert verdict(interval, 0.0) == TIE
    salary = scored["salary_usd"].to_numpy(float)
    on_rows = {m: {ALL: metrics(salary, scored[m].to_numpy(float))} for m in ("new", "old")}
    comparison = Comparison(
        holdout={"challenger": on_rows["new"], "champion": on_rows["old"]},
        existing={"challenger": on_rows["new"], "champion": on_rows["old"]},
        holdout_rows=len(scored), existing_rows=len(scored), train_rows=0, interval=interval,
    )  # fmt: skip
    for passed, promoted, rule in (
        (True, True, TIE_IN_RETRAIN),
        (False, False, TIE_KEEPS_CHAMPION),
    ):
        decision = RetrainDecision()
        model_checks(comparison, "1", mdape, decision, data_passed=passed)
        (held,) = [c for c in decision.checks if c.name == HELD_OUT_CHECK]
        print(held.detail)
        assert held.passed is promoted and decision.promote is promoted
        assert "is indistinguishable from champion v1" in held.detail
        assert held.detail.endswith(rule)
