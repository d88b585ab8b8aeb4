"""HTML pages from the jinja2 templates shipped in ``salarymodel/report/templates``.

One environment for every page the project writes (the market insights
report, the drift page): autoescape is on for all of them, so a job title,
country or skill read from a data file is shown as text, never as markup.
A template that names a value the page was not given fails loudly
(``StrictUndefined``) instead of printing an empty string.
"""

from __future__ import annotations

import math
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jinja2 import Environment


def number(value: object, digits: int = 0) -> str:
    """'12,345' (``digits`` decimals) for a number; '-' for a missing or undefined one."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:,.{digits}f}" if isinstance(value, int | float) else str(value)


def share(value: float) -> str:
    """A share as a percentage with one decimal ('0.25' -> '25.0%')."""
    return f"{value:.1%}"


@cache
def environment() -> Environment:
    """The templates' environment (built once: it caches parsed templates)."""
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(
        loader=PackageLoader("salarymodel.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(number=number, share=share)
    return env


def render(template: str, **context: object) -> str:
    """The page ``template`` (a file name in ``templates/``) filled with ``context``."""
    return environment().get_template(template).render(**context)
