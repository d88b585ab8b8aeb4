"""Packaging: one dependency list that declares every import, ceilings where internals are
used (and a clear failure when those internals change), and a bento that takes the package."""

from __future__ import annotations

import ast
import ctypes
import importlib
import importlib.metadata
import importlib.util
import re
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "salarymodel"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
REQUIREMENTS = {
    canonicalize_name(r.name): r for r in map(Requirement, PYPROJECT["project"]["dependencies"])
}
# What an optional backend imports (``salarymodel.training.distributed``: the ``dask``
# extra), never the service or the default commands.
EXTRAS = {
    canonicalize_name(Requirement(r).name)
    for extra, requirements in PYPROJECT["project"]["optional-dependencies"].items()
    if extra != "dev"
    for r in requirements
}
# Libraries whose private parts the code relies on.
INTERNALS_USED = ("lightgbm", "bentoml")


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _imports(path: Path) -> list[ast.Import | ast.ImportFrom]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]


def _top_level_imports() -> dict[str, set[str]]:
    """Each third-party module imported by the package -> the files importing it."""
    found: dict[str, set[str]] = {}
    for path in _sources():
        for node in _imports(path):
            if isinstance(node, ast.ImportFrom):
                names = [node.module] if node.level == 0 and node.module else []
            else:
                names = [alias.name for alias in node.names]
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "salarymodel":
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_third_party_import_is_declared() -> None:
    distributions = importlib.metadata.packages_distributions()
    undeclared = {}
    for module, files in _top_level_imports().items():
        names = {canonicalize_name(d) for d in distributions.get(module, [module])}
        if not names & (REQUIREMENTS.keys() | EXTRAS):
            undeclared[module] = sorted(files)
    assert not undeclared, (
        f"imported but not in [project].dependencies or an optional extra: {undeclared}"
    )


@pytest.mark.parametrize("library", INTERNALS_USED)
def test_libraries_whose_internals_are_used_have_a_ceiling(library: str) -> None:
    requirement = REQUIREMENTS[library]
    assert any(spec.operator in ("<", "<=", "~=", "==") for spec in requirement.specifier), (
        f"{requirement}: the code uses {library}'s internals, so its version needs a ceiling"
    )
    installed = importlib.metadata.version(library)
    assert requirement.specifier.contains(installed, prereleases=True), (
        f"{library} {installed} is installed, outside {requirement}"
    )


def test_the_lightgbm_c_functions_serving_calls_are_exported() -> None:
    from salarymodel.serving.booster import _library

    called = sorted(
        set(re.findall(r"\bLGBM_\w+", (PACKAGE / "serving" / "booster.py").read_text()))
    )
    assert len(called) >= 6, called
    library = _library()
    missing = []
    for name in called:
        try:
            getattr(library, name)
        except AttributeError:
            missing.append(name)
    version = importlib.metadata.version("lightgbm")
    assert not missing, (
        f"lightgbm {version}'s lib_lightgbm no longer exports {missing}, which "
        "src/salarymodel/serving/booster.py calls through ctypes: adapt booster.py to the new "
        f"C API, or keep lightgbm within {REQUIREMENTS['lightgbm'].specifier} in pyproject.toml"
    )
    assert isinstance(library, ctypes.CDLL)


def _bentoml_internals() -> list[tuple[str, str, str | None, set[str]]]:
    """(file, module, imported name or None, attributes read on that name) for every use of
    ``bentoml._internal``: imports, and module names given as strings (logger names)."""
    uses = []
    for path in _sources():
        text = path.read_text()
        where = str(path.relative_to(ROOT))
        for node in _imports(path):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "bentoml._internal"
            ):
                for alias in node.names:
                    bound = alias.asname or alias.name
                    attributes = set(re.findall(rf"\b{re.escape(bound)}\.(\w+)", text))
                    uses.append((where, str(node.module), alias.name, attributes))
        for module in re.findall(r"[\"'](bentoml\._internal[\w.]*)[\"']", text):
            uses.append((where, module, None, set()))
    return uses


def test_the_bentoml_private_names_the_code_uses_exist() -> None:
    uses = _bentoml_internals()
    assert uses, "no bentoml._internal use found: drop the bentoml ceiling and this test"
    version = importlib.metadata.version("bentoml")
    gone = []
    for where, module, name, attributes in uses:
        if importlib.util.find_spec(module) is None:
            gone.append(f"{where}: module {module}")
            continue
        if name is None:
            continue
        value = getattr(importlib.import_module(module), name, None)
        if value is None:
            gone.append(f"{where}: {module}.{name}")
            continue
        gone.extend(f"{where}: {module}.{name}.{a}" for a in attributes if not hasattr(value, a))
    assert not gone, (
        f"bentoml {version} no longer has these private names the code uses: {gone}. Adapt the "
        f"code, or keep bentoml within {REQUIREMENTS['bentoml'].specifier} in pyproject.toml"
    )


def _package_files() -> list[Path]:
    return [p for p in PACKAGE.rglob("*") if p.is_file() and "__pycache__" not in p.parts]


# BentoML matches include/exclude with pathspec's "gitwildmatch" (deprecated there): the
# test matches the same way.
@pytest.mark.filterwarnings("ignore:GitWildMatchPattern:DeprecationWarning")
def test_the_bento_takes_every_file_of_the_package_and_no_data() -> None:
    import yaml
    from pathspec import PathSpec

    build = yaml.safe_load((ROOT / "bentofile.yaml").read_text())  # what bentoml build reads
    include = PathSpec.from_lines("gitwildmatch", build["include"])
    exclude = PathSpec.from_lines("gitwildmatch", build["exclude"])

    def taken(path: Path) -> bool:
        relative = path.relative_to(ROOT).as_posix()
        return include.match_file(relative) and not exclude.match_file(relative)

    left_out = [str(p.relative_to(ROOT)) for p in _package_files() if not taken(p)]
    assert not left_out, f"the bento would miss {left_out}"
    assert taken(PACKAGE / "serving" / "booster.py")
    assert taken(ROOT / "configs" / "salarymodel.yaml")
    data = [p for p in (ROOT / "data").iterdir() if p.is_file()]
    assert data and not any(taken(p) for p in data), "the training data must stay out"
    assert not taken(PACKAGE / "__pycache__" / "cli.cpython-311.pyc")


def test_the_wheel_ships_every_data_file_of_the_package() -> None:
    patterns = PYPROJECT["tool"]["setuptools"]["package-data"]["salarymodel"]
    shipped = {p for pattern in patterns for p in PACKAGE.glob(pattern) if p.is_file()}
    data_files = [p for p in _package_files() if p.suffix != ".py"]
    assert PACKAGE / "py.typed" in data_files
    assert PACKAGE / "report" / "templates" / "sections" / "levels.html" in data_files
    missing = [str(p.relative_to(PACKAGE)) for p in data_files if p not in shipped]
    assert not missing, f"not in [tool.setuptools.package-data]: {missing}"
