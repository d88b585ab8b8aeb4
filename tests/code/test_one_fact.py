"""Each fact once (issue 25): "all" and the pay periods are defined in vocabulary.py only;
what restates them (a type's allowed values) is held equal to it here."""

from __future__ import annotations

import re
import typing
from pathlib import Path

from salarymodel import vocabulary
from salarymodel.serving.schemas import AmountsResponse, EstimateRequest

PACKAGE = Path(vocabulary.__file__).parent
ONCE = ("ALL", "PERIODS", "PERIOD_NAMES")


def test_the_shared_names_are_defined_in_vocabulary_only() -> None:
    pattern = re.compile(rf"^({'|'.join(ONCE)})\s*[:=]", re.MULTILINE)
    defined = {
        str(path.relative_to(PACKAGE)): sorted(pattern.findall(path.read_text()))
        for path in PACKAGE.rglob("*.py")
    }
    elsewhere = {path: names for path, names in defined.items() if names}
    assert elsewhere == {"vocabulary.py": list(ONCE)}


def test_every_period_has_a_name_and_the_api_allows_exactly_those() -> None:
    assert list(vocabulary.PERIOD_NAMES) == list(vocabulary.PERIODS)
    for model in (EstimateRequest, AmountsResponse):
        allowed = typing.get_args(model.model_fields["period"].annotation)
        assert allowed == tuple(vocabulary.PERIODS), model.__name__
