"""Configuration defaults live in configs/salarymodel.yaml only (issue 25, "each fact once").

A settings field with a default in code (salarymodel/config/) competes with the YAML: the two
can drift apart unseen (``ranges.spread_blend`` was 1.0 in code and 0.0 in the
YAML, and the docstring still defended 1.0). So no settings field has a default
in code: every one is required and filled from the YAML, and a YAML that leaves
one out is refused, naming it.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from salarymodel.config.settings import ConfigError, Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]


def _section(annotation: Any) -> type[BaseModel] | None:
    for kind in (annotation, *typing.get_args(annotation)):
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            return kind
    return None


def _code_defaults(model: type[BaseModel], yaml_part: Any, prefix: str = "") -> dict:
    """Every field with a default in code: dotted key -> (code default, YAML value or absent;
    a section's own default is not compared, its fields are)."""
    found: dict[str, tuple[Any, Any]] = {}
    for name, field in model.model_fields.items():
        key = field.alias or name
        given = yaml_part.get(key, ABSENT) if isinstance(yaml_part, dict) else ABSENT
        section = _section(field.annotation)
        if field.default is not PydanticUndefined or field.default_factory is not None:
            default = field.get_default(call_default_factory=True)
            found[prefix + key] = (default, ABSENT if section else given)
        if section is not None:
            inner = given if isinstance(given, dict) else {}
            found |= _code_defaults(section, inner, f"{prefix}{key}.")
    return found


ABSENT = object()


def _settings_defaults() -> dict[str, tuple[Any, Any]]:
    data = yaml.safe_load((ROOT / "configs" / "salarymodel.yaml").read_text())
    return _code_defaults(Settings, data)


def test_no_settings_field_has_a_default_in_code() -> None:
    in_code = sorted(_settings_defaults())
    assert not in_code, f"code defaults (give them in configs/salarymodel.yaml): {in_code}"


def test_a_yaml_without_a_key_is_refused_naming_it(tmp_path: Path) -> None:
    """With no code default to fall back on, a key left out of the YAML is an error."""
    data = yaml.safe_load((ROOT / "configs" / "salarymodel.yaml").read_text())
    del data["serving"]["reload_timeout_seconds"]
    del data["explanations"]
    path = tmp_path / "salarymodel.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as refused:
        load_settings(path)
    assert "serving.reload_timeout_seconds" in str(refused.value)
    assert "explanations" in str(refused.value)


def test_the_check_sees_a_competing_default() -> None:
    """The walk finds a default: a field given one in code shows up with both values."""
    from pydantic import create_model

    probe = create_model("Probe", spread_blend=(float, 1.0), params=(dict, ...))
    outer = create_model("Outer", ranges=(probe, ...))
    found = _code_defaults(outer, {"ranges": {"spread_blend": 0.0, "params": {}}})
    assert found == {"ranges.spread_blend": (1.0, 0.0)}
