"""``aeos alerts``: list alert rules with their state; run one evaluation cycle now."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from sqlalchemy import text

from alerting.cycle import run_cycle
from alerting.deliver import run_deliveries
from alerting.settings import AlertingSettings
from storage.database import open_database
from storage.errors import StorageError
from storage.settings import StorageSettings

alerts_app = typer.Typer(
    help="Alert rules: list them with their state; evaluate the due ones now.",
    no_args_is_help=True,
)

_LIST = text(
    "SELECT o.name AS org, r.id, r.name, r.type, r.severity, r.enabled, r.interval_s, "
    "r.next_eval_at, coalesce(s.firing, 0) AS firing, coalesce(s.instances, 0) AS instances, "
    "s.worst AS state FROM alert_rules r JOIN orgs o ON o.id = r.org_id "
    "LEFT JOIN LATERAL (SELECT count(*) FILTER (WHERE is_firing) AS firing, count(*) AS instances, "
    "(array_agg(state ORDER BY array_position(ARRAY['alerting','recovering','error','no_data',"
    "'pending','normal'], state)))[1] AS worst FROM alert_states WHERE rule_id = r.id) s ON true "
    "ORDER BY o.name, r.name"
)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def _time(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        _fail(f"--now: {value!r} is not an ISO 8601 time")
        raise
    return t if t.tzinfo else t.replace(tzinfo=UTC)


@alerts_app.command("list")
def alerts_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Every rule of every org, with its worst instance state and firing count."""
    try:
        with open_database(StorageSettings()) as db, db.admin_engine().begin() as conn:
            found = [dict(r) for r in conn.execute(_LIST).mappings()]
    except StorageError as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps(found, indent=2, default=str))
        return
    if not found:
        typer.echo("no alert rules")
    for r in found:
        state = r["state"] or "never evaluated"
        typer.echo(
            f"{r['org']:<20} {r['name']:<30} {r['type']:<9} {r['severity']:<8} "
            f"{state:<15} firing {r['firing']}/{r['instances']}"
            + ("" if r["enabled"] else "  (disabled)")
        )


@alerts_app.command("eval")
def alerts_eval(
    now: Annotated[
        str | None,
        typer.Option(help="Evaluate as if it were this time (ISO 8601; UTC unless an offset)."),
    ] = None,
    deliver: Annotated[bool, typer.Option(help="Also send the deliveries that are due.")] = False,
) -> None:
    """Evaluate every due rule once (as the service's scheduler does) and print a summary."""
    at = _time(now) or datetime.now(UTC)
    out: dict[str, Any] = {"now": at.isoformat()}
    try:
        with open_database(StorageSettings()) as db:
            engine = db.admin_engine()
            out["evaluation"] = run_cycle(engine, at).as_dict()
            if deliver:
                out["delivery"] = run_deliveries(engine, at, AlertingSettings()).as_dict()
    except StorageError as exc:
        _fail(str(exc))
    typer.echo(json.dumps(out, indent=2, default=str))
