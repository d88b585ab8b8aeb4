"""Each fact once (issue 25): "all", the pay periods, the codes a job is described with
and the model names are defined in vocabulary.py only. Code elsewhere names them
through it: a second spelling of a model name or a second list of allowed values
(a ``Literal`` restating the codes) fails here."""

from __future__ import annotations

import ast
import typing
from pathlib import Path

from salarymodel import vocabulary
from salarymodel.serving.schemas import AmountsResponse, EstimateRequest

PACKAGE = Path(vocabulary.__file__).parent
ONCE = (
    "ALL",
    "PERIODS",
    "PERIOD_NAMES",
    "Period",
    "ExperienceLevel",
    "CompanySize",
    "EmploymentType",
    "RemoteRatio",
    "ModelName",
    "MODEL_NAMES",
    "FUSED_MODEL",
    "SINGLE_SOURCE_MODEL",
    "RAW_MODEL",
    "GROUP_MEDIAN_MODEL",
    "GLOBAL_MEDIAN_MODEL",
)
# The code lists written once, as types: a Literal elsewhere must not restate them.
VOCABULARY_TYPES = ("Period", "ExperienceLevel", "CompanySize", "EmploymentType", "RemoteRatio")


def _assigned(tree: ast.Module) -> set[str]:
    """Names a module binds at any level, tuple unpacking included."""
    targets = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            targets += node.targets
        elif isinstance(node, ast.AnnAssign | ast.AugAssign):
            targets.append(node.target)
    return {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}


def test_the_shared_names_are_defined_in_vocabulary_only() -> None:
    defined = {
        str(path.relative_to(PACKAGE)): sorted(_assigned(ast.parse(path.read_text())) & set(ONCE))
        for path in PACKAGE.rglob("*.py")
    }
    elsewhere = {path: names for path, names in defined.items() if names}
    assert elsewhere == {"vocabulary.py": sorted(ONCE)}
    copy = ast.parse("A, FUSED_MODEL = 1, 2\nALL: str = 'x'\n")
    assert _assigned(copy) >= {"FUSED_MODEL", "ALL"}


def test_every_period_has_a_name_and_the_api_allows_exactly_those() -> None:
    assert list(vocabulary.PERIOD_NAMES) == list(vocabulary.PERIODS)
    for model in (EstimateRequest, AmountsResponse):
        allowed = typing.get_args(model.model_fields["period"].annotation)
        assert allowed == tuple(vocabulary.PERIODS), model.__name__


def _code_outside_vocabulary() -> dict[str, ast.Module]:
    return {
        str(path.relative_to(PACKAGE)): ast.parse(path.read_text())
        for path in PACKAGE.rglob("*.py")
        if path.name != "vocabulary.py" or path.parent != PACKAGE
    }


def _docstrings(tree: ast.Module) -> set[int]:
    """ids of the docstring nodes (prose may name the model)."""
    found = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            found.add(id(body[0].value))
    return found


def _strings_naming(text: str, tree: ast.Module) -> list[int]:
    prose = _docstrings(tree)
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and text in node.value
        and id(node) not in prose
    ]


def test_the_model_names_are_spelled_in_vocabulary_only() -> None:
    """ "fused_lightgbm" and its rivals are spelled once; code names them through
    ``vocabulary`` (``FUSED_MODEL``, ``SINGLE_SOURCE_MODEL``, ...)."""
    assert vocabulary.FUSED_MODEL == "fused_lightgbm"  # the public name in tables and runs
    assert vocabulary.MODEL_NAMES == (
        vocabulary.FUSED_MODEL,
        vocabulary.SINGLE_SOURCE_MODEL,
        vocabulary.RAW_MODEL,
        vocabulary.GROUP_MEDIAN_MODEL,
        vocabulary.GLOBAL_MEDIAN_MODEL,
    )
    trees = _code_outside_vocabulary()
    spelled = {
        (path, name): lines
        for name in vocabulary.MODEL_NAMES
        for path, tree in trees.items()
        if (lines := _strings_naming(name, tree))
    }
    assert spelled == {}
    # the HTML, CSS and JS the package ships name it nowhere either
    assets = [p for p in PACKAGE.rglob("*") if p.suffix in {".html", ".js", ".css", ".j2"}]
    assert assets and not [p for p in assets if vocabulary.FUSED_MODEL in p.read_text()]


def test_the_check_sees_a_second_spelling() -> None:
    tree = ast.parse('''"""Docstring: fused_lightgbm is fine here."""\nOURS = "fused_lightgbm"\n''')
    assert _strings_naming("fused_lightgbm", tree) == [2]
    f_string = ast.parse('KEY = f"backtest.fused_lightgbm.all.{metric}"\n')
    assert _strings_naming("fused_lightgbm", f_string) == [1]


def _literal_values(tree: ast.Module) -> list[tuple[int, set[object]]]:
    """Every ``Literal[...]`` in a module: its line and its values."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and ast.unparse(node.value).endswith("Literal"):
            items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            values = {item.value for item in items if isinstance(item, ast.Constant)}
            found.append((node.lineno, values))
    return found


def test_allowed_values_are_listed_in_vocabulary_only() -> None:
    """The API's and the settings' allowed codes are the vocabulary's types, not copies."""
    codes = {name: set(typing.get_args(getattr(vocabulary, name))) for name in VOCABULARY_TYPES}
    codes["ModelName"] = set(vocabulary.MODEL_NAMES)
    restated = [
        (path, line, name)
        for path, tree in _code_outside_vocabulary().items()
        for line, values in _literal_values(tree)
        for name, allowed in codes.items()
        if values & allowed
    ]
    assert restated == []
    copy = ast.parse('period: Literal["year", "month"]\nlevel: typing.Literal["EN"]\n')
    assert [line for line, _ in _literal_values(copy)] == [1, 2]


def test_the_served_and_configured_fields_take_the_vocabulary_types() -> None:
    from salarymodel.config.data import FeaturesConfig
    from salarymodel.config.evaluation import RetrainingConfig
    from salarymodel.serving.schemas import JobRequest

    assert JobRequest.model_fields["experience_level"].annotation == vocabulary.ExperienceLevel
    assert JobRequest.model_fields["remote_ratio"].annotation == vocabulary.RemoteRatio
    assert RetrainingConfig.model_fields["cv_models"].annotation == list[vocabulary.ModelName]
    levels = FeaturesConfig.model_fields["seniority_to_experience"].annotation
    assert typing.get_args(levels)[1] == vocabulary.ExperienceLevel


def test_the_report_reads_source_names_and_never_spells_them() -> None:
    """The report's sources come from the vocabulary (names, order) and the sources config
    (which one lists skills): no source code is written in report/."""
    from salarymodel.report.sections import skill_source

    codes = set(vocabulary.SOURCE_NAMES)
    spelled = [
        (str(path.relative_to(PACKAGE)), node.lineno, node.value)
        for path in (PACKAGE / "report").rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and node.value in codes
    ]
    assert spelled == []
    assert skill_source() == "postings"  # the shipped adapter that maps skills
