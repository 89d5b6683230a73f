"""No secret — API keys, database passwords, storage keys — in any log line or error."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url

from tests.e2e.conftest import SAMPLE_DATA, wait_for_jobs
from tests.support.azurite import KEY, azurite
from tests.support.processes import supervisor
from tests.support.services import postgres_database

API_KEY = "very-secret-admin-key-4711"
PASSWORD = "Pa55word-never-logged"


def test_secrets_never_reach_logs_or_answers(tmp_path: Path) -> None:
    with postgres_database() as url, azurite(tmp_path) as blobs:
        with_password = make_url(url).set(password=PASSWORD).render_as_string(hide_password=False)
        answers: list[str] = []
        with supervisor(
            tmp_path,
            workers=1,
            database_url=with_password,
            API_KEYS=f"{API_KEY}=admin",
            AZURE_STORAGE_CONNECTION_STRING=blobs.connection_string,
            LOG_LEVEL="DEBUG",
        ) as service:
            with service.client() as client:
                wrong = {"Authorization": f"Bearer {API_KEY[:-1]}"}
                answers.append(client.get("/jobs", headers=wrong).text)
                answers.append(client.get("/jobs").text)
                client.headers["Authorization"] = f"Bearer {API_KEY}"
                answer = client.post(
                    "/uploads/departments",
                    content=(SAMPLE_DATA / "departments.csv").read_bytes(),
                    headers={"Content-Type": "text/csv"},
                )
                answers.append(answer.text)
                wait_for_jobs(service, client, [answer.json()["job_id"]])
                answers.append(client.get("/readyz").text)
                answers.append(client.get("/metrics").text)
                blobs.stop()  # errors now mention the storage account: never its key
                answers.append(client.get("/readyz").text)
                answers.append(
                    client.post(
                        "/uploads/jobs", content=b"1,Job\n", headers={"Content-Type": "text/csv"}
                    ).text
                )
            logs = "".join(
                p.read_text(errors="replace") for p in (tmp_path).rglob("*.log") if p.is_file()
            )

    assert "request_id" in logs  # the logs were captured at all
    for secret in (API_KEY, API_KEY[:-1], PASSWORD, KEY):
        assert secret not in logs
        for text in answers:
            assert secret not in text
