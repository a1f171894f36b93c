"""The query API (FastAPI): staff and per-org views over storage relations."""

from query_api.app import create_app

__all__ = ["create_app"]
