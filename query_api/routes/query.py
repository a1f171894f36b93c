"""``/query``: the general metrics query over every rollup family (tenant view)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from query_api.deps import TargetOrg, ViewConn
from query_api.errors import ERROR_RESPONSES, validation_error
from query_api.models.query import FamilyOut, FilterIn, MeasureIn, QueryIn, QueryOut
from query_api.params import DEFAULT_RANGE, parse_instant
from query_api.routes._views import availability, now, parse_step
from query_api.tabular import CSV_MEDIA_TYPE, CSV_RESPONSE, _cell, wants_csv
from storage import QUERY_CATALOGUE, Filter, Measure, MetricsQuery, run_query

router = APIRouter(tags=["query"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    k: ERROR_RESPONSES[k] for k in (400, 401, 403, 404, 422)
}


@router.get(
    "/query/families",
    response_model=list[FamilyOut],
    responses=_ERRORS,
    summary="What /query can read",
)
def families(_org: TargetOrg) -> list[FamilyOut]:
    """Every family: its dimensions, fields and the aggregations each field supports."""
    return [
        FamilyOut(
            family=name,
            dims=list(spec.dims),
            fields={f: list(v.aggregations()) for f, v in spec.fields.items()},
            levels=list(spec.levels),
            requires_filter_on=list(spec.requires),
        )
        for name, spec in QUERY_CATALOGUE.items()
    ]


@router.post(
    "/query",
    response_model=QueryOut,
    responses={**_ERRORS, **CSV_RESPONSE},
    summary="Metrics query",
)
def query(request: Request, conn: ViewConn, body: QueryIn) -> Response:
    """Any series (with ``step``) or breakdown (without) over a rollup family: measures
    (count, sum, avg, min, max, rate, p50/p95/p99 from the stored histograms), group-by
    over the family's dimensions, filters (eq, in, not_in). The level is the coarsest that
    serves the step and that the org's retention still holds; ``levels`` says which."""
    return _answer(request, conn, body)


@router.get(
    "/query",
    response_model=QueryOut,
    responses={**_ERRORS, **CSV_RESPONSE},
    summary="Metrics query (query string)",
)
def query_get(
    request: Request,
    conn: ViewConn,
    family: str,
    measure: Annotated[list[str], Query(description="`agg(field)`, e.g. `p95(duration_ms)`.")],
    group_by: Annotated[list[str] | None, Query()] = None,
    filter: Annotated[
        list[str] | None, Query(description="`dim=value`, `dim=in:a,b`, `dim=not_in:a,b`.")
    ] = None,
    start: str | None = None,
    end: str | None = None,
    step: str | None = None,
) -> Response:
    """The same as ``POST /query`` in a query string (for Grafana and scripts)."""
    body = QueryIn(
        family=family,
        measures=[_measure(m) for m in measure],
        group_by=group_by or [],
        filters=[_filter(f) for f in filter or []],
        start=start,
        end=end,
        step=step,
    )
    return _answer(request, conn, body)


def _measure(raw: str) -> MeasureIn:
    text = raw.strip()
    if not text.endswith(")") or "(" not in text:
        raise validation_error("measure", f"expected agg(field): {raw!r}")
    agg, field = text[:-1].split("(", 1)
    try:
        return MeasureIn(field=field.strip(), aggregation=agg.strip())  # type: ignore[arg-type]
    except ValueError:
        raise validation_error("measure", f"unknown aggregation in {raw!r}") from None


def _filter(raw: str) -> FilterIn:
    dim, sep, value = raw.partition("=")
    if not sep or not dim.strip():
        raise validation_error(
            "filter", f"expected dim=value, dim=in:a,b or dim=not_in:a,b: {raw!r}"
        )
    for op in ("in", "not_in"):
        if value.startswith(op + ":"):
            return FilterIn(dim=dim.strip(), op=op, values=value[len(op) + 1 :].split(","))
    return FilterIn(dim=dim.strip(), op="eq", values=[value])


def _answer(request: Request, conn: Any, body: QueryIn) -> Response:
    end = parse_instant(body.end, "end") if body.end else datetime.now(UTC)
    start = parse_instant(body.start, "start") if body.start else end - DEFAULT_RANGE
    if end <= start:
        raise validation_error("end", "must be after start")
    step = parse_step(body.step, start, end) if body.step else None
    q = MetricsQuery(
        body.family,
        tuple(Measure(m.field, m.aggregation) for m in body.measures),
        start,
        end,
        tuple(body.group_by),
        tuple(Filter(f.dim, f.op, tuple(f.values)) for f in body.filters),
        step,
    )
    got = run_query(conn, q, available=availability(conn, now()))
    out = QueryOut(
        columns=list(got.columns),
        rows=[list(r) for r in got.rows],
        levels=list(got.levels),
        start=got.start,
        end=got.end,
        step_seconds=int(step.total_seconds()) if step else None,
    )
    if wants_csv(request):
        lines = [",".join(out.columns)]
        lines += [",".join(_csv(v) for v in r) for r in out.model_dump(mode="json")["rows"]]
        return Response("\r\n".join(lines) + "\r\n", media_type=f"{CSV_MEDIA_TYPE}; charset=utf-8")
    return JSONResponse(out.model_dump(mode="json"))


def _csv(value: Any) -> str:
    text = _cell(value)
    return f'"{text.replace(chr(34), chr(34) * 2)}"' if any(c in text for c in ',"\r\n') else text
