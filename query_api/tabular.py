"""Tabular answers: JSON by default, CSV when the client asks ``Accept: text/csv``."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

CSV_MEDIA_TYPE = "text/csv"
NEXT_CURSOR_HEADER = "X-Next-Cursor"

CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The rows; as CSV (header row = field names) with `Accept: text/csv`.",
        "content": {CSV_MEDIA_TYPE: {"schema": {"type": "string"}}},
    }
}
"""``responses=CSV_RESPONSE`` documents the CSV form of a tabular route."""


def wants_csv(request: Request) -> bool:
    """Whether the client prefers CSV to JSON (``Accept: text/csv``)."""
    accept = request.headers.get("accept", "")
    types = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    return (
        CSV_MEDIA_TYPE in types and "application/json" not in types[: types.index(CSV_MEDIA_TYPE)]
    )


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def to_csv(rows: Sequence[BaseModel], model: type[BaseModel]) -> str:
    """CSV text: a header row of ``model``'s field names, then one line per row."""
    fields = list(model.model_fields)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180 line breaks
    writer.writerow(fields)
    for row in rows:
        dumped = row.model_dump(mode="json")
        writer.writerow([_cell(dumped.get(name)) for name in fields])
    return out.getvalue()


def tabular(
    request: Request,
    rows: Sequence[BaseModel],
    model: type[BaseModel],
    *,
    next_cursor: str | None = None,
) -> Response:
    """``rows`` as CSV when asked, else as JSON ``{"data": [...], "next_cursor": ...}``.

    The JSON form is :class:`query_api.paging.Page` of ``model``: declare
    ``response_model=Page[Model]`` and ``responses=CSV_RESPONSE`` on the route. In CSV the
    next cursor travels in the ``X-Next-Cursor`` header.
    """
    if wants_csv(request):
        headers = {NEXT_CURSOR_HEADER: next_cursor} if next_cursor else {}
        return Response(
            to_csv(rows, model), media_type=f"{CSV_MEDIA_TYPE}; charset=utf-8", headers=headers
        )
    body = {"data": [row.model_dump(mode="json") for row in rows], "next_cursor": next_cursor}
    return JSONResponse(body)
