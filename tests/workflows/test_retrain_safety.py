"""A retrain killed at any step leaves a champion with the data it was trained on.

The publishing steps of a promoted retrain (``publishing.PUBLISH_STEPS``) are
killed one by one with SIGKILL (the retrain kills itself at the step named in
``SALARYMODEL_TEST_KILL_AT``). After each kill, once pending rows are settled as
the next retrain settles them, the champion is either the old one or the new
one, and the existing training data is exactly what it was trained on: its
fingerprint is the champion run's ``data_fingerprint``. A retrain after the
last kill settles what that kill left and promotes.

Each retrain is its own process, forked from one that imported the CLI's modules
once (helpers/forked_cli.py): a SIGKILL ends it as it ends the console script.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from multiprocessing.context import ForkServerContext
from pathlib import Path

import pandas as pd
import pytest
from helpers import forked_cli
from helpers.retrain_project import make_fast_project, project_env, trained_champion

from salarymodel.config.settings import load_settings, load_sources
from salarymodel.data.dataset import load_training_data, pending_accepted
from salarymodel.promotion.publishing import KILL_AT_ENV, PUBLISH_STEPS
from salarymodel.registry.champion import champion_version
from salarymodel.registry.store import TAG_FINGERPRINT, connect, list_versions
from salarymodel.retraining.pending import RetrainBusy, reconcile_accepted, retrain_lock

ROOT = Path(__file__).resolve().parents[2]
CHUNK = 400  # 2024 survey rows per new file: about 120 held out, enough to judge
# Steps after which the new version is champion (the alias has moved).
NEW_CHAMPION_FROM = PUBLISH_STEPS.index("alias_moved")


def _new_files(root: Path, aijobs_raw: pd.DataFrame) -> None:
    """One file of 2024 survey rows per kill, and one for the retrain after the last."""
    later = aijobs_raw[aijobs_raw["work_year"].astype(int) == 2024].sample(
        CHUNK * (len(PUBLISH_STEPS) + 1), random_state=13
    )
    for i in range(len(PUBLISH_STEPS) + 1):
        later.iloc[i * CHUNK : (i + 1) * CHUNK].to_csv(root / f"new{i}.csv", index=False)


@pytest.fixture(scope="module")
def project(tmp_path_factory, aijobs_raw, postings_raw):
    root = tmp_path_factory.mktemp("retrain-kill")
    # Cheap to train, and a lenient gate: these tests are about what a kill leaves,
    # so every retrain here is meant to pass.
    make_fast_project(root, aijobs_raw, postings_raw)
    _new_files(root, aijobs_raw)
    with trained_champion(root, tmp_path_factory):
        yield root


@pytest.fixture(scope="module")
def forks() -> Iterator[ForkServerContext]:
    with forked_cli.fork_server(tuple(forked_cli.FITTING)) as context:
        yield context


def _state() -> tuple[str, list[str], str]:
    """(champion version, version numbers, the champion run's data fingerprint)."""
    settings = load_settings()
    client = connect(settings)
    current = champion_version(client, settings)
    versions = [str(v.version) for v in list_versions(client, settings)]
    tags = client.get_run(current.run_id).data.tags
    return str(current.version), versions, tags[TAG_FINGERPRINT]


def _data_fingerprint() -> str:
    """The fingerprint of the existing training data a retrain reads."""
    return str(load_training_data(load_settings(), load_sources()).fingerprint["hash"])


def _accepted(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "models").glob("accepted/*/*.csv.gz"))


def _retrain(
    forks: ForkServerContext, root: Path, file: Path, kill_at: str | None
) -> forked_cli.Completed:
    env = project_env(root) | ({KILL_AT_ENV: kill_at} if kill_at else {})
    return forked_cli.run(forks, ["retrain", "--data", str(file)], env, root, timeout=600)


def test_retrain_lock_admits_one_retrain_at_a_time(project: Path) -> None:
    settings = load_settings()
    busy = pytest.raises(RetrainBusy, match="another retrain of this project is running")
    with retrain_lock(settings), busy, retrain_lock(settings):
        pass
    with retrain_lock(settings):  # released on exit
        pass


@pytest.mark.slow
def test_a_kill_at_any_step_leaves_a_champion_with_its_data(
    project: Path, forks: ForkServerContext
) -> None:
    settings = load_settings()
    # The invariant holds before the first kill; each kill's turn ends checking it again
    # (the next turn starts from that state: one load of the training data less per turn).
    assert _data_fingerprint() == _state()[2]
    for i, step in enumerate(PUBLISH_STEPS):
        champion, versions, _ = _state()
        accepted = _accepted(project)
        killed = _retrain(forks, project, project / f"new{i}.csv", kill_at=step)
        assert killed.returncode == -signal.SIGKILL, (step, killed.stderr[-3000:])
        now, after, trained_on = _state()
        registered = [v for v in after if v not in versions]
        if PUBLISH_STEPS.index(step) >= NEW_CHAMPION_FROM:
            assert registered == [now] and now != champion, step
        else:
            assert now == champion, step
            assert len(registered) == (1 if step == "registered" else 0), step
        assert len(pending_accepted(settings)) == (0 if step == "run_complete" else 1), step
        if step == PUBLISH_STEPS[-1]:
            break  # the retrain below settles this one
        # Settle the pending rows as the next retrain does first; then the data
        # is exactly what the champion was trained on.
        settled = reconcile_accepted(connect(settings), settings)
        assert not pending_accepted(settings)
        new_champion = now != champion
        assert len(settled.committed) == int(new_champion), step
        assert _accepted(project)[: len(accepted)] == accepted
        assert len(_accepted(project)) == len(accepted) + int(new_champion), step
        assert _data_fingerprint() == trained_on, step
        print(f"killed at {step}: champion v{now}, {len(_accepted(project))} accepted files")

    # The last kill came after the alias moved: its rows are still pending.
    champion, versions, trained_on = _state()
    accepted = _accepted(project)
    done = _retrain(forks, project, project / f"new{len(PUBLISH_STEPS)}.csv", kill_at=None)
    assert done.returncode == 0, done.stderr[-3000:]
    said = " ".join(done.stderr.split())
    assert "rows of a champion whose retrain stopped before keeping them" in said
    assert "promoted version" in said
    now, after, trained_on = _state()
    assert now == after[-1] != champion and len(after) == len(versions) + 1
    assert not pending_accepted(settings)
    assert len(_accepted(project)) == len(accepted) + 2  # the settled file and its own
    assert _data_fingerprint() == trained_on
