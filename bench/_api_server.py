"""The query API for bench/api.py in its own process: ``python bench/_api_server.py URL PORT``.

The same ``create_app`` the service serves, on one uvicorn process (its sync routes run in
uvicorn's thread pool), logging only warnings, with a rate limit high enough not to
interfere with the benchmark.
"""

from __future__ import annotations

import sys
from pathlib import Path

import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from query_api.app import create_app
from query_api.settings import ApiSettings
from storage.database import Database
from storage.settings import parse_database_url
from tests.conftest import TEST_APP_PASSWORD


def main() -> None:
    url, port = parse_database_url(sys.argv[1]), int(sys.argv[2])
    db = Database(url, TEST_APP_PASSWORD)
    settings = ApiSettings(rate_per_minute=0)
    app = create_app(db.app_engine(pool_size=16), settings)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")


if __name__ == "__main__":
    main()
