"""Write README.md's module table from the package itself (issue 25: it cannot drift).

One row per module under ``src/salarymodel``, floor by floor in the order of the
import-linter layers contract in pyproject.toml (top floor first), each with the
first line of the module's docstring. The table sits between two markers in
README.md; ``--check`` exits 1 (naming the difference) when the README's table
is not what this script writes, and ``tests/code/test_readme_layout.py`` runs it.

    .venv/bin/python scripts/write_module_table.py          # rewrite README.md
    .venv/bin/python scripts/write_module_table.py --check  # CI: is it current?
"""

from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "salarymodel"
START = "<!-- module table: written by scripts/write_module_table.py -->"
END = "<!-- end of module table -->"


def floors(pyproject: Path) -> list[list[str]]:
    """The layers contract's floors, top first; ``"a : b"`` is one floor of two."""
    config = tomllib.loads(pyproject.read_text("utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    (layers,) = [c["layers"] for c in contracts if c["type"] == "layers"]
    return [[name.strip() for name in floor.split(":")] for floor in layers]


def first_line(path: Path) -> str:
    """The module docstring's first line (a module without one is an error)."""
    doc = ast.get_docstring(ast.parse(path.read_text("utf-8")))
    if not doc:
        raise SystemExit(f"{path.parent.name}/{path.name}: no module docstring to describe it")
    return doc.strip().splitlines()[0].replace("|", "\\|")


def modules_of(name: str, package: Path) -> list[Path]:
    """A floor's modules: a package's ``*.py`` (``__init__`` first), or one module."""
    folder = package / name
    if folder.is_dir():
        found = sorted(folder.glob("*.py"), key=lambda p: (p.name != "__init__.py", p.name))
        return [p for p in found if p.name != "__init__.py" or first_line_or_none(p)]
    return [package / f"{name}.py"]


def first_line_or_none(path: Path) -> str | None:
    doc = ast.get_docstring(ast.parse(path.read_text("utf-8")))
    return doc.strip().splitlines()[0] if doc else None


def table(package: Path = PACKAGE, pyproject: Path = ROOT / "pyproject.toml") -> str:
    """The markdown table, markers included."""
    rows = ["| floor | module | what it holds |", "| --- | --- | --- |"]
    stack = floors(pyproject)
    for number, floor in enumerate(stack):
        for name in floor:
            for path in modules_of(name, package):
                where = path.relative_to(package).as_posix()
                rows.append(f"| {len(stack) - number} | `{where}` | {first_line(path)} |")
    return "\n".join([START, *rows, END])


def with_table(readme: str, new_table: str) -> str:
    """README text with the table between the markers replaced."""
    if START not in readme or END not in readme:
        raise SystemExit(f"README.md has no module table markers ({START!r} ... {END!r})")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return head + new_table + tail


def main(argv: list[str]) -> int:
    readme = ROOT / "README.md"
    current = readme.read_text("utf-8")
    wanted = with_table(current, table())
    if "--check" in argv:
        if wanted != current:
            print("README.md's module table is not current: run scripts/write_module_table.py")
            return 1
        return 0
    readme.write_text(wanted, "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
