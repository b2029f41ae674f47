"""What the operator commands share (`closedloop migrate`, `services`, `deadletters`, and each
service's own tools): the service list with its definitions, settings, migrations, the NATS
address. Part of the runtime kit, so the images carry it; `make run` (loopkit_dev.runner) builds
on it."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy.engine import make_url

from loopkit import migrations
from loopkit.db import is_sqlite
from loopkit.runtime import ServiceDefinition
from loopkit.servicelist import ListedService, listed_services
from loopkit.settings import Settings, load_settings

DEFAULT_NATS_PORT = 4250


class PlatformError(RuntimeError):
    """Something the person running the command must fix; printed as one message."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def load_services() -> list[tuple[ListedService, ServiceDefinition]]:
    """services.toml with each service's definition imported; any problem is a PlatformError."""
    try:
        listed = listed_services()
    except FileNotFoundError as exc:
        raise PlatformError(str(exc), exit_code=2) from None
    except (tomllib.TOMLDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise PlatformError(f"services.toml is malformed: {exc!r}", exit_code=2) from None
    loaded = []
    for service in listed:
        try:
            loaded.append((service, service.definition()))
        except (ImportError, AttributeError, TypeError) as exc:
            raise PlatformError(
                f"services.toml lists {service.name}, but {service.module} cannot be loaded: "
                f"{exc} (is it installed? make install)",
                exit_code=2,
            ) from None
        if loaded[-1][1].spec.name != service.name:
            # Settings are read as CLOSEDLOOP_<SPEC.name>_*: the two names must agree.
            raise PlatformError(
                f"services.toml entry {service.name} is {service.module}, whose SPEC.name is "
                f"{loaded[-1][1].spec.name!r}; use that name for the entry",
                exit_code=2,
            )
    return loaded


def nats_port() -> int:
    raw = os.environ.get("CLOSEDLOOP_NATS_PORT", str(DEFAULT_NATS_PORT))
    if not raw.isdigit():
        raise PlatformError(f"CLOSEDLOOP_NATS_PORT must be a port number, not {raw!r}", 2)
    return int(raw)


def nats_url_from_env() -> str:
    """CLOSEDLOOP_NATS_URL, else the bundled server's address (CLOSEDLOOP_NATS_PORT or 4250)."""
    return os.environ.get("CLOSEDLOOP_NATS_URL") or f"nats://127.0.0.1:{nats_port()}"


def settings_for(definition: ServiceDefinition) -> Settings:
    try:
        return load_settings(definition.spec, definition.settings_cls)
    except ValidationError as exc:
        raise PlatformError(f"{definition.spec.name}: invalid settings: {exc}", 2) from None


def safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def migrate(
    name: str, definition: ServiceDefinition, settings: Settings, *, wait_s: float = 0.0
) -> None:
    """Apply a service's migrations; `wait_s` > 0 first waits that long for the database server
    (the chart's init container, started beside a PostgreSQL pod that is still coming up)."""
    url = settings.resolved_database_url()
    database = make_url(url).database
    if is_sqlite(url) and database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)  # SQLite makes files, not folders
    try:
        if wait_s > 0:
            migrations.wait_for_database(url, wait_s)
        migrations.upgrade(definition.migrations_dir, url, service=name)
    except migrations.MigrationRefused as exc:
        raise PlatformError(str(exc)) from None
    except Exception as exc:  # any driver or Alembic failure: the message is what matters
        raise PlatformError(
            f"{name}: migrations failed on {safe_url(url)}: {type(exc).__name__}: {exc}"
        ) from None
