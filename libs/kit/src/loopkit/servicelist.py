"""The platform's service list (`services.toml`), resolved to each service's definition."""

from __future__ import annotations

import importlib
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from loopkit.runtime import ServiceDefinition

SERVICES_FILE = "services.toml"


@dataclass(frozen=True)
class ListedService:
    name: str
    module: str

    def definition(self) -> ServiceDefinition:
        definition = importlib.import_module(f"{self.module}.main").DEFINITION
        if not isinstance(definition, ServiceDefinition):
            raise TypeError(f"{self.module}.main.DEFINITION is not a ServiceDefinition")
        return definition


def find_services_file(start: Path | None = None) -> Path:
    """CLOSEDLOOP_SERVICES_FILE, else the nearest services.toml from the current folder up."""
    if env := os.environ.get("CLOSEDLOOP_SERVICES_FILE"):
        return Path(env)
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / SERVICES_FILE).is_file():
            return folder / SERVICES_FILE
    raise FileNotFoundError(f"no {SERVICES_FILE} in {here} or above; set CLOSEDLOOP_SERVICES_FILE")


def listed_services(path: Path | None = None) -> list[ListedService]:
    data = tomllib.loads((path or find_services_file()).read_text())
    return [
        ListedService(name, entry["module"]) for name, entry in data.get("services", {}).items()
    ]
