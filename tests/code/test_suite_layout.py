"""Every test file runs on its own: shared helpers live in tests/helpers and
conftest.py, and no test module imports another test module."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
COLLECT_EACH = TESTS / "helpers" / "collect_each.py"


def _test_files() -> list[Path]:
    """The test modules (the files pytest collects)."""
    return sorted(TESTS.rglob("test_*.py"))


def imports_of_test_modules(source: str) -> list[str]:
    """The modules a source imports (anywhere, function bodies too) that are test modules."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module]
        elif isinstance(node, ast.ImportFrom):  # relative: the names are modules too
            names = [alias.name for alias in node.names]
        else:
            continue
        found += [n for n in names if any(p.startswith("test_") for p in n.split("."))]
    return found


def test_no_test_module_imports_another() -> None:
    sources = [*_test_files(), *(TESTS / "helpers").glob("*.py"), *TESTS.rglob("conftest.py")]
    offenders = {
        str(path.relative_to(TESTS)): imported
        for path in sources
        if (imported := imports_of_test_modules(path.read_text()))
    }
    assert offenders == {}


@pytest.mark.parametrize(
    "source",
    [
        "from test_service import project_env",
        "import test_retraining",
        "def f():\n    from test_retraining import make_project",
        "from tests.service.test_service import JOB",
        "from . import test_geography",
    ],
)
def test_the_import_check_says_no_to_a_test_module_import(source: str) -> None:
    assert imports_of_test_modules(source)


def test_the_import_check_lets_helpers_through() -> None:
    assert imports_of_test_modules("from helpers.served import JOB\nimport pytest") == []


def _collect_each(paths: list[Path], *options: str) -> dict[str, int]:
    done = subprocess.run(
        [sys.executable, str(COLLECT_EACH), *options, *map(str, paths)],
        cwd=TESTS.parent, capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    codes = dict(line.split(" ", 1)[::-1] for line in done.stdout.splitlines())
    assert set(codes) == set(map(str, paths)), done.stdout + done.stderr[-2000:]
    return {path: int(code) for path, code in codes.items()}


@pytest.mark.slow
def test_every_test_file_collects_on_its_own() -> None:
    codes = _collect_each(_test_files())
    assert {path: code for path, code in codes.items() if code != 0} == {}


@pytest.mark.slow  # two pytest start-ups (plugins load): 18 s each measured under load
def test_collecting_alone_fails_for_a_file_that_needs_another_test_file(tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    (tmp_path / "one" / "test_one.py").write_text("SHARED = 1\n\ndef test_a():\n    pass\n")
    needy = tmp_path / "two" / "test_two.py"
    needy.write_text("from test_one import SHARED\n\ndef test_b():\n    assert SHARED\n")
    alone = tmp_path / "one" / "test_one.py"
    assert _collect_each([alone, needy], "--no-preload") == {str(alone): 0, str(needy): 2}
