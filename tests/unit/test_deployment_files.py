"""The container files, checked statically: they cannot be built here, so their commands,
ports and variable names are cross-checked against the code that will run inside them."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import dockerfile
import pytest
import yaml

from common.settings import Settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
EMULATOR = json.loads((REPO / "deploy" / "servicebus-emulator.json").read_text())


def _setting_names() -> set[str]:
    names = set()
    for name, info in Settings.model_fields.items():
        names.add((info.alias or name).upper())
    return names


def _environment(service: str) -> dict[str, str]:
    env = COMPOSE["services"][service].get("environment", {})
    return {k: str(v) for k, v in env.items()}


def _resolved(value: str) -> str:
    """Compose's ${VAR:-default} and ${VAR:?message} with nothing set in the environment."""
    value = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)
    return re.sub(r"\$\{[A-Z_]+:\?[^}]*\}", "test-key-0123456789abcdef=admin", value)


@pytest.mark.parametrize("service", ["api", "worker"])
def test_compose_passes_only_variables_the_service_reads(service: str) -> None:
    unknown = set(_environment(service)) - _setting_names()
    assert not unknown, f"{service} sets variables no setting reads: {sorted(unknown)}"


@pytest.mark.parametrize("service", ["api", "worker"])
def test_compose_configuration_selects_the_azure_backends_and_validates(service: str) -> None:
    env = {k.lower(): _resolved(v) for k, v in _environment(service).items()}
    settings = Settings(**env)  # type: ignore[arg-type]

    assert settings.sqlalchemy_url.startswith("mssql+pyodbc://")
    assert "ODBC+Driver+18+for+SQL+Server" in settings.sqlalchemy_url
    assert settings.blob_backend == "azure"
    assert settings.queue_backend == "servicebus"


def test_the_queue_settings_match_the_emulator_queue() -> None:
    [namespace] = EMULATOR["UserConfig"]["Namespaces"]
    [queue] = namespace["Queues"]
    env = _environment("worker")
    assert queue["Name"] == env["SERVICEBUS_QUEUE_NAME"]
    assert queue["Properties"]["MaxDeliveryCount"] == int(env["MAX_DELIVERY_COUNT"])
    minutes = int(re.fullmatch(r"PT(\d+)M", queue["Properties"]["LockDuration"]).group(1))  # type: ignore[union-attr]
    assert minutes * 60 == int(env["LOCK_DURATION_SECONDS"])
    assert queue["Properties"]["RequiresDuplicateDetection"] is True


def test_workers_can_be_scaled() -> None:
    worker = COMPOSE["services"]["worker"]
    assert "container_name" not in worker
    assert "ports" not in worker
    assert {"api", "worker", "azurite", "sqlserver", "servicebus"} <= set(COMPOSE["services"])


def test_the_api_publishes_the_port_it_listens_on() -> None:
    port = _environment("api")["PORT"]
    assert f"{port}:{port}" in COMPOSE["services"]["api"]["ports"]


def _instructions(name: str) -> list[Any]:
    return list(dockerfile.parse_file(str(REPO / name)))


@pytest.mark.parametrize(
    ("name", "module"), [("Dockerfile.api", "api"), ("Dockerfile.worker", "worker")]
)
def test_each_image_runs_its_module_as_a_non_root_user_with_a_health_check(
    name: str, module: str
) -> None:
    instructions = _instructions(name)
    by_cmd: dict[str, list[Any]] = {}
    for ins in instructions:
        by_cmd.setdefault(ins.cmd.upper(), []).append(ins)

    assert by_cmd["FROM"][0].value[0].startswith("python:3.11-slim")
    assert by_cmd["CMD"][-1].value == ("python", "-m", module)
    assert importlib.util.find_spec(module) is not None
    user = by_cmd["USER"][-1].value[0]
    assert user not in ("root", "0")
    assert "HEALTHCHECK" in by_cmd
    health = " ".join(by_cmd["HEALTHCHECK"][-1].value)
    for referenced in re.findall(r"-m\W+([a-z_.]+)", health):
        assert importlib.util.find_spec(referenced) is not None, referenced
    for copy in by_cmd["COPY"]:
        for source in copy.value[:-1]:
            assert (REPO / source).exists(), f"{name} copies missing {source}"
    installs = " ".join(" ".join(i.value) for i in by_cmd["RUN"])
    assert "msodbcsql18" in installs and "ACCEPT_EULA=Y" in installs


def test_the_api_image_exposes_the_default_port() -> None:
    exposed = [i.value for i in _instructions("Dockerfile.api") if i.cmd.upper() == "EXPOSE"]
    assert exposed == [("8000",)]
    assert Settings(host="0.0.0.0", allow_unauthenticated=True).port == 8000
