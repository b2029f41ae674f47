"""Worker counts a configuration cannot run are refused with the reason (the processes themselves
are tested in tests/test_workers.py)."""

from __future__ import annotations

import pytest

from loopkit.settings import Settings
from loopkit.workers import WorkersRefused, check_workers

POSTGRES = "postgresql+asyncpg://app@db/closedloop_{service}"


def test_workers_need_a_fixed_grpc_port() -> None:
    settings = Settings(service="identity", database_url=POSTGRES, workers=2, grpc_port=0)
    with pytest.raises(WorkersRefused, match="fixed CLOSEDLOOP_GRPC_PORT"):
        check_workers(settings)


def test_workers_need_postgresql() -> None:
    settings = Settings(service="identity", workers=2, grpc_port=50051)
    with pytest.raises(WorkersRefused, match="needs PostgreSQL"):
        check_workers(settings)
    check_workers(Settings(service="identity", workers=1, grpc_port=50051))  # make run's SQLite


def test_a_worker_count_below_one_is_a_settings_error() -> None:
    with pytest.raises(ValueError, match="workers"):
        Settings(service="identity", workers=0)
