"""The ``aeos`` command line.

Every command reads its settings from ``AEOS_*`` environment variables; a bad value, an
unreachable database or bad input ends the command with a message on stderr and a
non-zero exit status, and changes nothing.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from aeos import _cli_grafana
from aeos._cli_alerts import alerts_app
from aeos.jobs import service_jobs
from aeos.serve import Part, ServeOptions, run
from otlp_receiver.settings import ReceiverSettings
from query_api.settings import ApiSettings
from storage import DbRole, Scope, admin, scoped_transaction
from storage.database import Database, open_database
from storage.errors import StorageError
from storage.jobs import scheduler
from storage.retention.run import (
    DATA_CLASSES,
    DEFAULT_BATCH_SIZE,
    OrgWindows,
    RetentionExportError,
    run_retention,
)
from storage.schema import KEY_ROLES, PLANS
from storage.settings import StorageSettings

app = typer.Typer(
    help="AEOS Observability: OpenTelemetry backend for the AEOS agent platform.",
    no_args_is_help=True,
    add_completion=False,
)
orgs_app = typer.Typer(help="Create and list organisations (tenants).", no_args_is_help=True)
keys_app = typer.Typer(help="Create and revoke API keys.", no_args_is_help=True)
jobs_app = typer.Typer(
    help="Periodic jobs (partitions, sampling sweep, retention, alerting): runs; run one now.",
    no_args_is_help=True,
)
retention_app = typer.Typer(
    help="Prune telemetry older than each org's retention window.", no_args_is_help=True
)
app.add_typer(orgs_app, name="orgs")
app.add_typer(keys_app, name="keys")
app.add_typer(jobs_app, name="jobs")
app.add_typer(retention_app, name="retention")
_cli_grafana.register(app)
app.add_typer(alerts_app, name="alerts")

EXIT_ERROR = 1
EXIT_BAD_SETTINGS = 2
S = TypeVar("S", bound=BaseSettings)


def _fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def load_settings(cls: Callable[[], S]) -> S:
    """Builds a settings object; an invalid value exits naming the variable."""
    try:
        return cls()
    except ValidationError as exc:
        prefix = str(getattr(cls, "model_config", {}).get("env_prefix", "AEOS_"))
        problems = [
            f"{prefix}{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors()
        ]
        _fail("invalid setting " + "; ".join(problems), EXIT_BAD_SETTINGS)


@contextmanager
def _database(*, own: bool = False) -> Iterator[Database]:
    settings = load_settings(StorageSettings)
    try:
        with open_database(settings, own_embedded=own) as db:
            yield db
    except StorageError as exc:
        _fail(str(exc))


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=str))


@app.command()
def migrate() -> None:
    """Bring the database schema up to date (idempotent, safe to run concurrently)."""
    with _database() as db:
        result = db.migration
        assert result is not None
        _print_json(
            {
                "engine": result.engine,
                "from_revision": result.from_revision,
                "to_revision": result.to_revision,
                "changed": result.changed,
            }
        )


@orgs_app.command("create")
def orgs_create(
    name: Annotated[str, typer.Argument(help="Unique name of the organisation.")],
    plan: Annotated[str, typer.Option(help=f"Plan tier: {', '.join(PLANS)}.")] = "free",
) -> None:
    """Create an org; prints its id, a new ingest key and a new admin key (shown once)."""
    if plan not in PLANS:
        _fail(f"unknown plan {plan!r}; expected one of {', '.join(PLANS)}")
    with (
        _database() as db,
        _storage_errors(),
        scoped_transaction(db.admin_engine(), Scope(DbRole.STAFF)) as conn,
    ):
        org = admin.create_org(conn, name, plan)
    _print_json(
        {
            "org_id": org.org_id,
            "name": org.name,
            "plan": org.plan,
            "ingest_key": org.ingest_key.plaintext,
            "admin_key": org.admin_key.plaintext,
        }
    )


@orgs_app.command("list")
def orgs_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List all orgs with their plan and number of active keys."""
    with (
        _database() as db,
        _storage_errors(),
        scoped_transaction(db.admin_engine(), Scope(DbRole.STAFF)) as conn,
    ):
        rows = admin.list_orgs(conn)
    if as_json:
        _print_json([dataclasses.asdict(row) for row in rows])
        return
    typer.echo(f"{'ORG ID':36}  {'PLAN':10}  {'KEYS':>4}  {'SAMPLE %':>8}  NAME")
    for row in rows:
        typer.echo(
            f"{row.org_id!s:36}  {row.plan:10}  {row.active_keys:>4}  "
            f"{row.trace_sample_percent!s:>8}  {row.name}"
        )


@orgs_app.command("set-sampling")
def orgs_set_sampling(
    org: Annotated[str, typer.Argument(help="Name of the org.")],
    percent: Annotated[
        str, typer.Argument(help="Share of error-free traces to keep, 0-100 (2 decimals).")
    ],
) -> None:
    """Set the share of error-free traces whose spans outlive the full-fidelity window.

    Traces with an error are always kept. It applies to traces first seen from now on.
    """
    with (
        _database() as db,
        _storage_errors(),
        scoped_transaction(db.admin_engine(), Scope(DbRole.STAFF)) as conn,
    ):
        stored = admin.set_trace_sample_percent(conn, org, percent)
    _print_json({"org": org.strip(), "trace_sample_percent": str(stored)})


def parse_retention_changes(pairs: list[str]) -> dict[str, int | None]:
    """``spans=30 events=default`` as overrides to set (days) or remove (None)."""
    changes: dict[str, int | None] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise typer.BadParameter(f"{pair!r} is not CLASS=DAYS or CLASS=default")
        value = value.strip().lower()
        if value == "default":
            changes[name.strip()] = None
            continue
        try:
            changes[name.strip()] = int(value)
        except ValueError:
            raise typer.BadParameter(f"{pair!r}: {value!r} is not a whole number of days") from None
    return changes


@orgs_app.command("set-retention")
def orgs_set_retention(
    name: Annotated[str, typer.Argument(help="Name of the org.")],
    changes: Annotated[
        list[str] | None,
        typer.Argument(
            help=f"CLASS=DAYS to override the plan, CLASS=default to drop an override. "
            f"Classes: {', '.join(DATA_CLASSES)}.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Override an org's retention windows (no CLASS=DAYS: show them); prints the windows."""
    parsed = parse_retention_changes(changes or [])
    with (
        _database() as db,
        _storage_errors(),
        scoped_transaction(db.admin_engine(), Scope(DbRole.STAFF)) as conn,
    ):
        windows = admin.set_retention(conn, name, parsed)
    _print_json(_windows_dict(windows))


def _windows_dict(windows: OrgWindows) -> dict[str, Any]:
    return {
        "org_id": windows.org_id,
        "name": windows.name,
        "plan": windows.plan,
        "overrides": dict(windows.overrides),
        "days": dict(windows.days),
    }


@retention_app.command("run")
def retention_run(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what would be pruned; change nothing.")
    ] = False,
    export_dir: Annotated[
        Path | None,
        typer.Option(help="Write every pruned row to Parquet files under this directory first."),
    ] = None,
    org: Annotated[str | None, typer.Option(help="Prune only this org's rows.")] = None,
    batch_size: Annotated[
        int, typer.Option(min=1, max=1_000_000, help="Rows per delete batch (one transaction).")
    ] = DEFAULT_BATCH_SIZE,
) -> None:
    """Prune every org's data outside its retention windows; prints a JSON summary."""
    if dry_run and export_dir is not None:
        _fail("--export-dir writes what a run prunes, and a dry run prunes nothing")
    with _database() as db, _storage_errors():
        org_id = None
        if org is not None:
            with scoped_transaction(db.admin_engine(), Scope(DbRole.STAFF)) as conn:
                org_id = admin.org_id_by_name(conn, org)
        engine = db.app_engine(pool_size=2, max_overflow=0)  # the run's lock + a step
        try:
            report = run_retention(
                engine,
                datetime.now(UTC),
                dry_run=dry_run,
                export_dir=export_dir,
                batch_size=batch_size,
                org_id=org_id,
            )
        except RetentionExportError as exc:
            _print_json(exc.report.as_dict())  # what was pruned (and exported) before
            _fail(f"{exc}; the rows it was for were not pruned")
    _print_json(report.as_dict())


@keys_app.command("create")
def keys_create(
    org: Annotated[str, typer.Option(help="Name of the org that owns the key.")],
    role: Annotated[str, typer.Option(help=f"Role: {', '.join(KEY_ROLES)}.")],
    name: Annotated[str, typer.Option(help="A label to recognise the key by.")] = "",
) -> None:
    """Create an API key; prints it once (only its hash is stored)."""
    if role not in KEY_ROLES:
        _fail(f"unknown role {role!r}; expected one of {', '.join(KEY_ROLES)}")
    with (
        _database() as db,
        _storage_errors(),
        scoped_transaction(db.admin_engine(), Scope(DbRole.STAFF)) as conn,
    ):
        key = admin.create_key(conn, org, role, name)
    _print_json(
        {
            "key_id": key.key_id,
            "org_id": key.org_id,
            "role": key.role,
            "prefix": key.prefix,
            "key": key.plaintext,
        }
    )


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[
        str, typer.Argument(help="The key's id (UUID) or prefix (aeos_ik_XXXXXXXX).")
    ],
) -> None:
    """Revoke an API key; it stops working at once."""
    with (
        _database() as db,
        _storage_errors(),
        scoped_transaction(db.admin_engine(), Scope(DbRole.STAFF)) as conn,
    ):
        revoked_id, revoked_at, changed = admin.revoke_key(conn, key_id)
    _print_json({"key_id": revoked_id, "revoked_at": revoked_at, "already_revoked": not changed})


@app.command()
def serve(
    only: Annotated[
        list[Part] | None, typer.Option(help="Run only these parts (repeatable).")
    ] = None,
    demo: Annotated[
        bool, typer.Option(help="Create the 'demo' org if missing and print a fresh ingest key.")
    ] = False,
) -> None:
    """Run the service (embedded PostgreSQL unless AEOS_DATABASE_URL is set)."""
    api = load_settings(ApiSettings)
    receiver = load_settings(ReceiverSettings)
    jobs = service_jobs(load_settings(StorageSettings))
    options = ServeOptions(frozenset(only or list(Part)), api, receiver, demo, jobs)
    with _database(own=True) as db, _storage_errors():
        try:
            run(db, options)
        except (RuntimeError, OSError) as exc:  # a part could not start (port in use, ...)
            _fail(str(exc))


@jobs_app.command("list")
def jobs_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the periodic jobs with their interval and their latest run (by any process)."""
    jobs = service_jobs(load_settings(StorageSettings))
    with (
        _database() as db,
        _storage_errors(),
        scoped_transaction(db.admin_engine(), Scope(DbRole.SUPPORT)) as conn,
    ):
        latest = scheduler.latest_runs(conn)
    rows = [_job_row(job, latest.get(job.name)) for job in jobs]
    if as_json:
        _print_json(rows)
        return
    typer.echo(
        f"{'JOB':16}  {'EVERY':>8}  {'LAST START (UTC)':19}  {'STATUS':7}  {'SECONDS':>8}  BY"
    )
    for row in rows:
        started = row["last_started_at"]
        when = f"{started.astimezone(UTC):%Y-%m-%d %H:%M:%S}" if started else "never"
        seconds = "-" if row["seconds"] is None else f"{row['seconds']:.2f}"
        typer.echo(
            f"{row['job']:16}  {_seconds_text(row['interval_s']):>8}  {when:19}  "
            f"{row['status'] or '-':7}  {seconds:>8}  {row['instance'] or '-'}"
        )
        if row["failure"]:
            typer.echo(f"{'':16}  failed: {row['failure']}")


def _job_row(job: scheduler.Job, last: scheduler.JobStatus | None) -> dict[str, Any]:
    finished = last.finished_at if last else None
    return {
        "job": job.name,
        "interval_s": job.interval.total_seconds(),
        "last_started_at": last.started_at if last else None,
        "status": last.status if last else None,
        "seconds": (finished - last.started_at).total_seconds() if last and finished else None,
        "instance": last.instance if last else None,
        "summary": dict(last.summary) if last else None,
        "error": last.error if last else None,
        "failure": last.failure if last else None,
        "last_success_at": last.last_success_at if last else None,
    }


def _seconds_text(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


@jobs_app.command("run")
def jobs_run(
    name: Annotated[str, typer.Argument(help="The job to run (see `aeos jobs list`).")],
    now: Annotated[
        str | None,
        typer.Option(help="Run as if it were this time (ISO 8601; UTC unless an offset)."),
    ] = None,
) -> None:
    """Run one job once now, as the service would (same lock; recorded in its runs)."""
    jobs = service_jobs(load_settings(StorageSettings))
    try:
        job = jobs.get(name)
    except KeyError as exc:
        _fail(str(exc.args[0]))
    at = _parse_time(now) if now is not None else None
    with _database() as db, _storage_errors():
        result = scheduler.attempt(
            db.admin_engine(),
            job,
            instance=f"cli:{scheduler.default_instance()}",
            now=at,
            respect_cadence=False,
        )
    if result.outcome is scheduler.Outcome.LOCKED:
        _fail(f"job {name} is running in another process; try again when it ends")
    _print_json(
        {
            "job": result.job,
            "status": result.outcome,
            "instance": result.instance,
            "started_at": result.started_at,
            "now": result.now,
            "seconds": result.seconds,
            "summary": result.summary,
            "error": result.error,
            "failure": result.failure,
        }
    )
    if result.outcome is scheduler.Outcome.FAILED:
        _fail(f"job {name} failed: {result.failure or 'unknown error'}")


def _parse_time(raw: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(raw.strip())
    except ValueError:
        _fail(f"--now: {raw!r} is not an ISO 8601 time like 2026-11-18T12:00:00Z")
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """``30``, ``30s``, ``5m``, ``2h`` or ``7d`` in seconds."""
    raw = text.strip().lower()
    unit = raw[-1] if raw and raw[-1] in DURATION_UNITS else "s"
    number = raw[:-1] if raw and raw[-1] in DURATION_UNITS else raw
    try:
        value = float(number) * DURATION_UNITS[unit]
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a duration like 30s, 5m, 2h or 7d") from None
    if value < 0:
        raise typer.BadParameter("a duration cannot be negative")
    return value


def demo_org_names(count: int) -> list[str]:
    """``demo``, ``demo-2``, ... : the orgs ``aeos demo`` sends as."""
    return ["demo", *(f"demo-{i}" for i in range(2, count + 1))]


@app.command()
def demo(
    orgs: Annotated[int, typer.Option(min=1, max=50, help="Orgs to send as.")] = 3,
    agents: Annotated[int, typer.Option(min=1, max=200, help="Agents per org.")] = 6,
    rate: Annotated[float, typer.Option(min=0.01, help="Task runs per second.")] = 2.0,
    duration: Annotated[str, typer.Option(help="Live run time (30s, 5m, 1h; 0 = none).")] = "30s",
    backfill: Annotated[str, typer.Option(help="History to generate before now (e.g. 7d).")] = "0",
    endpoint: Annotated[
        str | None, typer.Option(help="OTLP endpoint (host:port = gRPC, http://... = HTTP).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same telemetry).")] = 1,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
) -> None:
    """Send realistic MOSAIC / DAMN / UCE telemetry through the OpenTelemetry SDK."""
    from aeos.demo import DemoError, DemoOptions, run_demo

    receiver = load_settings(ReceiverSettings)
    target = endpoint or f"{receiver.host}:{receiver.grpc_port}"
    with (
        _database() as db,
        _storage_errors(),
        scoped_transaction(db.admin_engine(), Scope(DbRole.STAFF)) as conn,
    ):
        keys = [_demo_key(conn, name) for name in demo_org_names(orgs)]
    options = DemoOptions(
        target, keys, agents, rate, parse_duration(duration), parse_duration(backfill), seed
    )
    try:
        summary = _run_demo_with_progress(run_demo, options, quiet)
    except DemoError as exc:
        _fail(str(exc))
    _print_json(
        {
            "endpoint": target,
            "orgs": demo_org_names(orgs),
            "task_runs": summary.task_runs,
            "spans": summary.spans,
            "llm_calls": summary.llm_calls,
            "log_records": summary.log_records,
            "metric_points": summary.metric_points,
            "expected_cost_usd": str(summary.expected_cost_usd),
            "interrupted": summary.interrupted,
        }
    )


def _run_demo_with_progress(run_demo: Any, options: Any, quiet: bool) -> Any:
    if quiet:
        return run_demo(options)
    with typer.progressbar(length=1, label="task runs") as bar:

        def progress(done: int, total: int) -> None:
            bar.length = max(total, 1)
            bar.update(done - bar.pos)

        return run_demo(options, progress)


def _demo_key(conn: Any, name: str) -> str:
    try:
        return admin.create_key(conn, name, "ingest", "aeos demo").plaintext
    except StorageError:
        return admin.create_org(conn, name, "pro").ingest_key.plaintext


@contextmanager
def _storage_errors() -> Iterator[None]:
    try:
        yield
    except StorageError as exc:
        _fail(str(exc))


def main() -> None:
    """Entry point of the ``aeos`` console script."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
