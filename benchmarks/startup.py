"""Start-up, weight and training time, as a new user meets them.

Measures, on this machine, in a throw-away project root (the project's own
registry is never touched):

- ``salarymodel --help`` and ``import salarymodel.cli.app`` (median of repeats);
- ``salarymodel predict`` on a 1,597-row survey CSV (the survey file's last rows):
  the first run after training (through MLflow), then the median of repeats
  (the champion from the registry cache);
- ``salarymodel versions``;
- ``salarymodel serve`` (2 workers) until ``/readyz`` answers, and the
  resident memory (RSS) of the arbiter and each worker once ready;
- with ``--train``: ``salarymodel train`` on all shipped data (wall time and
  the seconds per step it prints); without it, the champion is trained on a
  sample so the other figures have a model to load.

    .venv/bin/python benchmarks/startup.py [--train] [--repeats 5] [--json out.json]

Figures are wall-clock seconds; they depend on what else the machine does, so
the script prints the machine and its load average with them.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
from serving import free_port, machine, stop, tree_rss_mb

from salarymodel.serving.readiness import NotReady, wait_until_ready

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SURVEY = ROOT / "data" / "aijobs_salaries_2020_2024.csv.gz"
PREDICT_ROWS = 1_597


def project(folder: Path) -> dict[str, str]:
    """A throw-away project root (configs copied, data linked) and its environment."""
    shutil.copytree(ROOT / "configs", folder / "configs")
    (folder / "data").symlink_to(ROOT / "data")
    return {
        **os.environ,
        "SALARYMODEL_ROOT": str(folder),
        "BENTOML_HOME": str(folder / "bentoml_home"),
        "BENTOML_DO_NOT_TRACK": "True",
    }


def timed(command: Sequence[str], env: dict[str, str], cwd: Path) -> tuple[float, str]:
    """Wall seconds of one command that must succeed, and what it printed."""
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return seconds, done.stdout + done.stderr


def median_of(repeats: int, command: Sequence[str], env: dict[str, str], cwd: Path) -> float:
    return statistics.median(timed(command, env, cwd)[0] for _ in range(repeats))


def survey_csv(folder: Path) -> Path:
    """The survey file's last 1,597 rows as a plain CSV (its header kept)."""
    with gzip.open(SURVEY, "rt", encoding="utf-8") as handle:
        lines = handle.readlines()
    path = folder / "survey_tail.csv"
    path.write_text(lines[0] + "".join(lines[-PREDICT_ROWS:]), encoding="utf-8")
    return path


def train_seconds(output: str) -> dict[str, float]:
    """The 'seconds: data 4.0, cross_validation 62.0, ...' line `train` prints."""
    text = " ".join(output.split())
    found = re.search(r"seconds: (.*?)(?:$|\n)", text)
    if not found:
        return {}
    pairs = re.findall(r"([a-z_]+) ([0-9.]+)", found.group(1))
    return {name: float(value) for name, value in pairs}


def serve_ready(env: dict[str, str], cwd: Path, workers: int) -> dict[str, object]:
    """Seconds from `salarymodel serve` to /readyz, and RSS per process once ready."""
    port = free_port()
    log = cwd / "serve.log"
    started = time.perf_counter()
    command = [str(BIN / "salarymodel"), "serve", "--port", str(port), "--workers", str(workers)]
    process = subprocess.Popen(
        command, env=env, cwd=cwd, stdout=log.open("w"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        try:
            wait_until_ready(f"http://127.0.0.1:{port}", process, seconds=600, pause=0.1)
        except NotReady as error:
            raise SystemExit(f"{error}:\n{log.read_text()[-3000:]}") from None
        ready = time.perf_counter() - started
        # Every worker answers once: its model and caches are in memory.
        for _ in range(20):
            httpx.post(f"http://127.0.0.1:{port}/explain", json={"job_title": "Data Scientist"})
        total, parts = tree_rss_mb(process.pid)
        return {"ready_s": ready, "rss_total_mb": total, "rss_mb": parts}
    finally:
        stop(process)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", action="store_true", help="time training on all shipped data")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    cli = str(BIN / "salarymodel")
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="salarymodel-startup-") as tmp:
        folder = Path(tmp)
        env = project(folder)
        results["help_s"] = median_of(args.repeats, [cli, "--help"], env, folder)
        results["import_cli_s"] = median_of(
            args.repeats, [str(BIN / "python"), "-c", "import salarymodel.cli.app"], env, folder
        )
        train = [cli, "train"] if args.train else [cli, "train", "--sample", "3000"]
        seconds, output = timed(train, env, folder)
        results["train"] = {"all_data": args.train, "wall_s": seconds, **train_seconds(output)}
        csv = survey_csv(folder)
        predict = [cli, "predict", "--input", str(csv), "--output", str(folder / "out.csv")]
        # The first run after training reads the champion through MLflow and fills the
        # registry cache; later runs read the alias from the store and the cached bundle.
        results["predict_first_1597_s"] = timed(predict, env, folder)[0]
        results["predict_1597_s"] = median_of(args.repeats, predict, env, folder)
        results["versions_s"] = median_of(args.repeats, [cli, "versions"], env, folder)
        results["serve"] = serve_ready(env, folder, args.workers)
    results["machine"] = machine()
    results["load_average"] = os.getloadavg()
    serve = results["serve"]
    print(f"machine: {results['machine']}; load average {os.getloadavg()[0]:.2f}")
    print("| what | seconds or MB |\n| --- | --- |")
    print(f"| `salarymodel --help` | {results['help_s']:.2f} s |")
    print(f"| `import salarymodel.cli.app` | {results['import_cli_s']:.2f} s |")
    first, later = results["predict_first_1597_s"], results["predict_1597_s"]
    print(f"| `salarymodel predict` ({PREDICT_ROWS:,} survey rows), first / later | "
          f"{first:.2f} s / {later:.2f} s |")  # fmt: skip
    print(f"| `salarymodel versions` | {results['versions_s']:.2f} s |")
    print(f"| `salarymodel serve` to ready ({args.workers} workers) | {serve['ready_s']:.1f} s |")
    parts = " + ".join(f"{mb:.0f}" for mb in serve["rss_mb"])
    print(f"| service RSS (arbiter + workers) | {serve['rss_total_mb']:.0f} MB ({parts}) |")
    train_result = results["train"]
    steps = ", ".join(f"{k} {v:.1f}" for k, v in train_result.items() if k not in ("all_data",))
    what = "all shipped data" if args.train else "a 3,000-row sample (use --train for all)"
    print(f"| `salarymodel train` on {what} | {steps} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
