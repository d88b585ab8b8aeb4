"""The OpenAPI document at ``/docs.json``, corrected to what the service really answers."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from salarymodel.core.currency import USD, PayBounds
from salarymodel.serving.schemas import BATCH_ROUTE, MAX_BATCH, MAX_BODY_BYTES

_SCHEMAS = "#/components/schemas/"
_STRING = {"type": "string"}
# The bodies this service sends itself (`_send_json`, `describe_errors`, the reload route).
ERROR_SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": _STRING},
        "additionalProperties": False,
    },
    "FieldError": {
        "type": "object",
        "required": ["field", "message"],
        "properties": {
            "field": _STRING,
            "message": _STRING,
            "allowed": {"type": "array", "items": {"anyOf": [_STRING, {"type": "integer"}]}},
        },
        "additionalProperties": False,
    },
    "ValidationErrors": {
        "type": "object",
        "required": ["error", "detail"],
        "properties": {
            "error": _STRING,
            "detail": {"type": "array", "items": {"$ref": f"{_SCHEMAS}FieldError"}},
        },
        "additionalProperties": False,
    },
    "ReloadRefused": {
        "type": "object",
        "required": ["error", "model_version"],
        "properties": {
            "error": _STRING,
            "model_version": _STRING,
            "workers": {"type": "object", "additionalProperties": _STRING},
        },
        "additionalProperties": False,
    },
    "Reloaded": {
        "type": "object",
        "required": ["model_version", "previous_version", "loaded_from", "tag", "workers"],
        "properties": {
            **dict.fromkeys(("model_version", "previous_version", "loaded_from", "tag"), _STRING),
            "workers": {"type": "object", "additionalProperties": _STRING},
        },
        "additionalProperties": False,
    },
}


_TOO_LARGE = {
    "": "Request body over the size limit (64 KiB); the body names it.",
    BATCH_ROUTE: f"Request body over {MAX_BODY_BYTES[BATCH_ROUTE]:,} bytes "
    f"(`serving.batch_max_bytes`), or more than {MAX_BATCH:,} jobs "
    "(`serving.batch_max_jobs`); the body names the limit.",
}


def _answer(description: str, schema: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"{_SCHEMAS}{schema}"}}},
    }


def _as_component(
    schema: dict[str, Any], api: str, components: Mapping[str, Any]
) -> dict[str, Any]:
    # BentoML inlines its flattened copy of a component (named as in
    # `IODescriptor.openapi_components`); the component itself is pydantic's.
    name = schema.get("title")
    name = f"{api}__{name}" if name in ("Input", "Output") else name
    return {"$ref": f"{_SCHEMAS}{name}"} if name in components else schema


@dataclass(frozen=True)
class ServedPay:
    """What the served model accepts as a person's pay: its currencies and their bounds."""

    currencies: Sequence[str]
    bounds: Sequence[PayBounds]
    years: tuple[int, int]  # the request's allowed years
    default_year: int


def _openapi_30_bounds(node: Any) -> None:
    # pydantic writes JSON Schema 2020-12 (`exclusiveMinimum: 0`); an OpenAPI
    # 3.0 document needs `minimum: 0, exclusiveMinimum: true`.
    if isinstance(node, dict):
        for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
            value = node.get(bound)
            if isinstance(value, int | float) and not isinstance(value, bool):
                node[limit], node[bound] = value, True
        for child in node.values():
            _openapi_30_bounds(child)
    elif isinstance(node, list):
        for child in node:
            _openapi_30_bounds(child)


def _pay_case(bound: PayBounds, years: tuple[int, int], default_year: int) -> dict[str, Any]:
    first, last = max(bound.first or years[0], years[0]), min(bound.last or years[1], years[1])
    required = []
    if bound.currency != USD:
        required.append("currency")
    if bound.period != "year":
        required.append("period")
    if not first <= default_year <= last:
        required.append("year")
    case: dict[str, Any] = {
        "properties": {
            "currency": {"enum": [bound.currency]},
            "period": {"enum": [bound.period]},
            "year": {"minimum": first, "maximum": last},
            "current_salary": {
                "anyOf": [
                    {"type": "number", "minimum": bound.low, "maximum": bound.high},
                    {"type": "null"},
                ]
            },
        },
    }
    if required:
        case["required"] = required
    return case


def document_pay(components: dict[str, Any], pay: ServedPay) -> None:
    """State in the request schema what the served model accepts as a person's pay.

    The currencies are the model's (an enum); a salary is plausible within
    training's bounds converted to its currency and period at the rate of its
    year, so the schema has one case per currency, span of years sharing a
    rate, and period (``anyOf``; a field left out takes its default), each
    with the bounds :func:`salarymodel.core.currency.pay_in_usd` checks.
    """
    for schema in components.values():
        properties = schema.get("properties", {})
        if not {"job_title", "current_salary", "currency"} <= set(properties):
            continue  # not a request that names a pay
        properties["currency"] = {**properties["currency"], "enum": list(pay.currencies)}
        for narrower in ("maxLength", "minLength", "pattern"):  # the enum says all of it
            properties["currency"].pop(narrower, None)
        cases = [b for b in pay.bounds if (b.first or pay.years[0]) <= pay.years[1]
                 and (b.last or pay.years[1]) >= pay.years[0]]  # fmt: skip
        schema["anyOf"] = [_pay_case(b, pay.years, pay.default_year) for b in cases]


def truthful_openapi(
    spec: Mapping[str, Any], *, metrics: bool, pay: ServedPay | None = None
) -> dict[str, Any]:
    """BentoML's generated OpenAPI document (as JSON), corrected to what this service answers.

    BentoML 1.4 cannot be told any of this (``Service.openapi_spec`` is a
    property with no hook), and gets these wrong:

    - it lists ``GET /metrics``, which answers 404 unless ``metrics`` is on;
    - an API route's request body is optional, yet without one the answer is 422;
    - its inline body and answer schemas keep only the first branch of each
      ``anyOf``, so nullable fields (``low_usd``, ``company_country``, ...)
      look non-null: they are replaced by references to pydantic's complete
      components, which BentoML publishes too;
    - every API route lists 400 and 404. ``RequestGuard`` turns the 400 of a
      validation error into 422 (``describe_errors``), and answers 413 to a
      body over ``MAX_BODY_BYTES`` and 415 to one that is not JSON; a fixed
      route never answers 404;
    - ``POST /admin/reload`` lists only 200, with no schema; it also answers
      403 (not loopback), 409 (nothing reloaded) and 500 (a worker did not confirm);
    - pydantic's ``exclusiveMinimum: 0`` is JSON Schema 2020-12, not OpenAPI 3.0;
    - which currencies and salaries are accepted depends on the served model
      (``pay``, see :func:`document_pay`).

    Returns a corrected copy; ``spec`` is left as it was.
    """
    fixed: dict[str, Any] = json.loads(json.dumps(spec))  # a deep copy, codes as strings
    paths = fixed["paths"]
    components = fixed.setdefault("components", {}).setdefault("schemas", {})
    components.update(json.loads(json.dumps(ERROR_SCHEMAS)))
    _openapi_30_bounds(components)
    if pay is not None:
        document_pay(components, pay)
    if not metrics:
        paths.pop("/metrics", None)
    for path, item in paths.items():
        for operation in item.values():
            api = operation.get("x-bentoml-name")
            if api is None or "requestBody" not in operation:
                continue
            _complete_schemas(operation, api, components)
            _api_answers(path, operation["responses"])
    reload = paths.get("/admin/reload", {}).get("post")
    if reload is not None:
        reload["responses"] = _reload_answers()
    return fixed


def _complete_schemas(operation: dict[str, Any], api: str, components: Mapping[str, Any]) -> None:
    # A body is required (without one the answer is 422), and the body and the
    # 200 answer point at pydantic's complete components, not BentoML's inline copies.
    body = operation["requestBody"]
    body["required"] = True
    for media in body["content"].values():
        media["schema"] = _as_component(media["schema"], api, components)
    for media in operation["responses"]["200"].get("content", {}).values():
        media["schema"] = _as_component(media["schema"], api, components)


def _api_answers(path: str, responses: dict[str, Any]) -> None:
    # What an API route answers besides 200: never 400 or 404; 413 and 415 where
    # the guard limits the body; 422 for an invalid field.
    for status in ("400", "404"):
        responses.pop(status, None)
    if path in MAX_BODY_BYTES:
        responses["413"] = _answer(_TOO_LARGE.get(path, _TOO_LARGE[""]), "Error")
        responses["415"] = _answer("Request body not `application/json`.", "Error")
    responses["422"] = _answer(
        "Invalid request: each field, its problem and, if fixed, its allowed values.",
        "ValidationErrors",
    )


def _reload_answers() -> dict[str, Any]:
    # `POST /admin/reload` as it answers (BentoML lists only 200, with no schema).
    return {
        "200": _answer(
            "Every worker now serves the champion (`workers`: pid -> version).", "Reloaded"
        ),
        "403": _answer("Not loopback, relayed, or without the reload token.", "Error"),
        "409": _answer(
            "Nothing reloaded: every worker still serves `model_version`; "
            "`workers` names those that could not load it.",
            "ReloadRefused",
        ),
        "500": _answer(
            "Switched, but some workers did not confirm (named in `workers`).", "ReloadRefused"
        ),
    }
