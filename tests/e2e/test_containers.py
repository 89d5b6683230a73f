"""``BLOB_CONTAINER_NAME_HISTORIC`` and ``BLOB_CONTAINER_NAME_BACKUP``: an API or a worker
starting creates the containers so named, and uploads and backups go into them."""

from __future__ import annotations

import uuid
from pathlib import Path

from azure.storage.blob import BlobServiceClient

from tests.e2e.conftest import SAMPLE_DATA, wait_for_jobs
from tests.support.azurite import shared_azurite
from tests.support.processes import api, worker


def custom_names() -> dict[str, str]:
    suffix = uuid.uuid4().hex[:10]
    return {
        "BLOB_CONTAINER_NAME_HISTORIC": f"uploads-{suffix}",
        "BLOB_CONTAINER_NAME_BACKUP": f"copies-{suffix}",
    }


def containers(connection_string: str) -> set[str]:
    with BlobServiceClient.from_connection_string(connection_string) as service:
        return {c.name for c in service.list_containers()}


def blobs(connection_string: str, container: str) -> list[str]:
    with BlobServiceClient.from_connection_string(connection_string) as service:
        return [b.name for b in service.get_container_client(container).list_blobs()]


def test_an_api_creates_its_containers_at_start(tmp_path: Path) -> None:
    azurite = shared_azurite().connection_string
    names = custom_names()
    assert not set(names.values()) & containers(azurite)

    with api(tmp_path, AZURE_STORAGE_CONNECTION_STRING=azurite, **names):
        assert set(names.values()) <= containers(azurite)


def test_a_worker_creates_its_containers_and_uploads_and_backups_go_there(tmp_path: Path) -> None:
    azurite = shared_azurite().connection_string
    names = custom_names()
    settings = {"AZURE_STORAGE_CONNECTION_STRING": azurite, **names}
    with worker(tmp_path, **settings) as consumer:
        # Given a worker started first: it created the containers,
        assert set(names.values()) <= containers(azurite)
        # when an API on the same settings takes an upload and a backup,
        with api(tmp_path, **settings) as server, server.client() as client:
            answer = client.post(
                "/uploads/departments",
                content=(SAMPLE_DATA / "departments.csv").read_bytes(),
                headers={"Content-Type": "text/csv"},
            )
            assert answer.status_code == 202, answer.text
            job_id = answer.json()["job_id"]
            assert wait_for_jobs(consumer, client, [job_id])[job_id]["status"] == "succeeded"
            backup = client.post("/backups/departments")
            assert backup.status_code == 201, backup.text

    # then the file and the backup are in the containers named.
    uploaded = blobs(azurite, names["BLOB_CONTAINER_NAME_HISTORIC"])
    backed_up = blobs(azurite, names["BLOB_CONTAINER_NAME_BACKUP"])
    assert len(uploaded) == 1 and uploaded[0].startswith("departments/")
    assert backed_up == [f"departments/{backup.json()['backup_id']}.avro"]
