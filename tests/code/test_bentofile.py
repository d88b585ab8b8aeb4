"""bentofile.yaml, the file `bentoml build` packages the service from: its Python
packages are pyproject.toml's dependencies (the build itself: tests/service/test_service.py)."""

from __future__ import annotations

import importlib.util
import tomllib
from pathlib import Path
from types import ModuleType

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "write_bentofile", ROOT / "scripts" / "write_bentofile.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_bentos_packages_are_pyprojects_dependencies() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    bentofile = yaml.safe_load((ROOT / "bentofile.yaml").read_text())
    assert bentofile["python"]["packages"] == pyproject["project"]["dependencies"]
    assert _script().main(["--check"]) == 0


def test_the_check_says_no_when_the_lists_differ() -> None:
    script = _script()
    text = (ROOT / "bentofile.yaml").read_text()
    packages = script.dependencies(ROOT / "pyproject.toml")
    assert script.with_packages(text, packages) == text
    stale = script.with_packages(text, [*packages, "requests>=2"])
    assert stale != text and '- "requests>=2"' in stale
    assert yaml.safe_load(stale)["python"]["packages"][-1] == "requests>=2"
    with pytest.raises(ValueError, match="markers"):
        script.with_packages(text.replace(script.END, ""), packages)


def test_bentoml_reads_the_bentofile_as_an_offline_build() -> None:
    from bentoml._internal.bento.build_config import BentoBuildConfig

    config = BentoBuildConfig.from_file(str(ROOT / "bentofile.yaml"))
    assert config.name == "salarymodel"
    assert config.service == "salarymodel.serving.service:SalaryService"
    # Locking resolves pins against the package index: offline it fails.
    assert config.python.lock_packages is False
    assert config.python.is_src_layout is False  # configs/ sits two folders above the package
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert config.python.packages == dependencies
    # One place for build settings: bentofile.yaml wins over pyproject's table, so none is kept.
    assert "bentoml" not in tomllib.loads((ROOT / "pyproject.toml").read_text()).get("tool", {})
