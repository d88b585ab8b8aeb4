"""Probe `retrain`, `predict` and `drift` with the hostile-file corpus; print the table.

    python benchmarks/hostile_files.py [--checkout DIR] [--bomb-gb 3.2] [--ceiling-mb 3000]

For the code in ``--checkout`` (default: this one; another checkout's code is
run with its own ``src`` first on PYTHONPATH and its own configs), the script
makes a small project (survey rows before 2024 and postings, as
tests/workflows/test_retraining.py does), trains its champion with the CLI,
then runs each command on each case of tests/data/hostile/corpus.py as a
child process: the gzip bomb at full size (3.2 GB of text in a few MB).
Per probe: exit status, whether a traceback was printed, the child's peak RSS
(``wait4``), seconds, and whether the registry (registered versions and
aliases, and the bytes of mlflow.db) and models/accepted were unchanged. A
child past ``--ceiling-mb`` is killed (so probing unpatched code cannot take
the machine down) and shown as ``killed > N MB``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sqlite3
import sys
import tempfile
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "data"))

from hostile import corpus  # noqa: E402 (the corpus lives with the tests)

FAST = (
    ("num_threads: 2", "num_threads: 1"),
    ("sample_size: 5000", "sample_size: 300"),
    ("min_train_rows: 1000", "min_train_rows: 300"),
    ("min_test_rows: 200", "min_test_rows: 100"),
    ("max_folds_per_source: 3", "max_folds_per_source: 1"),
    ("  num_boost_round: 200\n", "  num_boost_round: 60\n"),
    ("  num_boost_round: 150\n", "  num_boost_round: 40\n"),
    ("  n_folds: 5\n", "  n_folds: 2\n"),
)


def make_project(root: Path, checkout: Path) -> None:
    """The checkout's configs with small real data and fast settings."""
    shutil.copytree(checkout / "configs", root / "configs")
    data = root / "data"
    data.mkdir()
    # The reference tables the features read (BLS wages: features.location.bls_table).
    for table in (checkout / "data").glob("bls_*.csv.gz"):
        shutil.copy(table, data)
    survey = pd.read_csv(corpus.SURVEY, dtype=str, keep_default_na=False)
    old = survey[survey["work_year"].astype(int) < 2024].sample(2000, random_state=1)
    old.to_csv(data / "aijobs_old.csv", index=False)
    postings = pd.read_csv(corpus.POSTINGS, dtype=str, keep_default_na=False)
    postings.sample(1200, random_state=1).to_csv(data / "postings.csv", index=False)
    sources = (root / "configs" / "sources.yaml").read_text()
    sources = sources.replace("data/aijobs_salaries_2020_2024.csv.gz", "data/aijobs_old.csv")
    sources = sources.replace("data/data_jobs_2023_annual_salary.csv.gz", "data/postings.csv")
    (root / "configs" / "sources.yaml").write_text(sources)
    settings = (root / "configs" / "salarymodel.yaml").read_text()
    for old_text, new_text in FAST:
        settings = settings.replace(old_text, new_text)
    (root / "configs" / "salarymodel.yaml").write_text(settings)


def environment(root: Path, checkout: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(checkout / "src"),
        "SALARYMODEL_ROOT": str(root),
        "BENTOML_HOME": str(root / "bentoml_home"),
        "GIT_PYTHON_REFRESH": "quiet",
        "COLUMNS": "200",
    }


def registry_state(root: Path) -> tuple[object, ...]:
    """Registered versions and aliases (read with sqlite3: no MLflow needed)."""
    with sqlite3.connect(root / "mlflow.db") as db:
        versions = db.execute("SELECT name, version FROM model_versions ORDER BY 1, 2").fetchall()
        aliases = db.execute("SELECT alias, version FROM registered_model_aliases").fetchall()
    return tuple(versions), tuple(sorted(aliases))


def accepted_state(root: Path) -> tuple[tuple[str, int], ...]:
    folder = root / "models" / "accepted"
    files = sorted(folder.rglob("*")) if folder.exists() else []
    return tuple(
        (str(p.relative_to(folder)), p.stat().st_size)
        for p in files
        if p.is_file() and not p.name.startswith(".")  # not the retrain lock
    )


def db_digest(root: Path) -> str:
    return hashlib.sha256((root / "mlflow.db").read_bytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", type=Path, default=ROOT)
    parser.add_argument("--work", type=Path, default=None, help="folder to work in (kept)")
    parser.add_argument("--bomb-gb", type=float, default=3.2, help="the bomb's decompressed GB")
    parser.add_argument("--ceiling-mb", type=float, default=3000)
    parser.add_argument("--cases", nargs="*", default=list(corpus.CASES))
    parser.add_argument("--commands", nargs="*", default=["retrain", "predict", "drift"])
    args = parser.parse_args()
    checkout = args.checkout.resolve()
    work = args.work or Path(tempfile.mkdtemp(prefix="hostile-"))
    root = work / "project"
    env = environment(root, checkout)
    cli = [sys.executable, "-m", "salarymodel.cli.app"]
    if not (root / "mlflow.db").exists():
        make_project(root, checkout)
        trained = corpus.probe([*cli, "train", "--no-baselines"], env, root, 1e9, timeout=3600)
        if trained.returncode != 0:
            raise SystemExit(f"training failed:\n{trained.stderr[-3000:]}")
    files = corpus.build(work / "corpus", int(args.bomb_gb * 1e9))
    bomb = files["gzip_bomb"]
    print(f"code: {checkout}; project: {root}")
    print(f"gzip bomb: {bomb.stat().st_size / 1e6:.1f} MB on disk, {args.bomb_gb} GB of text")
    print(
        "| case | command | exit | traceback | peak RSS (MB) | seconds "
        "| registry unchanged | mlflow.db bytes unchanged | accepted unchanged |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for case in args.cases:
        for name in args.commands:
            out = work / "out" / f"{case}.{name}"
            out.mkdir(parents=True, exist_ok=True)
            before = registry_state(root), db_digest(root), accepted_state(root)
            command = corpus.commands(cli)[name](files[case], out)
            result = corpus.probe(command, env, root, args.ceiling_mb, timeout=1800)
            after = registry_state(root), db_digest(root), accepted_state(root)
            status = (
                f"killed > {result.killed_at_mb:,.0f} MB"
                if result.killed_at_mb
                else str(result.returncode)
            )
            same = ["yes" if b == a else "no" for b, a in zip(before, after, strict=True)]
            print(
                f"| {case} | {name} | {status} | {'yes' if result.traceback else 'no'} "
                f"| {result.peak_mb:,.0f} | {result.seconds:,.1f} | {' | '.join(same)} |",
                flush=True,
            )
            last = [line for line in result.stderr.splitlines() if line.strip()][-1:]
            print(f"<!-- {case} {name}: {last[0][:300] if last else ''} -->", flush=True)


if __name__ == "__main__":
    main()
