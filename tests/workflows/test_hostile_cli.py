"""`retrain`, `predict` and `drift` fuzzed with the hostile-file corpus, as child processes.

One small trained project (helpers/retrain_project.make_fast_project: fast
settings, and the file cap lowered so a small generated bomb passes it). Each case of
tests/data/hostile/corpus.py goes through each command; for every run: the
exit status is the documented one (retrain: 1 champion kept, 2 the file
could not be used; predict and drift: 0, or 2), never a traceback; exit 2
prints exactly one ``error:`` line; the child's peak memory stays bounded;
the registry and models/accepted are unchanged (and mlflow.db byte for byte
when the file was refused); a written CSV holds no live formula.

Each command is its own child process. `predict` of the gzip bomb runs through the
console script (a fresh interpreter); the others in children forked from one process
that imported the commands' modules once (helpers/forked_cli.py: the same
``main``, streams, exit status and sampled peak memory, without 3.5 CPU-seconds
of imports per command).
"""

from __future__ import annotations

import shutil
import sqlite3
import sys
import time
from multiprocessing.context import ForkServerContext
from pathlib import Path

import pandas as pd
import pytest
from data.hostile import corpus
from helpers import forked_cli
from helpers.retrain_project import (
    MAX_FILE_BYTES,
    make_fast_project,
    project_env,
    trained_champion,
)

from salarymodel.data.csv_output import formula_mask

BIN = Path(sys.executable).parent
BOMB_BYTES = 128 << 20  # 4x the fast project's lowered MAX_FILE_BYTES
PEAK_MB = 1024
# Exit status per case: retrain, predict, drift. Retrain keeps the champion (1) for a
# file whose rows are quarantined (or, for the duplicates, one record: nothing to judge);
# drift refuses (2) a file with no row left to compare.
EXPECTED = {
    "formulas": (1, 0, 0),
    "nul_bytes": (2, 2, 2),
    "mixed_encoding": (1, 0, 0),
    "salaries_1e12": (1, 0, 2),
    "duplicates": (1, 0, 0),
    "gzip_bomb": (2, 2, 2),
    "skills_deep_nesting": (1, 0, 2),
    "skills_minus_run": (1, 0, 2),
    "skills_plus_chain": (1, 0, 2),
}
assert set(EXPECTED) == set(corpus.CASES)
CONSOLE_SCRIPT = ("gzip_bomb", "predict")  # the one run through the real binary


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, aijobs_raw, postings_raw):
    """(project root, corpus files): a trained champion, the caps lowered."""
    root = tmp_path_factory.mktemp("hostile")
    make_fast_project(root, aijobs_raw, postings_raw)  # test_retrain_safety's: one champion
    files = corpus.build(root / "corpus", BOMB_BYTES)
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(Path(__file__).parents[1] / "service"))  # test_retraining's env
        with trained_champion(root, tmp_path_factory), forked_cli.fork_server() as forks:
            yield root, files, forks


def _state(root: Path) -> tuple[object, ...]:
    with sqlite3.connect(root / "mlflow.db") as db:
        versions = db.execute("SELECT name, version FROM model_versions ORDER BY 1, 2").fetchall()
        aliases = db.execute("SELECT alias, version FROM registered_model_aliases").fetchall()
    accepted = root / "models" / "accepted"
    files = accepted.rglob("*") if accepted.exists() else []
    kept = sorted(str(p) for p in files if not p.name.startswith("."))  # not the retrain lock
    return versions, sorted(aliases), kept


def _probe_forked(
    forks: ForkServerContext, argv: list[str], env: dict[str, str], cwd: Path
) -> corpus.Probe:
    """``corpus.probe`` for ``salarymodel <argv>`` in a child of the fork server."""
    start = time.perf_counter()
    out, err = cwd / ".probe.out", cwd / ".probe.err"
    child = forked_cli.start(forks, argv, env, cwd, out, err)
    assert child.pid is not None
    peak, killed = corpus.sample_peak(child.pid, 4 * PEAK_MB, start, 900, child.join)
    assert child.exitcode is not None
    return corpus.Probe(
        child.exitcode, peak, time.perf_counter() - start, out.read_text(errors="replace"),
        err.read_text(errors="replace"), killed,
    )  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("case", corpus.CASES)
def test_hostile_file_through_retrain_predict_and_drift(hostile, case: str) -> None:
    root, files, forks = hostile
    if case == "gzip_bomb":
        assert files[case].stat().st_size < 2 << 20 < MAX_FILE_BYTES < BOMB_BYTES
    commands, script = corpus.commands([]), corpus.commands([str(BIN / "salarymodel")])
    for name, expected in zip(("retrain", "predict", "drift"), EXPECTED[case], strict=True):
        out = root / "out" / f"{case}.{name}"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        state, db = _state(root), (root / "mlflow.db").read_bytes()
        env = project_env(root)
        if (case, name) == CONSOLE_SCRIPT:
            result = corpus.probe(script[name](files[case], out), env, root, 4 * PEAK_MB)
        else:
            result = _probe_forked(forks, commands[name](files[case], out), env, root)
        said = f"{case} {name}: {result.stderr[-2000:]}"
        print(f"{case} {name}: exit {result.returncode} in {result.seconds:.1f} s")
        assert result.returncode == expected, said
        assert not result.traceback, said
        # Above 50 MB: the samples were taken (Python with pandas alone is more).
        assert 50 < result.peak_mb < PEAK_MB, f"{said} peak {result.peak_mb:.0f} MB"
        assert _state(root) == state, said
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        if expected == 2:
            assert len(errors) == 1, said
            assert (root / "mlflow.db").read_bytes() == db, said
        if name == "predict" and expected == 0:
            scored = pd.read_csv(out / "scored.csv", dtype=str, keep_default_na=False)
            assert len(scored) == len(pd.read_csv(files[case], dtype=str, encoding="latin-1"))
            assert not any(formula_mask(scored[c]).any() for c in scored.columns), said
            assert "'=" in (out / "scored.csv").read_text() or case != "formulas"


def test_an_unexpected_error_is_one_error_line_and_exit_2(monkeypatch, capsys) -> None:
    import salarymodel.cli.app as cli

    def crash() -> None:
        raise RecursionError("maximum recursion depth exceeded\nwhile parsing")

    monkeypatch.setattr(cli, "app", crash)
    with pytest.raises(SystemExit) as stopped:
        cli.main()
    assert stopped.value.code == 2
    printed = capsys.readouterr().err.splitlines()
    assert printed == [
        "error: unexpected RecursionError: maximum recursion depth exceeded while parsing"
    ]


def test_a_configuration_error_is_one_line_however_long(monkeypatch, capsys) -> None:
    import salarymodel.cli.app as cli
    from salarymodel.config.settings import ConfigError

    path = "/tmp/" + "a-long-project-folder-name/" * 6 + "configs/salarymodel.yaml"

    def refuse() -> None:
        raise ConfigError(f"no {path}: run from the project folder [or set SALARYMODEL_ROOT]")

    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setattr(cli, "app", refuse)
    with pytest.raises(SystemExit) as stopped:
        cli.main()
    assert stopped.value.code == 2
    printed = capsys.readouterr().err.splitlines()
    assert printed == [f"error: no {path}: run from the project folder [or set SALARYMODEL_ROOT]"]


@pytest.mark.parametrize("command", ["predict", "drift"])
def test_a_file_refused_at_reading_imports_no_mlflow(command: str, tmp_path: Path) -> None:
    """Imports follow use: a file refused before any model is needed costs no MLflow
    (nor sklearn, shap) import, the slowest part of a command's start."""
    import subprocess

    nul = Path(corpus.__file__).parent / corpus.KEPT["nul_bytes"]
    argv = corpus.commands(["salarymodel"])[command](nul, tmp_path)
    code = (
        "import sys\n"
        "from salarymodel.cli.app import main\n"
        f"sys.argv = {argv!r}\n"
        "try:\n    main()\nexcept SystemExit as done:\n    print('exit', done.code)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'mlflow', 'sklearn', 'shap'}))\n"
    )
    root = tmp_path / "project"  # configs and data, no store: nothing to load
    root.mkdir()
    for folder in ("configs", "data"):
        (root / folder).symlink_to(Path(__file__).parents[2] / folder)
    env = {**project_env(root), "COLUMNS": "1000"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.stdout.splitlines() == ["exit 2", "[]"], done.stdout + done.stderr
    assert done.stderr.count("error:") == 1, done.stderr
