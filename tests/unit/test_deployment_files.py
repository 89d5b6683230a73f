"""The container files, checked statically: they cannot be built or run here, so their commands,
ports and variable names are cross-checked against the code that will run inside them, and the
Service Bus emulator's configuration against the limits of its published Config-schema.json."""

from __future__ import annotations

import importlib.util
import json
import re
import tomllib
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


def _seconds(iso: str) -> float:
    """An ISO 8601 duration of the PnDTnHnMnS form, in seconds."""
    found = re.fullmatch(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?", iso)
    assert found and iso not in ("P", "PT"), f"{iso!r} is not an ISO 8601 duration"
    days, hours, minutes, seconds = (int(g or 0) for g in found.groups())
    return float(((days * 24 + hours) * 60 + minutes) * 60 + seconds)


def _queue(name: str) -> dict[str, Any]:
    [namespace] = EMULATOR["UserConfig"]["Namespaces"]
    [queue] = [q for q in namespace["Queues"] if q["Name"] == name]
    return dict(queue["Properties"])


def test_the_queue_settings_match_the_emulator_queue() -> None:
    env = _environment("worker")
    queue = _queue(env["SERVICEBUS_QUEUE_NAME"])
    assert queue["MaxDeliveryCount"] == int(env["MAX_DELIVERY_COUNT"])
    assert _seconds(queue["LockDuration"]) == float(env["LOCK_DURATION_SECONDS"])
    assert queue["RequiresDuplicateDetection"] is True
    # A message older than the emulator's longest TTL goes to the dead letters, not away.
    assert queue["DeadLetteringOnMessageExpiration"] is True


# The limits of the emulator's Config-schema.json (Azure/azure-service-bus-emulator-installer,
# ServiceBus-Emulator/Schema): an invalid file makes the emulator exit at start.
NAME = re.compile(r"^[A-Za-z0-9]$|^[A-Za-z0-9][\w\-./]*[A-Za-z0-9]$")
QUEUE_PROPERTIES = {
    "DeadLetteringOnMessageExpiration": bool,
    "DefaultMessageTimeToLive": str,
    "DuplicateDetectionHistoryTimeWindow": str,
    "ForwardDeadLetteredMessagesTo": str,
    "ForwardTo": str,
    "LockDuration": str,
    "MaxDeliveryCount": int,
    "RequiresDuplicateDetection": bool,
    "RequiresSession": bool,
}
DURATION_LIMITS = {  # (least, most) seconds
    "DefaultMessageTimeToLive": (5 * 60, 60 * 60),
    "DuplicateDetectionHistoryTimeWindow": (5, 5 * 60),
    "LockDuration": (5, 5 * 60),
}


def test_the_emulator_configuration_is_valid_against_its_schema() -> None:
    config = EMULATOR["UserConfig"]
    assert set(config) == {"Namespaces", "Logging"}
    assert config["Logging"]["Type"] in ("File", "Console", "File,Console", "Console,File")
    [namespace] = config["Namespaces"]
    assert namespace["Name"] == "sbemulatorns"
    assert {"Name", "Queues", "Topics"} <= set(namespace), "Queues and Topics are required"
    assert len(namespace["Queues"]) + len(namespace["Topics"]) <= 50
    for queue in namespace["Queues"]:
        assert NAME.match(queue["Name"]), queue["Name"]
        properties = queue["Properties"]
        assert set(properties) <= set(QUEUE_PROPERTIES), set(properties) - set(QUEUE_PROPERTIES)
        for key, kind in QUEUE_PROPERTIES.items():
            assert key not in properties or type(properties[key]) is kind, (queue["Name"], key)
        for key, (least, most) in DURATION_LIMITS.items():
            if key in properties:
                assert least <= _seconds(properties[key]) <= most, (queue["Name"], key)
        assert 1 <= properties.get("MaxDeliveryCount", 3) <= 10
        for target in ("ForwardTo", "ForwardDeadLetteredMessagesTo"):
            assert properties.get(target, "") == "" or NAME.match(properties[target])


def test_the_limit_checks_refuse_what_the_emulator_refuses() -> None:
    # The old configuration's values: a 14-day TTL and a 10-minute window are past the limits.
    assert _seconds("P14D") > DURATION_LIMITS["DefaultMessageTimeToLive"][1]
    assert _seconds("PT10M") > DURATION_LIMITS["DuplicateDetectionHistoryTimeWindow"][1]
    assert _seconds("PT1M") == 60 and _seconds("PT5S") == 5


def test_the_contract_suite_has_its_emulator_queues() -> None:
    from tests.contract.live import contract_queues

    assert set(contract_queues()) == {(5.0, 10), (5.0, 2)}


# The emulator accepts about ten AMQP connections; each process holds at most this many.
EMULATOR_CONNECTIONS = 10


def test_the_scale_the_compose_stack_suggests_fits_the_emulators_connections() -> None:
    from common.queue.servicebus import ServiceBusJobQueue

    texts = [(REPO / "docker-compose.yml").read_text(), (REPO / "docs/deployment.md").read_text()]
    scales = [int(n) for text in texts for n in re.findall(r"--scale worker=(\d+)", text)]
    assert scales, "the compose stack's worker count is documented"
    for workers in scales:
        assert (1 + workers) * ServiceBusJobQueue.MAX_CONNECTIONS <= EMULATOR_CONNECTIONS


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
    copied = [source for copy in by_cmd["COPY"] for source in copy.value[:-1]]
    for source in copied:
        assert (REPO / source).exists(), f"{name} copies missing {source}"
    packages = find_packages(REPO)
    assert set(copied) >= packages, f"{name} leaves out {packages - set(copied)}"
    installs = " ".join(" ".join(i.value) for i in by_cmd["RUN"])
    assert "msodbcsql18" in installs and "ACCEPT_EULA=Y" in installs


def find_packages(repo: Path) -> set[str]:
    """The packages the service installs (pyproject.toml's setuptools ``include``)."""
    project = tomllib.loads((repo / "pyproject.toml").read_text())
    return {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}


@pytest.mark.parametrize("name", ["Dockerfile.api", "Dockerfile.worker"])
def test_each_image_installs_its_dependencies_before_its_source_and_no_test_tools(
    name: str,
) -> None:
    instructions = _instructions(name)
    order = [(i.cmd.upper(), " ".join(i.value)) for i in instructions]
    first_source = next(
        n for n, (cmd, value) in enumerate(order) if cmd == "COPY" and value.split()[0] == "api"
    )
    dependencies = next(
        n for n, (cmd, value) in enumerate(order) if cmd == "RUN" and "pip install -r" in value
    )
    assert dependencies < first_source, "a source change would reinstall every dependency"
    runs = " ".join(value for cmd, value in order if cmd == "RUN")
    assert "pip install --no-deps ." in runs
    assert "[dev]" not in runs and "pytest" not in runs
    assert "purge -y curl gnupg" in runs
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {"tests", ".venv", ".tools"} <= set(ignored)


def test_make_test_live_is_documented_and_reads_the_names_the_suites_read() -> None:
    from tests.contract import live

    makefile = (REPO / "Makefile").read_text()
    deployment = (REPO / "docs/deployment.md").read_text()
    assert re.search(r"^test-live:", makefile, re.MULTILINE)
    assert "make test-live" in deployment
    for env in (live.SERVICEBUS_ENV, live.STORAGE_ENV, "TEST_MSSQL_URL"):
        assert env in makefile and env in deployment, env


def test_the_database_the_stack_creates_allows_snapshot_backups() -> None:
    from tests.support.tsql import problems

    command = " ".join(COMPOSE["services"]["create-database"]["entrypoint"])
    statements = re.findall(r'-Q "([^"]+)"', command)
    assert "ALTER DATABASE ingest SET ALLOW_SNAPSHOT_ISOLATION ON" in statements
    assert problems(statements) == {}


def test_the_api_image_exposes_the_default_port() -> None:
    exposed = [i.value for i in _instructions("Dockerfile.api") if i.cmd.upper() == "EXPOSE"]
    assert exposed == [("8000",)]
    assert Settings(host="0.0.0.0", allow_unauthenticated=True).port == 8000
