"""The periodic jobs of the service, by name: what ``aeos serve`` schedules and
``aeos jobs`` lists and runs (see ``storage.jobs.scheduler`` for how they are run)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from alerting.cycle import run_cycle
from alerting.deliver import run_deliveries
from alerting.settings import AlertingSettings
from storage.jobs.agent_status import mark_offline_agents
from storage.jobs.partitions import maintain_partitions
from storage.jobs.rollup_folds import fold_rollups
from storage.jobs.sampling import sweep_traces
from storage.jobs.scheduler import Job, JobRegistry
from storage.jobs.timescale_jobs import check_timescale_jobs
from storage.read.agents import Liveness
from storage.retention.run import run_retention
from storage.settings import StorageSettings

PARTITIONS_EVERY = timedelta(hours=1)
SAMPLING_SWEEP_EVERY = timedelta(minutes=5)
RETENTION_EVERY = timedelta(hours=1)
TIMESCALE_JOBS_EVERY = timedelta(minutes=1)
#: Rules have their own intervals (default 1 min, aligned); the job only looks for due ones.
ALERT_EVALUATION_EVERY = timedelta(seconds=15)
ALERT_DELIVERY_EVERY = timedelta(seconds=10)
AGENT_STATUS_EVERY = timedelta(minutes=1)
#: An hour is folded within a minute of its end (storage.ingest.folds).
ROLLUP_FOLDS_EVERY = timedelta(minutes=1)


def service_jobs(settings: StorageSettings) -> JobRegistry:
    """Every periodic job, configured from ``settings``; add a job here with one line."""
    window = settings.sampling_window

    def sampling_sweep(engine: Engine, now: datetime) -> Mapping[str, Any]:
        return sweep_traces(engine, now, window=window).summary()

    def retention(engine: Engine, now: datetime) -> Mapping[str, Any]:
        return run_retention(engine, now).as_dict()

    alerting = AlertingSettings()

    def alert_evaluation(engine: Engine, now: datetime) -> Mapping[str, Any]:
        return run_cycle(engine, now).as_dict()

    def alert_deliveries(engine: Engine, now: datetime) -> Mapping[str, Any]:
        return run_deliveries(engine, now, alerting).as_dict()

    liveness = Liveness(
        settings.agent_offline_after_intervals, settings.agent_heartbeat_interval_seconds
    )

    def agent_status(engine: Engine, now: datetime) -> Mapping[str, Any]:
        return mark_offline_agents(engine, now, liveness)

    return (
        JobRegistry()
        .add(Job("partitions", PARTITIONS_EVERY, maintain_partitions))
        .add(Job("sampling-sweep", SAMPLING_SWEEP_EVERY, sampling_sweep))
        .add(Job("retention", RETENTION_EVERY, retention))
        .add(Job("timescale-jobs", TIMESCALE_JOBS_EVERY, check_timescale_jobs))
        .add(Job("alert-evaluation", ALERT_EVALUATION_EVERY, alert_evaluation))
        .add(Job("alert-deliveries", ALERT_DELIVERY_EVERY, alert_deliveries))
        .add(Job("agent-status", AGENT_STATUS_EVERY, agent_status))
        .add(Job("rollup-folds", ROLLUP_FOLDS_EVERY, fold_rollups))
    )
