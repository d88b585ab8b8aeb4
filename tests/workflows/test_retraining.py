"""Retraining end to end on real samples: a base champion trained on survey years
before 2024 (plus postings), then new files of later rows.

One small project per module (its own configs, data files and MLflow store);
the tests run in file order and each states what it expects relative to the
registry it finds: corrupted data is quarantined and never promoted, a kill
mid-training changes nothing, later rows promote, rollback restores the
previous champion, and a served process answers throughout a promotion.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from helpers.retrain_project import invoke_cli, make_project, trained_champion
from helpers.served import free_port, project_env, stop_process, wait_for_model

from salarymodel.config import settings as config
from salarymodel.config.settings import load_settings
from salarymodel.registry.champion import champion_version
from salarymodel.registry.store import TAG_PARENT, connect, list_versions
from salarymodel.retraining.intake import TAG_EXISTING, TAG_NEW, holdout_mask, stable_share

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _rows(out: str) -> tuple[int, int, int]:
    found = re.search(r"([\d,]+) rows in = ([\d,]+) accepted \+ ([\d,]+) quarantined", out)
    assert found, out
    rows_in, accepted, quarantined = (int(g.replace(",", "")) for g in found.groups())
    assert rows_in == accepted + quarantined
    return rows_in, accepted, quarantined


def _registry(root: Path):
    settings = load_settings(root / "configs" / "salarymodel.yaml")
    client = connect(settings)
    current = champion_version(client, settings)
    versions = [str(v.version) for v in list_versions(client, settings)]
    return client, settings, (str(current.version) if current else None), versions


@pytest.fixture(scope="module")
def base(tmp_path_factory, aijobs_raw, postings_raw):
    """A project whose champion v1 was trained on survey years < 2024 and postings."""
    root = tmp_path_factory.mktemp("retrain")
    make_project(root, aijobs_raw, postings_raw)
    with trained_champion(root, tmp_path_factory):
        yield root


# ----- fast units --------------------------------------------------------------------------
def test_holdout_is_group_aware_stable_and_only_new() -> None:
    from salarymodel.config.settings import load_settings as settings_of

    settings = settings_of(ROOT / "configs" / "salarymodel.yaml")
    groups = [f"g{i // 3}" for i in range(3000)]  # three records per group
    records = pd.DataFrame({"group_id": groups})
    is_new = np.array([i >= 1200 for i in range(3000)])  # group g400 straddles
    mask = holdout_mask(records, is_new, settings)
    assert mask.any() and not mask[~is_new].any()
    held = set(records["group_id"][mask])
    assert "g400" not in held  # a group with an existing record is never held out
    assert not (set(records["group_id"][~mask]) & held)  # groups never straddle
    share = mask[is_new].mean()
    assert abs(share - settings.retraining.holdout_fraction) < 0.08
    assert (holdout_mask(records, is_new, settings) == mask).all()
    assert np.array_equal(
        stable_share(records["group_id"], 1), stable_share(records["group_id"], 1)
    )


def test_reload_accepts_only_loopback_callers() -> None:
    from salarymodel.serving.admin_auth import is_loopback

    for host in ("127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"):
        assert is_loopback(host, {})
    for host in ("10.0.0.1", "192.168.1.2", "8.8.8.8", "::ffff:10.0.0.1", "testclient", "", None):
        assert not is_loopback(host, {})
    assert not is_loopback("127.0.0.1", {"x-forwarded-for": "203.0.113.9"})
    assert not is_loopback("127.0.0.1", {"forwarded": "for=203.0.113.9"})


# ----- the flow ------------------------------------------------------------------------------
def test_corrupted_file_is_quarantined_and_never_promoted(base: Path) -> None:
    _, _, champion, versions = _registry(base)
    new = pd.read_csv(base / "data" / "new.csv", dtype=str, keep_default_na=False)
    corrupt = new.copy()
    bad = corrupt.sample(frac=0.4, random_state=5).index
    corrupt.loc[bad, "salary_in_usd"] = "n/a"
    corrupt.loc[corrupt.index[:7], "experience_level"] = "WIZARD"
    corrupt.to_csv(base / "corrupt.csv", index=False)
    out = invoke_cli("retrain", "--data", str(base / "corrupt.csv"), code=1)
    rows_in, _, quarantined = _rows(out)
    assert rows_in == len(corrupt)
    assert quarantined >= len(set(bad) | set(corrupt.index[:7]))
    first_bad = min(set(bad) | set(corrupt.index[:7])) + 2
    assert f"line {first_bad}: " in out and "salary_in_usd = 'n/a': not a number" in out
    assert f"kept champion v{champion}" in out and "quarantined share" in out
    files = list((base / "models" / "retraining").glob("*/new.aijobs.quarantine.csv"))
    table = pd.read_csv(max(files, key=lambda p: p.stat().st_mtime))
    assert len(table) == quarantined
    wizard = "experience_level = 'WIZARD': not one of EN, MI, SE, EX"
    assert table["reason"].str.contains(wizard).sum() == 7
    assert (
        table.loc[table["line"] == first_bad, "job_title"].item()
        == new.loc[first_bad - 2, "job_title"]
    )
    assert _registry(base)[2:] == (champion, versions)
    assert not list((base / "models").glob("accepted/*/*.csv.gz"))


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda f: f.assign(salary_in_usd="unknown"), "accepted rows: 0 of"),
        (
            # Monthly pay by mistake: every row valid, the median off by 12x.
            lambda f: f.assign(salary_in_usd=(f["salary_in_usd"].astype(float) / 12).round()),
            "median salary (aijobs)",
        ),
    ],
)
def test_implausible_files_say_why_and_keep_the_champion(base: Path, change, why: str) -> None:
    _, _, champion, versions = _registry(base)
    new = pd.read_csv(base / "data" / "new.csv", dtype=str, keep_default_na=False)
    change(new).to_csv(base / "odd.csv", index=False)
    assert why in invoke_cli("retrain", "--data", str(base / "odd.csv"), code=1)
    assert _registry(base)[2:] == (champion, versions)


def test_unreadable_file_fails_clearly(base: Path) -> None:
    before = _registry(base)[2:]
    pd.DataFrame({"title": ["x"], "pay": ["1"]}).to_csv(base / "bad.csv", index=False)
    out = invoke_cli("retrain", "--data", str(base / "bad.csv"), code=2)
    assert "no configured source matches the columns ['title', 'pay']" in out
    out = invoke_cli("retrain", "--data", str(base / "bad.csv"), "--source", "aijobs", code=2)
    assert "missing columns" in out
    (base / "empty.csv").write_text("")
    assert "the file is empty" in invoke_cli("retrain", "--data", str(base / "empty.csv"), code=2)
    new = pd.read_csv(base / "data" / "new.csv", dtype=str, keep_default_na=False)
    new.to_csv(base / "utf16.csv", index=False, encoding="utf-16")
    out = invoke_cli("retrain", "--data", str(base / "utf16.csv"), code=2)
    assert "UTF-16 text; re-save the file as UTF-8" in out
    assert _registry(base)[2:] == before


@pytest.mark.slow
def test_killed_retrain_leaves_registry_and_champion_as_they_were(base: Path) -> None:
    client, settings, champion, versions = _registry(base)
    process = subprocess.Popen(
        [str(BIN / "salarymodel"), "retrain", "--data", str(base / "data" / "new.csv")],
        cwd=base,
        env=project_env(base),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    seen = []
    try:
        deadline = time.monotonic() + 240
        for line in process.stderr:  # progress lines (stderr is not a terminal)
            seen.append(line)
            if "fitting a challenger" in line or time.monotonic() > deadline:
                break
        assert process.poll() is None, "".join(seen)[-2000:]
        os.killpg(process.pid, signal.SIGKILL)  # mid-training
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert any("fitting a challenger" in line for line in seen), "".join(seen)[-2000:]
    assert _registry(base)[2:] == (champion, versions)
    assert not list((base / "models").glob("accepted/*/*.csv.gz"))
    # The interrupted run is left unfinished in the tracking store; it never became a version.
    runs = client.search_runs(
        [client.get_experiment_by_name(settings.tracking.experiment).experiment_id],
        filter_string="tags.kind = 'retrain'",
    )
    assert any(r.info.status == "RUNNING" for r in runs)


@contextmanager
def cheap_ranges(root: Path) -> Iterator[None]:
    """Range models of three boosting rounds, not 150, for one block: the retrain's gate
    judges the point estimates on the held-out and existing rows, which they do not touch."""
    path = root / "configs" / "salarymodel.yaml"
    original = path.read_text()
    assert "  num_boost_round: 150\n" in original
    path.write_text(original.replace("  num_boost_round: 150\n", "  num_boost_round: 3\n", 1))
    config._load_settings.cache_clear()
    try:
        yield
    finally:
        path.write_text(original)
        config._load_settings.cache_clear()


def test_retrain_with_later_rows_promotes(base: Path) -> None:
    client, settings, champion, versions = _registry(base)
    with cheap_ranges(base):
        out = invoke_cli("retrain", "--data", str(base / "data" / "new.csv"))
    print(out)  # the gate's comparison, for the record (pytest -s)
    _, _, now, after = _registry(base)
    assert len(after) == len(versions) + 1 and now == after[-1] != champion
    assert _rows(out)[0] == 1700
    assert "repeat records already in the training data" in out
    assert "promoted version" in out
    version = client.get_model_version(settings.tracking.registered_model, now)
    run = client.get_run(version.run_id)
    tags, metrics = run.data.tags, run.data.metrics
    assert tags[TAG_PARENT] == champion and tags["kind"] == "retrain"
    assert tags[TAG_EXISTING] != tags[TAG_NEW]
    # Both models scored the same held-out rows; the challenger won.
    held = metrics["holdout.rows"]
    assert held >= settings.retraining.min_holdout_rows
    assert metrics["holdout.challenger.all.mae_usd"] <= metrics["holdout.champion.all.mae_usd"]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "drift")}
    assert {"drift/drift.json", "drift/drift.html"} <= artifacts
    assert "fused_lightgbm.all.mae_usd" in metrics  # cross-validated like `train`
    # Each stage's seconds are logged; they run one after another within the total.
    stages = ("data", "drift", "holdout_comparison", "evaluate_and_fit_wall")
    assert all(metrics[f"seconds.{s}"] > 0 for s in stages)
    assert metrics["seconds.total"] >= sum(metrics[f"seconds.{s}"] for s in stages)
    kept = list((base / "models").glob("accepted/aijobs/*.csv.gz"))
    assert len(kept) == 1
    # The accepted rows are now existing data: the same file again brings nothing new.
    again = invoke_cli("retrain", "--data", str(base / "data" / "new.csv"), code=1)
    assert "new records: 0 records not already in the training data" in again
    assert _registry(base)[2] == now


def _two_champions(base: Path) -> None:
    _, _, _, versions = _registry(base)
    if len(versions) < 2:  # run on its own: a second training on the same data passes the gate
        invoke_cli("train", "--no-baselines")


def test_versions_promote_and_rollback(base: Path) -> None:
    _two_champions(base)
    _, _, champion, versions = _registry(base)
    listed = invoke_cli("versions")
    assert f"{champion} *" in listed and "MAE all" in listed
    rolled = invoke_cli("rollback")
    _, _, previous, _ = _registry(base)
    assert previous != champion and f"champion is now v{previous} (was v{champion})" in rolled
    if previous == versions[0]:
        refused = invoke_cli("rollback", code=2)
        assert "nothing to roll back to" in refused
    missing = invoke_cli("promote", "99", code=2)
    assert "has no version '99'" in missing and ", ".join(versions) in missing
    invoke_cli("promote", champion)
    assert _registry(base)[2] == champion
    invoke_cli("rollback")
    assert _registry(base)[2] == previous
    invoke_cli("promote", champion)


# ----- the service through a promotion ----------------------------------------------------------
JOB = {"job_title": "Senior Data Scientist", "country": "US", "experience_level": "SE"}


@pytest.mark.slow
def test_service_answers_throughout_a_promotion(base: Path) -> None:
    _two_champions(base)
    _, _, before, versions = _registry(base)
    other = next(v for v in reversed(versions) if v != before)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = base / "serve.log"
    process = subprocess.Popen(
        [str(BIN / "salarymodel"), "serve", "--port", str(port), "--workers", "2"],
        cwd=base,
        env=project_env(base),
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    answers: list[tuple[int, str | None]] = []
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(timeout=30) as session:
            for _ in range(20_000):  # bounded in count and time
                if stop.is_set():
                    return
                try:
                    reply = session.post(f"{url}/predict", json=JOB)
                    body = reply.json() if reply.status_code == 200 else {}
                    answers.append((reply.status_code, body.get("model_version")))
                except httpx.HTTPError as error:
                    answers.append((0, repr(error)))

    try:
        wait_for_model(url, process, 180)
        worker = threading.Thread(target=hammer)
        worker.start()
        time.sleep(1.0)
        relayed = httpx.post(
            f"{url}/admin/reload", headers={"x-forwarded-for": "203.0.113.9"}, timeout=30
        )
        assert relayed.status_code == 403
        invoke_cli("promote", other)
        token = (base / load_settings().serving.reload_token_file).read_text().strip()
        reloaded = httpx.post(
            f"{url}/admin/reload", headers={"authorization": f"Bearer {token}"}, timeout=120
        )
        assert reloaded.status_code == 200, reloaded.text
        assert reloaded.json()["model_version"] == other
        assert reloaded.json()["previous_version"] == before
        switched_at = len(answers)
        limit = time.monotonic() + 60
        # Every worker follows: the last 50 answers all come from the new champion.
        while time.monotonic() < limit:
            tail = answers[-50:]
            if len(answers) > switched_at + 50 and all(v == other for _, v in tail):
                break
            time.sleep(0.2)
        stop.set()
        worker.join(timeout=60)
    finally:
        stop.set()
        stop_process(process)
        invoke_cli("promote", before)
    failures = [a for a in answers if a[0] != 200]
    assert not failures, failures[:5]
    seen = [v for _, v in answers]
    assert before in seen and other in seen
    assert all(v == other for v in seen[-50:])
    print(f"{len(answers)} answers during the promotion, none failed; v{before} -> v{other}")
