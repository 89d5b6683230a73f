"""Managed identity: ``AZURE_STORAGE_ACCOUNT_URL`` and ``SERVICEBUS_FULLY_QUALIFIED_NAMESPACE``
build the Azure clients with ``DefaultAzureCredential``.

The credential is replaced where the SDK takes it (``azure.identity.DefaultAzureCredential``)
by a stub that hands out tokens of the kind Microsoft Entra ID issues. For Blob Storage the
token goes all the way: Azurite, started with HTTPS and ``--oauth basic``, checks its issuer,
audience and lifetime, as Azure Storage does (without the signature).
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import azure.identity
import pytest
from azure.core.credentials import AccessToken
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from common.blob.azure import AzureBlobStore
from common.bootstrap import build_blob_store, build_queue
from common.errors import PermanentError
from common.queue.servicebus import ServiceBusJobQueue
from common.settings import Settings
from common.sql.db import Database
from tests.support.azurite import ACCOUNT, BINARY
from tests.support.processes import free_port
from tests.support.services import unavailable

STORAGE_SCOPE = "https://storage.azure.com/.default"
SERVICEBUS_SCOPE = "https://servicebus.azure.net/.default"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


def _jwt(claims: dict[str, Any]) -> str:
    """An unsigned JWT (Azurite's basic OAuth does not check signatures)."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


class StubCredential:
    """Stands in for ``DefaultAzureCredential``: records the scopes asked for and answers with
    a token for ``audience``."""

    made: list[StubCredential] = []
    audience = "https://storage.azure.com"

    def __init__(self, **_options: Any) -> None:
        self.scopes: list[tuple[str, ...]] = []
        StubCredential.made.append(self)

    def get_token(self, *scopes: str, **_kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        now = int(time.time())
        claims = {
            "aud": self.audience,
            "iss": f"https://sts.windows.net/{TENANT}/",
            "iat": now - 60,
            "nbf": now - 60,
            "exp": now + 3600,
            "oid": "00000000-0000-0000-0000-000000000001",
        }
        return AccessToken(_jwt(claims), now + 3600)

    def close(self) -> None:
        pass


@pytest.fixture
def credential(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[StubCredential]]:
    StubCredential.made = []
    monkeypatch.setattr(azure.identity, "DefaultAzureCredential", StubCredential)
    yield StubCredential


def _self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def azurite_with_oauth(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Azurite over HTTPS, taking bearer tokens; yields the account URL. The SDK trusts its
    certificate through REQUESTS_CA_BUNDLE, as it would a company's own CA."""
    if not BINARY.exists():
        unavailable(f"Azurite ({BINARY} is missing; `make test` installs it)")
    cert, key = _self_signed(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    port = free_port()
    with (tmp_path / "azurite.log").open("wb") as log:
        process = subprocess.Popen(
            [
                str(BINARY),
                *("--blobHost", "127.0.0.1", "--blobPort", str(port)),
                *("--oauth", "basic", "--cert", str(cert), "--key", str(key)),
                *("--inMemoryPersistence", "--skipApiVersionCheck", "--disableTelemetry"),
            ],
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
        try:
            deadline = time.monotonic() + 30
            while process.poll() is None and time.monotonic() < deadline:
                with suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
                    break
                time.sleep(0.1)
            else:
                unavailable(f"Azurite with HTTPS (see {tmp_path / 'azurite.log'})")
            yield f"https://127.0.0.1:{port}/{ACCOUNT}"
        finally:
            process.terminate()
            process.wait(timeout=10)


def test_an_account_url_reaches_blob_storage_with_the_default_credential(
    tmp_path: Path, credential: type[StubCredential], azurite_with_oauth: str
) -> None:
    settings = Settings(data_dir=tmp_path, azure_storage_account_url=azurite_with_oauth)

    # When the blob store is built from the account URL and used
    store = build_blob_store(settings)
    assert isinstance(store, AzureBlobStore)
    store.ensure_container("historic")
    writer = store.open_writer("historic", "jobs/one.csv")
    writer.write(b"1,Job\n")
    writer.commit({"table": "jobs"})

    # Then every request went with a token of the one DefaultAzureCredential, for Storage
    assert b"".join(store.read_range("historic", "jobs/one.csv")) == b"1,Job\n"
    [made] = credential.made
    assert made.scopes and set(made.scopes) == {(STORAGE_SCOPE,)}
    store.close()


def test_a_token_for_another_audience_is_refused(
    tmp_path: Path,
    credential: type[StubCredential],
    azurite_with_oauth: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The same store with a token meant for Service Bus: Azurite refuses it, so the test
    # above passes only because the right token reached it.
    monkeypatch.setattr(StubCredential, "audience", "https://servicebus.azure.net")
    store = build_blob_store(
        Settings(data_dir=tmp_path, azure_storage_account_url=azurite_with_oauth)
    )

    with pytest.raises(PermanentError, match=r"HTTP 403 .*\(AuthenticationFailed\)"):
        store.ensure_container("historic")
    store.close()


def test_a_namespace_builds_the_service_bus_client_with_the_default_credential(
    tmp_path: Path, credential: type[StubCredential]
) -> None:
    namespace = "ingest-test.servicebus.windows.net"
    settings = Settings(data_dir=tmp_path, servicebus_fully_qualified_namespace=namespace)
    db = Database.from_url(f"sqlite:///{tmp_path / 'unused.db'}")

    queue = build_queue(settings, db)

    assert isinstance(queue, ServiceBusJobQueue)
    assert credential.made == []  # nothing is built, nor connects, before it is used
    client = queue._get_client()
    [made] = credential.made
    assert client.fully_qualified_namespace == namespace
    assert client._credential is made
    assert queue.queue_name == settings.queue_name
    queue.close()
    db.dispose()
