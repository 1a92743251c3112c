"""OpenAPI fragments generated from the request models the views parse with.

The views parse their own bodies and query strings (executions.api.requests: the messages clients
rely on), so ninja cannot see those models in their signatures; these turn the same models into
the operation's requestBody and query parameters, so the document can never drift from them.
"""

from typing import Any

from pydantic import BaseModel


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True)
    if "$defs" in schema:
        raise ValueError(f"{model.__name__} nests models: give them to the API's components")
    return schema


def json_body(model: type[BaseModel], *, required: bool = True) -> dict[str, Any]:
    """An operation's requestBody: `model`'s JSON Schema, sent as application/json."""
    return {
        "requestBody": {
            "required": required,
            "content": {"application/json": {"schema": _schema(model)}},
        }
    }


def query_parameters(model: type[BaseModel]) -> dict[str, Any]:
    """One query parameter per field of `model`, named by its alias (as clients send it)."""
    schema = _schema(model)
    required = set(schema.get("required", ()))
    parameters = []
    for name, field in schema["properties"].items():
        parameter: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": {k: v for k, v in field.items() if k not in ("title", "description")},
        }
        if field.get("type") == "array":
            parameter["explode"] = True
        if field.get("description"):
            parameter["description"] = field["description"]
        parameters.append(parameter)
    return {"parameters": parameters}
