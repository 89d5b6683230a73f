"""How ``servicebus.py`` makes its SDK clients: by connection string or by namespace with
``DefaultAzureCredential``. Nothing here connects; each factory is called on first use."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from azure.servicebus import ServiceBusClient

from common.queue import servicebus_mapping as mapping

if TYPE_CHECKING:
    from azure.servicebus.management import ServiceBusAdministrationClient

AdminFactory = Callable[[], "ServiceBusAdministrationClient"]


@dataclass(frozen=True)
class Factories:
    """The messaging client, the administration client (None where it cannot be reached) and
    the secrets to keep out of error messages."""

    client: Callable[[], ServiceBusClient]
    admin: AdminFactory | None
    secrets: tuple[str, ...] = ()


def by_connection_string(connection_string: str, **client_options: Any) -> Factories:
    """``client_options`` go to the messaging client (e.g. ``retry_total``). The emulator gets
    no administration client: its administration API is plain HTTP on a port of its own, which
    the Python SDK does not reach."""

    def client() -> ServiceBusClient:
        return ServiceBusClient.from_connection_string(connection_string, **client_options)

    def admin() -> ServiceBusAdministrationClient:
        from azure.servicebus.management import ServiceBusAdministrationClient

        return ServiceBusAdministrationClient.from_connection_string(connection_string)

    emulator = mapping.names_emulator(connection_string)
    return Factories(client, None if emulator else admin, mapping.secret_parts(connection_string))


def by_namespace(namespace: str) -> Factories:
    """Both clients with ``DefaultAzureCredential`` (a managed identity in Azure)."""

    def client() -> ServiceBusClient:
        from azure.identity import DefaultAzureCredential

        return ServiceBusClient(namespace, DefaultAzureCredential())

    def admin() -> ServiceBusAdministrationClient:
        from azure.identity import DefaultAzureCredential
        from azure.servicebus.management import ServiceBusAdministrationClient

        return ServiceBusAdministrationClient(namespace, DefaultAzureCredential())

    return Factories(client, admin)
