"""Collect each test file on its own: ``python tests/helpers/collect_each.py FILE...``.

Prints one line per file, ``<exit code> <file>``, and exits 1 if any failed
(``--no-preload`` first: load no library up front, for a few small files).
Each file is collected by ``pytest --collect-only`` in a fresh child forked from
this process, which has loaded only third-party libraries (no test module, no
tests/ folder on sys.path): a test file that needs another test file imported
first fails here as it would run alone, and the libraries' import time is paid
once instead of once per file.
"""

from __future__ import annotations

import importlib
import os
import sys

# Heavy third-party imports the test modules share; none of them is ours.
PRELOAD = (
    "numpy", "pandas", "sklearn", "lightgbm", "httpx", "pytest", "pydantic", "yaml",
    # pytest plugins every child would load again (entry points): half the time per file.
    "hypothesis", "schemathesis", "schemathesis.pytest.plugin", "mlflow", "typeguard", "xdist",
    "pytest_timeout",
)  # fmt: skip
# What collecting does not need, and each child paid again: rewriting the asserts of
# every plugin module (compiled anew per child) and the forced garbage collections
# at the end of a session (they walk the whole preloaded heap).
COLLECT_OPTIONS = ("--collect-only", "-q", "-p", "no:cacheprovider", "--assert=plain",
                   "-p", "no:unraisableexception", "-p", "no:threadexception")  # fmt: skip


def collect_alone(path: str) -> int:
    """``pytest --collect-only`` of one file in a forked child; its exit code."""
    pid = os.fork()
    if pid == 0:  # the child: collect, then leave without running the parent's atexit
        import pytest

        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - the child exits right after
        code = pytest.main([*COLLECT_OPTIONS, path])
        os._exit(int(code))
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def main(arguments: list[str]) -> int:
    """Collect every path alone; 0 when all collected (``--no-preload``: load no library
    first, for a few small files)."""
    paths = [a for a in arguments if a != "--no-preload"]
    for name in PRELOAD if paths == arguments else ():
        importlib.import_module(name)
    failed = 0
    for path in paths:
        code = collect_alone(path)
        print(code, path, flush=True)
        failed += code != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
