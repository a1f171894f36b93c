"""Readers: query the stored telemetry through a connection already scoped to a role and org."""
