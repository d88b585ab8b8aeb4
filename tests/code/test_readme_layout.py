"""README's module table is written from the package, and says no when it drifts."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def writer():
    spec = importlib.util.spec_from_file_location(
        "write_module_table", ROOT / "scripts" / "write_module_table.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_readme_table_is_what_the_package_says(writer) -> None:
    assert writer.main(["--check"]) == 0, "run scripts/write_module_table.py"
    readme = (ROOT / "README.md").read_text("utf-8")
    for path in (ROOT / "src" / "salarymodel").rglob("*.py"):
        if path.name != "__init__.py":
            where = path.relative_to(ROOT / "src" / "salarymodel").as_posix()
            assert f"| `{where}` |" in readme, where


def test_floors_follow_the_import_linter_layers(writer) -> None:
    floors = writer.floors(ROOT / "pyproject.toml")
    assert floors[0] == ["cli"] and floors[-1] == ["config", "vocabulary"]
    rows = [r for r in writer.table().splitlines() if r.startswith("| ") and "`" in r]
    numbers = [int(r.split("|")[1]) for r in rows]
    assert numbers == sorted(numbers, reverse=True)  # top floor first, never back up


def test_a_new_module_missing_from_the_readme_fails_the_check(writer, tmp_path: Path) -> None:
    package = tmp_path / "salarymodel"
    shutil.copytree(
        ROOT / "src" / "salarymodel", package, ignore=shutil.ignore_patterns("__pycache__")
    )
    (package / "core" / "newcomer.py").write_text('"""A module nobody listed yet."""\n')
    readme = (ROOT / "README.md").read_text("utf-8")
    fresh = writer.table(package, ROOT / "pyproject.toml")
    assert "`core/newcomer.py` | A module nobody listed yet." in fresh
    assert writer.with_table(readme, fresh) != readme  # --check would say no


def test_a_module_without_a_docstring_is_refused(writer, tmp_path: Path) -> None:
    package = tmp_path / "salarymodel"
    shutil.copytree(
        ROOT / "src" / "salarymodel", package, ignore=shutil.ignore_patterns("__pycache__")
    )
    (package / "data" / "silent.py").write_text("X = 1\n")
    with pytest.raises(SystemExit, match=r"data/silent\.py: no module docstring"):
        writer.table(package, ROOT / "pyproject.toml")
