"""The periodic jobs of the service, by name: what ``aeos serve`` schedules and
``aeos jobs`` lists and runs (see ``storage.jobs.scheduler`` for how they are run)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from storage.jobs.partitions import maintain_partitions
from storage.jobs.sampling import sweep_traces
from storage.jobs.scheduler import Job, JobRegistry
from storage.retention.run import run_retention
from storage.settings import StorageSettings

PARTITIONS_EVERY = timedelta(hours=1)
SAMPLING_SWEEP_EVERY = timedelta(minutes=5)
RETENTION_EVERY = timedelta(hours=1)


def service_jobs(settings: StorageSettings) -> JobRegistry:
    """Every periodic job, configured from ``settings``; add a job here with one line."""
    window = settings.sampling_window

    def sampling_sweep(engine: Engine, now: datetime) -> Mapping[str, Any]:
        return sweep_traces(engine, now, window=window).summary()

    def retention(engine: Engine, now: datetime) -> Mapping[str, Any]:
        return run_retention(engine, now).as_dict()

    return (
        JobRegistry()
        .add(Job("partitions", PARTITIONS_EVERY, maintain_partitions))
        .add(Job("sampling-sweep", SAMPLING_SWEEP_EVERY, sampling_sweep))
        .add(Job("retention", RETENTION_EVERY, retention))
    )
