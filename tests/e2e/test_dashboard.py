"""The dashboard in a real browser: headless Chromium on the page the API serves at ``/``.

An operator uploads the sample files through the page and watches the jobs finish, reads the
rejected rows, resubmits and purges a dead letter, backs up and restores, and reads the reports;
every figure on the page is checked against the API. Screenshots land in ``test-artifacts/``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.e2e.conftest import (
    SAMPLE_DATA,
    binary_bytes,
    first_blank_field,
    upload_samples,
    wait_for_jobs,
)
from tests.support.browser import Watched, chromium, watch
from tests.support.jobs import record_jobs_in
from tests.support.processes import Started, api, supervisor
from tests.support.shop import SHOP, SHOP_ORDER

JOB_SECONDS = 60
EXPECTED = {"departments": (12, 0), "jobs": (183, 0), "hired_employees": (1929, 70)}
HIRED_COLUMNS = ["id", "name", "datetime", "department_id", "job_id"]
QUARTERS = ["Q1", "Q2", "Q3", "Q4"]

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


def newest_job(client: httpx.Client, table: str) -> dict[str, Any]:
    page = client.get("/jobs", params={"table": table, "limit": 1}).json()
    assert page["items"], f"no job for {table}"
    return dict(page["items"][0])


def upload_through_page(page: Page, table: str, path: Path) -> None:
    page.select_option("#upload-table", table)
    page.set_input_files("#upload-file", str(path))
    page.click("#upload-form button[type=submit]")
    expect(page.locator("#notice")).to_contain_text(f"Uploaded {path.name}")


def job_row(page: Page, job_id: str) -> Locator:
    return page.locator(f'#jobs-table tr[data-job-id="{job_id}"]')


def cells(row: Locator) -> list[str]:
    return [t.strip() for t in row.locator("td").all_inner_texts()]


def test_operator_works_through_the_dashboard(
    browser: Browser, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    with supervisor(tmp_path, workers=1) as service, service.client() as client:
        w = watch(browser, service.base_url or "", request.node.name)
        page = w.page
        page.goto("/")
        expect(page.locator("body")).to_have_attribute("data-loaded", "jobs")
        expect(page.locator("#key-form")).to_be_hidden()  # no keys configured
        expect(page.locator("#health")).to_have_text("ready")

        job_ids = load_samples(page, client)
        w.screenshot("jobs")
        check_rejected_rows(w, client, job_ids["hired_employees"])
        check_dead_letter(w, service, client, tmp_path)
        check_cancel(w, service, client)
        check_backups(w, client)
        check_reports(w, client)

        assert w.errors == [], w.errors
        assert w.console_errors == [], w.console_errors
        assert w.foreign_requests() == [], "the page fetched from elsewhere"


def load_samples(page: Page, client: httpx.Client) -> dict[str, str]:
    """Upload the three sample files through the page; each row goes live to succeeded."""
    job_ids = {}
    for table, (inserted, rejected) in EXPECTED.items():
        upload_through_page(page, table, SAMPLE_DATA / f"{table}.csv")
        job = newest_job(client, table)
        row = job_row(page, job["job_id"])
        # The page was never reloaded: the row follows the job until it is done.
        expect(row).to_have_attribute("data-status", "succeeded", timeout=JOB_SECONDS * 1000)
        expect(row.locator(".progress-figure")).to_have_text("100%")
        expect(row.locator("td").nth(6)).to_have_text(f"{inserted:,}")
        expect(row.locator("td").nth(7)).to_have_text(f"{rejected:,}")
        expect(row.locator("td").nth(5)).to_have_text(f"{inserted + rejected:,}")
        assert cells(row)[1:3] == [table, f"{table}.csv"]
        job_ids[table] = job["job_id"]
    expect(page.locator("#jobs-total")).to_have_text("(3)")
    return job_ids


def check_rejected_rows(w: Watched, client: httpx.Client, job_id: str) -> None:
    page = w.page
    job_row(page, job_id).locator("a.rejected-link").click()
    expect(page.locator("body")).to_have_attribute("data-loaded", "job")
    assert page.url.endswith(f"#job/{job_id}")
    expect(page.locator("#rejected-total")).to_have_text("(70)")
    rows = page.locator("#rejected-table tbody tr")
    expect(rows).to_have_count(50)  # one page
    first = first_blank_field(SAMPLE_DATA / "hired_employees.csv", HIRED_COLUMNS)
    line, raw, why = cells(rows.first)
    assert int(line) == first.line
    for column in first.blank_columns:
        assert f"{column} required: {column} is required" in why
    stored = client.get(f"/jobs/{job_id}/rejected-rows", params={"limit": 50}).json()["items"]
    assert [c[0] for c in (cells(r) for r in rows.all())] == [str(r["line"]) for r in stored]
    assert raw == stored[0]["raw"]
    w.screenshot("rejected-rows")

    # Every rejected row, as the CSV the API gives.
    with page.expect_download() as download:
        page.click("#rejected-csv")
    saved = Path(download.value.path()).read_bytes().decode("utf-8")
    expected_csv = client.get(f"/jobs/{job_id}/rejected-rows", headers={"Accept": "text/csv"}).text
    assert saved == expected_csv
    assert len(saved.splitlines()) == 1 + 70
    assert download.value.suggested_filename == f"rejected-{job_id}.csv"

    page.click("#rejected-pager button:has-text('Older')")
    expect(page.locator("#rejected-pager")).to_contain_text("51\N{EN DASH}70 of 70")
    expect(rows).to_have_count(20)


def check_cancel(w: Watched, service: Started, client: httpx.Client) -> None:
    """A queued job (written into the service's database, so no worker takes it first) is
    cancelled from its page; the button asks first and goes once the job has ended."""
    job_id = "cafe4567-0000-4000-8000-00000000000d"
    record_jobs_in(service.folder, [job_id], "jobs")
    page = w.page
    page.goto(f"/#job/{job_id}")
    summary = page.locator("#job-summary")
    expect(summary).to_contain_text("queued")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#job-actions button", has_text="Cancel").click()
    expect(page.locator("#notice")).to_contain_text("Cancelled job")
    expect(summary).to_contain_text("cancelled")
    expect(page.locator("#job-actions button")).to_have_count(0)
    assert client.get(f"/jobs/{job_id}").json()["status"] == "cancelled"


def check_dead_letter(w: Watched, service: Started, client: httpx.Client, tmp_path: Path) -> None:
    page = w.page
    page.click("a[data-nav=jobs]")
    binary = tmp_path / "not-a.csv"
    binary.write_bytes(binary_bytes())
    upload_through_page(page, "jobs", binary)
    job_id = newest_job(client, "jobs")["job_id"]
    expect(job_row(page, job_id)).to_have_attribute(
        "data-status", "failed", timeout=JOB_SECONDS * 1000
    )
    expect(page.locator("#dead-letter-count")).to_have_text("1", timeout=JOB_SECONDS * 1000)

    page.click("a[data-nav=dead-letters]")
    letter = page.locator(f'#dead-letters-table tr[data-job-id="{job_id}"]')
    expect(letter).to_have_count(1)
    expect(letter.locator("td").nth(2)).to_have_text("NotText")
    w.screenshot("dead-letters")
    first_id = letter.get_attribute("data-dead-letter-id")
    first_time = client.get(f"/dead-letters/{first_id}").json()["dead_lettered_at"]

    # Resubmit: the job runs again, fails again, and is dead-lettered anew.
    letter.locator("button.resubmit").click()
    expect(page.locator("#notice")).to_contain_text("queued again")
    deadline = time.monotonic() + JOB_SECONDS
    while True:
        again = [x for x in client.get("/dead-letters").json()["items"] if x["job_id"] == job_id]
        if again and again[0]["dead_lettered_at"] > first_time:
            break
        assert time.monotonic() < deadline, f"not dead-lettered again\n{service.stderr_tail()}"
        time.sleep(0.2)
    expect(letter).to_have_count(1, timeout=JOB_SECONDS * 1000)
    # The message is dead-lettered first, then its job marked failed.
    while client.get(f"/jobs/{job_id}").json()["status"] != "failed":
        assert time.monotonic() < deadline, f"job not failed again\n{service.stderr_tail()}"
        time.sleep(0.2)

    # Purge, once confirmed: gone from the page and from the queue.
    page.once("dialog", lambda dialog: dialog.accept())
    letter.locator("button.purge").click()
    expect(page.locator("#notice")).to_contain_text("Dead letter purged")
    expect(letter).to_have_count(0)
    expect(page.locator("#dead-letters-empty")).to_be_visible()
    assert client.get("/dead-letters").json()["total"] == 0


def check_backups(w: Watched, client: httpx.Client) -> None:
    page = w.page
    page.click("a[data-nav=backups]")
    expect(page.locator("#backups-empty")).to_be_visible()
    page.click("#backup-all")
    expect(page.locator("#notice")).to_contain_text("hired_employees (1,929 rows)")
    rows = page.locator("#backups-table tbody tr")
    expect(rows).to_have_count(3)
    listed = client.get("/backups").json()["items"]
    assert sorted(b["table"] for b in listed) == sorted(EXPECTED)
    by_table = {b["table"]: b for b in listed}
    hired = page.locator(
        f'#backups-table tr[data-backup-id="{by_table["hired_employees"]["backup_id"]}"]'
    )
    assert cells(hired)[1:3] == ["hired_employees", "1,929"]
    w.screenshot("backups")

    # Restore, once confirmed: the table holds exactly the backup's rows.
    client.post("/tables/hired_employees/rows", json={"rows": [extra_hire()]}).raise_for_status()
    page.once("dialog", lambda dialog: dialog.accept())
    hired.locator("button.restore").click()
    expect(page.locator("#notice")).to_contain_text("Restored hired_employees: 1,929 rows")
    fresh = client.post("/backups/hired_employees").json()
    assert fresh["row_count"] == 1929


def extra_hire() -> dict[str, Any]:
    return {
        "id": 900001,
        "name": "Not In The Backup",
        "datetime": "2021-06-01T00:00:00Z",
        "department_id": 1,
        "job_id": 1,
    }


def check_reports(w: Watched, client: httpx.Client) -> None:
    page = w.page
    page.click("a[data-nav=reports]")
    expect(page.locator("body")).to_have_attribute("data-loaded", "reports")
    # Without a year chosen, the page shows the latest year with hires, as the API does.
    quarters = client.get("/reports/hires-by-quarter").json()["rows"]
    expected: dict[tuple[str, str], int] = {}
    for row in quarters:
        for q in QUARTERS:
            key = (row["department"], q)
            expected[key] = expected.get(key, 0) + row[q]
    drawn = {}
    for bar in page.locator("#quarter-chart rect.bar").all():
        label, series = bar.get_attribute("data-label"), bar.get_attribute("data-series")
        title = bar.locator("title").text_content() or ""
        match = re.fullmatch(r"(.+), (Q[1-4]): (\d+)", title)
        assert match and (match[1], match[2]) == (label, series), title
        drawn[(match[1], match[2])] = int(match[3])
    assert drawn == {k: v for k, v in expected.items() if v}
    assert len({d for d, _ in drawn}) == len({r["department"] for r in quarters})

    above = client.get("/reports/departments-above-mean").json()
    table = [cells(r) for r in page.locator("#mean-table tbody tr").all()]
    assert table == [[str(r["id"]), r["department"], f"{r['hired']:,}"] for r in above["rows"]]
    expect(page.locator("#mean-chart rect.bar")).to_have_count(len(above["rows"]))
    expect(page.locator("#mean-figure")).to_contain_text(f"mean {above['mean']:.1f}")
    w.screenshot("reports")


def test_dashboard_asks_for_a_key_and_respects_its_role(
    browser: Browser, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    keys = "reader-key-0123456789=read,admin-key-0123456789=admin"
    with api(tmp_path, API_KEYS=keys) as service:
        w = watch(browser, service.base_url or "", request.node.name)
        page = w.page
        page.goto("/")
        # Without a key the page shows no data, says why, and asks for one.
        expect(page.locator("#key-form")).to_be_visible()
        expect(page.locator("#notice")).to_contain_text("Authentication required")
        page.fill("#api-key", "reader-key-0123456789")
        page.click("#key-form button")
        expect(page.locator("#jobs-empty")).to_be_visible()
        expect(page.locator("#key-form")).to_be_hidden()
        # A read key sees jobs but may not handle dead letters: the page says which role it needs.
        page.click("a[data-nav=dead-letters]")
        expect(page.locator("#notice")).to_contain_text("needs a key with the admin role")
        w.screenshot("read-key")
        # and offers to take another key, which the page then uses.
        expect(page.locator("#key-form")).to_be_visible()
        page.fill("#api-key", "admin-key-0123456789")
        page.click("#key-form button")
        expect(page.locator("#dead-letters-empty")).to_be_visible()
        assert w.errors == [], w.errors
        assert w.foreign_requests() == []


# Elements whose text is one word, a figure or a badge: each is drawn on a single line.
WHOLE_TEXT = (
    "header nav a, #jobs-table td.whole, #jobs-table code, .status, .progress-figure, "
    ".grid td.num, #backups-table td.whole, #dead-letters-table td.whole"
)
LAYOUT = """(selector) => {
  const header = document.querySelector("header").getBoundingClientRect();
  const broken = [];
  for (const node of document.querySelectorAll(selector)) {
    if (!node.offsetParent) continue;  // not shown in this view
    const range = document.createRange();
    range.selectNodeContents(node);
    // Boxes on one line overlap vertically (a badge is taller than the text beside it).
    const boxes = [...range.getClientRects()].filter((r) => r.width > 0);
    const lowest = Math.min(...boxes.map((r) => r.bottom));
    if (boxes.some((r) => r.top >= lowest - 1)) broken.push(node.textContent.trim());
  }
  const unboxed = [...document.querySelectorAll("table.grid")]
    .filter((t) => t.offsetParent && !t.parentElement.classList.contains("scroll"))
    .map((t) => t.id);
  const view = document.querySelector("section[data-view]:not([hidden])");
  return {
    pageWidth: document.documentElement.scrollWidth,
    broken,
    unboxed,
    gapUnderHeader: view.firstElementChild.getBoundingClientRect().top - header.bottom,
  };
}"""


@pytest.mark.parametrize("width", [390, 1400])
def test_every_view_fits_a_phone_and_a_wide_screen(
    browser: Browser, tmp_path: Path, request: pytest.FixtureRequest, width: int
) -> None:
    with supervisor(tmp_path, workers=1) as service, service.client() as client:
        # Given the sample files loaded, a failed job, a backup and a dead letter,
        answer = upload_samples(client)
        assert answer.status_code == 202, answer.text
        wait_for_jobs(service, client, [j["job_id"] for j in answer.json()["jobs"]])
        failed = client.post(
            "/uploads/jobs", content=binary_bytes(), headers={"Content-Type": "text/csv"}
        ).json()["job_id"]
        wait_for_jobs(service, client, [failed])
        client.post("/backups").raise_for_status()
        w = watch(browser, service.base_url or "", request.node.name)
        page = w.page
        page.set_viewport_size({"width": width, "height": 844})

        for view in ("jobs", "dead-letters", "backups", "reports"):
            # when each view is opened at this width,
            page.goto(f"/#{view}")
            expect(page.locator("body")).to_have_attribute("data-loaded", view)
            if view == "dead-letters":
                expect(page.locator("#dead-letters-table tbody tr")).to_have_count(1)
            if view == "jobs":  # with the load options unfolded
                page.click("#load-options summary")
                expect(page.locator("#load-options [name=write]")).to_be_visible()
            w.screenshot(f"{view}-{width}")
            layout = page.evaluate(LAYOUT, WHOLE_TEXT)

            # then the page never runs off the side (wide tables scroll in their own box),
            assert layout["pageWidth"] <= width, (view, layout)
            assert layout["unboxed"] == [], (view, layout)
            # no name, figure or badge is broken across lines,
            assert layout["broken"] == [], (view, layout)
            # and the view starts below the header, not under it.
            assert layout["gapUnderHeader"] >= 8, (view, layout)

        # A failed job says why right in the list.
        page.goto("/#jobs")
        reason = page.locator(f'#jobs-table tr[data-job-id="{failed}"] .failure')
        expect(reason).to_contain_text("NotText")
        # The reports are for the latest year with hires, which the page names.
        page.goto("/#reports")
        latest = client.get("/reports/hires-by-quarter").json()["year"]
        expect(page.locator("#report-year-shown")).to_have_text(f"({latest})")
        assert w.errors == [] and w.console_errors == [], (w.errors, w.console_errors)


def test_load_options_are_sent_with_an_upload_and_dry_runs_are_marked(
    browser: Browser, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    with supervisor(tmp_path, workers=1) as service, service.client() as client:
        w = watch(browser, service.base_url or "", request.node.name)
        page = w.page
        page.goto("/")
        expect(page.locator("body")).to_have_attribute("data-loaded", "jobs")
        # Given the load options, folded away until asked for,
        options = page.locator("#load-options")
        expect(options.locator("[name=max_bad_records]")).to_be_hidden()
        options.locator("summary").click()
        expect(options.locator("[name=max_bad_records]")).to_be_visible()
        w.screenshot("load-options")

        # when a file is uploaded as a dry run with a threshold and a header row to skip,
        header_first = tmp_path / "departments.csv"
        sample = (SAMPLE_DATA / "departments.csv").read_text(encoding="utf-8")
        header_first.write_text("id,department\n" + sample, encoding="utf-8")
        page.fill("#load-options [name=max_bad_records]", "5")
        page.fill("#load-options [name=skip_leading_rows]", "1")
        page.check("#load-options [name=dry_run]")
        with page.expect_request(lambda r: r.method == "POST") as sent:
            upload_through_page(page, "departments", header_first)

        # then they go as the upload's query parameters, and no option left at its default does,
        query = httpx.URL(sent.value.url).params
        assert dict(query) == {
            "filename": "departments.csv",
            "max_bad_records": "5",
            "skip_leading_rows": "1",
            "dry_run": "true",
        }
        # the job runs with them, and its row marks it as a dry run and names its options,
        dry = newest_job(client, "departments")
        assert dry["options"] == {"dry_run": True, "max_bad_records": 5, "skip_leading_rows": 1}
        row = job_row(page, dry["job_id"])
        expect(row).to_have_attribute("data-status", "succeeded", timeout=JOB_SECONDS * 1000)
        expect(row.locator(".dry-run")).to_have_text("dry run")
        expect(row.locator(".options")).to_have_text("max_bad_records=5, skip_leading_rows=1")

        # while a plain upload afterwards sends no option and carries no mark.
        with page.expect_request(lambda r: r.method == "POST") as plain_sent:
            upload_through_page(page, "jobs", SAMPLE_DATA / "jobs.csv")
        assert dict(httpx.URL(plain_sent.value.url).params) == {"filename": "jobs.csv"}
        plain = job_row(page, newest_job(client, "jobs")["job_id"])
        expect(plain).to_have_attribute("data-status", "succeeded", timeout=JOB_SECONDS * 1000)
        expect(plain.locator(".dry-run")).to_have_count(0)
        expect(plain.locator(".options")).to_have_count(0)
        w.screenshot("dry-run")

        # The job's page says so too.
        page.goto(f"/#job/{dry['job_id']}")
        summary = page.locator("#job-summary")
        expect(summary.locator(".dry-run")).to_have_text("dry run")
        expect(summary).to_contain_text("max_bad_records=5, skip_leading_rows=1")

        # A retry of rejected rows counts lines, not bytes, and names the job it retries.
        hires = b"1,Ann,2021-07-27T16:02:08Z,99,1\n2,Bob,2021-07-27T16:02:08Z,98,1\n"
        first = client.post(
            "/uploads/hired_employees", content=hires, headers={"content-type": "text/csv"}
        ).json()["job_id"]
        page.goto(f"/#job/{first}")
        expect(summary).to_contain_text("Rejected2", timeout=JOB_SECONDS * 1000)
        retry = client.post(f"/jobs/{first}/retry-rejected").json()["job_id"]
        page.goto(f"/#job/{retry}")
        expect(summary).to_contain_text(f"2 lines of job {first[:8]}")
        assert w.errors == [] and w.console_errors == [], (w.errors, w.console_errors)
        assert w.foreign_requests() == []


def test_the_page_offers_the_service_s_own_tables_and_no_reports_without_theirs(
    browser: Browser, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # Given the service started on the shop catalog,
    with api(tmp_path, CATALOG_FILE=str(SHOP)) as service, service.client() as client:
        w = watch(browser, service.base_url or "", request.node.name)
        page = w.page
        page.goto("/")
        expect(page.locator("body")).to_have_attribute("data-loaded", "jobs")

        # the upload form offers its tables, parents first, and uploads into them,
        expect(page.locator("#upload-table option")).to_have_text(SHOP_ORDER)
        # with the fields a file of the chosen one holds, in order,
        layout = page.locator("#upload-layout")
        expect(layout).to_contain_text("order_lines: id, order_id, product_id,")
        expect(layout).to_contain_text("separated by tabs; no header row")
        page.select_option("#upload-table", "products")
        expect(layout).to_have_text(
            "products: id, sku, price, weight_kg, discontinued, separated by pipes; "
            "the first line is skipped."
        )
        regions = tmp_path / "regions.csv"
        regions.write_text("1;North\n", encoding="utf-8")
        upload_through_page(page, "regions", regions)
        assert newest_job(client, "regions")["original_name"] == "regions.csv"
        # there is no link to reports, which would have nothing to count,
        expect(page.locator("a[data-nav=reports]")).to_be_hidden()
        w.screenshot("shop-jobs")

        # each table has its backup button,
        page.click("a[data-nav=backups]")
        expect(page.locator("body")).to_have_attribute("data-loaded", "backups")
        buttons = page.locator("[data-backup-table]")
        expect(buttons).to_have_text([f"Back up {name}" for name in SHOP_ORDER])
        buttons.first.click()
        expect(page.locator("#notice")).to_contain_text("Backed up regions: 0 rows")

        # and the reports' address shows the jobs instead.
        page.goto("/#reports")
        expect(page.locator("#view-jobs")).to_be_visible()
        expect(page.locator("#view-reports")).to_be_hidden()
        assert w.errors == [] and w.console_errors == [], (w.errors, w.console_errors)
        assert w.foreign_requests() == []
