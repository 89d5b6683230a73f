// The operator's dashboard: jobs with live progress, rejected rows, dead letters, backups and
// reports, all read from and acted on through the service's JSON API.

import { ApiError, api, apiKey, download, setApiKey, uploadFile } from "./api.js";
import { barChart, stackedBarChart } from "./charts.js";
import { loadOptionsOf, optionsText } from "./options.js";

const REFRESH_MS = 1000;
const PAGE = 50;
const FINISHED = new Set(["succeeded", "failed", "cancelled"]);
const $ = (selector) => document.querySelector(selector);

// --- small DOM helpers: every value goes in as text -----------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  node.append(...children.flat().filter((c) => c !== undefined && c !== null).map(
    (c) => (c instanceof Node ? c : document.createTextNode(String(c)))));
  return node;
}

const num = (n) => Number(n).toLocaleString("en-US");
const shortId = (id) => (id ? id.slice(0, 8) : "—");

function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return `${d.toISOString().slice(0, 10)} ${d.toISOString().slice(11, 19)} UTC`;
}

function duration(job) {
  if (!job.started_at) return "—";
  const end = job.finished_at ? new Date(job.finished_at) : new Date();
  const s = Math.max(0, (end - new Date(job.started_at)) / 1000);
  return s < 60 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

function bytes(n) {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i ? v.toFixed(1) : v} ${units[i]}`;
}

function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
}

function pager(container, { total, offset, limit }, go) {
  container.replaceChildren();
  if (total <= limit) return;
  const last = offset + limit >= total;
  container.append(
    el("button", { type: "button", class: "secondary", disabled: offset === 0, onclick: () => go(Math.max(0, offset - limit)) }, "← Newer"),
    el("span", {}, ` ${num(offset + 1)}–${num(Math.min(total, offset + limit))} of ${num(total)} `),
    el("button", { type: "button", class: "secondary", disabled: last, onclick: () => go(offset + limit) }, "Older →"),
  );
}

// --- the API key ---------------------------------------------------------------------------

function showKeyForm() {
  $("#key-form").hidden = false;
  $("#key-button").hidden = true;
}

function hideKeyForm() {
  $("#key-form").hidden = true;
  $("#key-button").hidden = !apiKey();
}

// --- notices and errors ---------------------------------------------------------------------

let noticeTimer;
function notify(text, kind = "info") {
  const box = $("#notice");
  box.textContent = text;
  box.className = `notice ${kind}`;
  box.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { box.hidden = true; }, kind === "error" ? 12_000 : 5_000);
}

function failed(err) {
  if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
    showKeyForm();
    notify(`${err.message}. Enter ${err.status === 401 ? "an API key" : "another API key"} above.`, "error");
  } else {
    notify(err.message || String(err), "error");
  }
}

// Actions under way, by key: a view redrawn meanwhile draws their buttons disabled, so an
// action cannot be sent twice while the first is still running.
const inFlight = new Set();

// Run an action from a button: disable it meanwhile, report the outcome, refresh the view.
async function act(button, action, key = null) {
  button.disabled = true;
  if (key) inFlight.add(key);
  try {
    const message = await action();
    if (message) notify(message, "ok");
  } catch (err) {
    failed(err);
  } finally {
    if (key) inFlight.delete(key);
    button.disabled = false;
  }
  await Promise.all([refresh(), countDeadLetters()]);
}

// A button that runs `action` when clicked, after `question` is confirmed when there is one.
function actionButton(label, className, key, action, question) {
  const button = el("button", { type: "button", class: className, disabled: inFlight.has(key) }, label);
  button.addEventListener("click", () => {
    if (question && !window.confirm(question)) return;
    act(button, action, key);
  });
  return button;
}

const restoredMessage = (answer) =>
  `Restored ${Object.entries(answer.restored).map(([t, n]) => `${t}: ${num(n)} rows`).join(", ")}.`;

// --- jobs -----------------------------------------------------------------------------------

const jobsState = { offset: 0 };

function statusBadge(status) {
  return el("span", { class: `status status-${status}` }, status);
}

// The status, marked when the job is a dry run (validated, nothing written).
function jobStatus(job) {
  return el("span", { class: "job-status" }, statusBadge(job.status),
    job.dry_run ? el("span", { class: "status dry-run", title: "Validated against the tables; nothing written" }, "dry run") : null);
}

function progressBar(job) {
  const fraction = job.size_bytes ? job.bytes_done / job.size_bytes : FINISHED.has(job.status) ? 1 : 0;
  const percent = `${Math.floor(fraction * 100)}%`;
  const parts = job.parts > 1 ? ` · part ${job.parts_done}/${job.parts}` : "";
  return el("span", { class: "progress" },
    el("progress", { max: 1, value: fraction, title: `${num(job.bytes_done)} of ${num(job.size_bytes)} ${job.retry_of ? "lines" : "bytes"}` }),
    el("span", { class: "progress-figure" }, `${percent}${parts}`));
}

function jobRow(job) {
  const failure = job.status === "failed" && job.error ? el("div", { class: "failure" }, job.error) : null;
  const options = optionsText(job);
  return el("tr", { dataset: { jobId: job.job_id, status: job.status } },
    el("td", {}, el("a", { href: `#job/${job.job_id}`, title: job.job_id }, el("code", {}, shortId(job.job_id)))),
    el("td", { class: "whole" }, job.table),
    el("td", { class: "file", title: job.original_name || "" }, job.original_name || "—"),
    el("td", { class: "status-cell" }, jobStatus(job), options ? el("div", { class: "options" }, options) : null, failure),
    el("td", { class: "progress-col" }, progressBar(job)),
    el("td", { class: "num" }, num(job.rows_read)),
    el("td", { class: "num" }, num(job.rows_inserted)),
    el("td", { class: "num" }, job.rows_rejected
      ? el("a", { href: `#job/${job.job_id}`, class: "rejected-link" }, num(job.rows_rejected))
      : "0"),
    el("td", { class: "whole" }, when(job.started_at || job.created_at)),
    el("td", { class: "num" }, duration(job)));
}

async function showJobs() {
  const page = await api(`/jobs?limit=${PAGE}&offset=${jobsState.offset}`);
  $("#jobs-total").textContent = `(${num(page.total)})`;
  fill($("#jobs-table tbody"), page.items.map(jobRow));
  $("#jobs-empty").hidden = page.total > 0;
  pager($("#jobs-pager"), page, (offset) => { jobsState.offset = offset; refresh(); });
}

function setUpUpload() {
  const form = $("#upload-form");
  $("#upload-table").addEventListener("change", showLayout);
  form.addEventListener("reset", () => setTimeout(showLayout));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = $("#upload-file").files[0];
    if (!file) return;
    const table = $("#upload-table").value;
    const box = $("#upload-progress");
    const bar = box.querySelector("progress");
    const figure = box.querySelector(".upload-figure");
    const button = form.querySelector("button");
    box.hidden = false;
    button.disabled = true;
    try {
      const job = await uploadFile(table, file, (sent, total) => {
        bar.value = total ? sent / total : 0;
        figure.textContent = `${bytes(sent)} of ${bytes(total)}`;
      }, loadOptionsOf(form));
      notify(`Uploaded ${file.name}: job ${shortId(job.job_id)} is ${job.status}.`, "ok");
      form.reset();
      jobsState.offset = 0;
      await refresh();
    } catch (err) {
      failed(err);
    } finally {
      button.disabled = false;
      box.hidden = true;
    }
  });
}

// --- one job and its rejected rows ----------------------------------------------------------

const jobState = { id: null, offset: 0, shownRejections: -1 };

function summaryItem(label, value) {
  return el("div", { class: "summary-item" }, el("span", { class: "label" }, label), el("span", { class: "value" }, value));
}

function reasons(errors) {
  return el("ul", { class: "reasons" }, errors.map((e) =>
    el("li", {}, el("b", {}, e.column), " ", el("span", { class: "rule" }, e.rule), ": ", e.message)));
}

async function showJob(jobId) {
  if (jobState.id !== jobId) Object.assign(jobState, { id: jobId, offset: 0, shownRejections: -1 });
  const job = await api(`/jobs/${encodeURIComponent(jobId)}`);
  $("#job-id").textContent = job.job_id;
  $("#job-summary").replaceChildren(
    summaryItem("Table", job.table),
    summaryItem("File", job.original_name || "—"),
    summaryItem("Status", jobStatus(job)),
    summaryItem("Progress", progressBar(job)),
    summaryItem("Rows read", num(job.rows_read)),
    summaryItem("Inserted", num(job.rows_inserted)),
    summaryItem("Rejected", num(job.rows_rejected)),
    // A retry of rejected rows reads stored lines, not a file: its size counts lines.
    job.retry_of
      ? summaryItem("Retries", el("span", {}, `${num(job.size_bytes)} lines of job ${shortId(job.retry_of)}`))
      : summaryItem("Size", bytes(job.size_bytes)),
    summaryItem("Attempts", num(job.attempts)),
    summaryItem("Time", duration(job)),
    ...(optionsText(job) ? [summaryItem("Load options", optionsText(job))] : []),
  );
  $("#job-warnings").hidden = !job.warnings.length;
  $("#job-warnings").replaceChildren(...job.warnings.map((w) => el("li", {}, w)));
  $("#job-waiting").hidden = !job.waiting_for.length;
  $("#job-waiting").textContent = job.waiting_for.length
    ? `Waiting for ${job.waiting_for.length} earlier upload(s) of the tables it references: ${job.waiting_for.map(shortId).join(", ")}.`
    : "";
  $("#job-actions").replaceChildren(...(FINISHED.has(job.status) ? [] : [
    actionButton("Cancel", "danger", `cancel:${job.job_id}`, async () => {
      const ended = await api(`/jobs/${encodeURIComponent(job.job_id)}/cancel`, { method: "POST" });
      return `Cancelled job ${shortId(ended.job_id)}: ${num(ended.rows_inserted)} rows inserted before it stopped stay.`;
    }, `Cancel job ${shortId(job.job_id)}? Rows it already inserted stay in the table.`),
  ]));
  $("#job-error").hidden = !job.error;
  $("#job-error").textContent = job.error || "";
  // Rejections only grow while the job runs: fetch them again only when their count moved.
  if (job.rows_rejected === jobState.shownRejections) return;
  const page = await api(`/jobs/${encodeURIComponent(jobId)}/rejected-rows?limit=${PAGE}&offset=${jobState.offset}`);
  jobState.shownRejections = job.rows_rejected;
  $("#rejected-total").textContent = `(${num(page.total)})`;
  fill($("#rejected-table tbody"), page.items.map((r) =>
    el("tr", {}, el("td", { class: "num" }, r.line), el("td", {}, el("code", { class: "raw" }, r.raw)), el("td", {}, reasons(r.errors)))));
  $("#rejected-empty").hidden = page.total > 0;
  $("#rejected-csv").hidden = page.total === 0;
  pager($("#rejected-pager"), page, (offset) => {
    Object.assign(jobState, { offset, shownRejections: -1 });
    refresh();
  });
}

// --- dead letters ---------------------------------------------------------------------------

function deadLetterRow(letter) {
  const resubmit = actionButton("Resubmit", "resubmit", `dead-letter:${letter.id}`, async () => {
    await api(`/dead-letters/${encodeURIComponent(letter.id)}/resubmit`, { method: "POST" });
    return `Resubmitted: job ${shortId(letter.job_id)} is queued again.`;
  });
  const purge = actionButton("Purge", "danger purge", `dead-letter:${letter.id}`, async () => {
    await api(`/dead-letters/${encodeURIComponent(letter.id)}`, { method: "DELETE" });
    return "Dead letter purged.";
  }, `Purge the dead letter of job ${shortId(letter.job_id)} for good?`);
  return el("tr", { dataset: { deadLetterId: letter.id, jobId: letter.job_id || "" } },
    el("td", {}, letter.job_id ? el("a", { href: `#job/${letter.job_id}` }, el("code", {}, shortId(letter.job_id))) : "—"),
    el("td", { class: "num" }, letter.part ?? "—"),
    el("td", {}, el("span", { class: "status status-failed" }, letter.reason)),
    el("td", { class: "description" }, letter.description),
    el("td", { class: "num" }, letter.delivery_count),
    el("td", { class: "whole" }, when(letter.dead_lettered_at || letter.enqueued_at)),
    el("td", { class: "buttons" }, resubmit, purge));
}

async function showDeadLetters() {
  const page = await api("/dead-letters?limit=1000");
  $("#dead-letters-total").textContent = `(${num(page.total)})`;
  fill($("#dead-letters-table tbody"), page.items.map(deadLetterRow));
  $("#dead-letters-empty").hidden = page.total > 0;
}

async function countDeadLetters() {
  const badge = $("#dead-letter-count");
  try {
    const page = await api("/dead-letters?limit=1");
    badge.textContent = num(page.total);
    badge.hidden = page.total === 0;
  } catch {
    badge.hidden = true; // a read-only key may not list them; the view says why
  }
}

// --- backups --------------------------------------------------------------------------------

function backupRow(backup) {
  const restore = actionButton("Restore", "danger restore", `restore:${backup.table}`,
    async () => restoredMessage(await api(`/backups/${backup.backup_id}/restore`, { method: "POST" })),
    `Replace every row of ${backup.table} with the ${num(backup.row_count)} rows of this backup?`);
  const restoreRun = actionButton("Restore run", "secondary restore-run", `restore-run:${backup.run_id}`,
    async () => restoredMessage(await api(`/backups/runs/${backup.run_id}/restore`, { method: "POST" })),
    "Replace every table backed up in this run with its backup, parents first?");
  restoreRun.title = "Restore every table of this run, parents first";
  const save = el("button", { type: "button", class: "secondary" }, "Download");
  save.addEventListener("click", () =>
    download(`/backups/${backup.backup_id}/download`, `${backup.table}-${backup.backup_id}.avro`, "application/avro").catch(failed));
  return el("tr", { dataset: { backupId: backup.backup_id } },
    el("td", { title: `sha256 ${backup.sha256}` }, el("code", {}, shortId(backup.backup_id))),
    el("td", { class: "whole" }, backup.table),
    el("td", { class: "num" }, num(backup.row_count)),
    el("td", { class: "num" }, bytes(backup.byte_size)),
    el("td", { class: "whole" }, when(backup.created_at)),
    el("td", {}, el("code", {}, shortId(backup.run_id))),
    el("td", { class: "buttons" }, save, restore, restoreRun));
}

async function showBackups() {
  const page = await api("/backups?limit=200");
  $("#backups-total").textContent = `(${num(page.total)})`;
  fill($("#backups-table tbody"), page.items.map(backupRow));
  $("#backups-empty").hidden = page.total > 0;
}

function setUpBackupButtons() {
  const all = $("#backup-all");
  all.addEventListener("click", () => act(all, async () => {
    const run = await api("/backups", { method: "POST" });
    return `Backed up ${run.backups.map((b) => `${b.table} (${num(b.row_count)} rows)`).join(", ")}.`;
  }));
}

function backupTableButton(table) {
  const button = el("button", { type: "button", class: "secondary", dataset: { backupTable: table } }, `Back up ${table}`);
  button.addEventListener("click", () => act(button, async () => {
    const backup = await api(`/backups/${encodeURIComponent(table)}`, { method: "POST" });
    return `Backed up ${backup.table}: ${num(backup.row_count)} rows.`;
  }));
  return button;
}

// --- the declared tables --------------------------------------------------------------------

// What GET /tables answered: the tables in load order, and whether the reports are served.
const catalog = { tables: [], reports: false };

const SEPARATORS = { ",": "commas", ";": "semicolons", "|": "pipes", "\t": "tabs" };

// What a file for the chosen table holds: its fields in order, their separator, skipped lines.
function showLayout() {
  const table = catalog.tables.find((t) => t.name === $("#upload-table").value);
  const hint = $("#upload-layout");
  hint.hidden = !table;
  if (!table) return;
  const skip = table.skip_leading_rows;
  const skipped = skip ? `the first ${skip === 1 ? "line is" : `${skip} lines are`} skipped` : "no header row";
  const separator = SEPARATORS[table.delimiter] || `'${table.delimiter}'`;
  hint.textContent = `${table.name}: ${table.columns.map((c) => c.name).join(", ")}, separated by ${separator}; ${skipped}.`;
}

// Draw what depends on the service's catalog: the upload form's tables, the backup buttons,
// and the reports' link, shown only when the service serves them.
async function loadTables() {
  const answer = await api("/tables");
  Object.assign(catalog, answer);
  const names = answer.tables.map((t) => t.name);
  const select = $("#upload-table");
  const chosen = names.includes(select.value) ? select.value : names[names.length - 1];
  select.replaceChildren(...names.map((name) => el("option", { value: name, selected: name === chosen }, name)));
  showLayout();
  $("#backup-tables").replaceChildren(...names.map(backupTableButton));
  document.querySelector('[data-nav="reports"]').hidden = !answer.reports;
}

// --- reports --------------------------------------------------------------------------------

const QUARTERS = ["Q1", "Q2", "Q3", "Q4"];

async function showReports() {
  // No year asked for: the service answers for the latest year with hires, and says which.
  const asked = $("#report-year").value.trim();
  const query = asked ? `?year=${encodeURIComponent(asked)}` : "";
  const [quarters, above] = await Promise.all([
    api(`/reports/hires-by-quarter${query}`),
    api(`/reports/departments-above-mean${query}`),
  ]);
  const year = quarters.year;
  $("#report-year-shown").textContent = `(${year})`;
  $("#report-year").placeholder = String(year);
  const byDepartment = new Map();
  for (const row of quarters.rows) {
    const sums = byDepartment.get(row.department) || [0, 0, 0, 0];
    QUARTERS.forEach((q, i) => { sums[i] += row[q]; });
    byDepartment.set(row.department, sums);
  }
  const departments = [...byDepartment.keys()];
  const chart = $("#quarter-chart");
  chart.replaceChildren();
  if (departments.length) {
    chart.append(stackedBarChart(departments,
      QUARTERS.map((q, i) => ({ name: q, values: departments.map((d) => byDepartment.get(d)[i]) })),
      { title: `Hires in ${year} per department, stacked by quarter` }));
  } else {
    chart.append(el("p", { class: "empty" }, `No hires in ${year}.`));
  }
  fill($("#quarter-table tbody"), quarters.rows.map((r) =>
    el("tr", {}, el("td", {}, r.department), el("td", {}, r.job), ...QUARTERS.map((q) => el("td", { class: "num" }, num(r[q]))))));

  $("#mean-figure").textContent = `(mean ${above.mean.toFixed(1)} hires per department in ${year})`;
  const meanChart = $("#mean-chart");
  meanChart.replaceChildren();
  if (above.rows.length) {
    meanChart.append(barChart(above.rows.map((r) => r.department), above.rows.map((r) => r.hired),
      { mean: above.mean, title: `Departments hiring above the mean in ${year}` }));
  }
  fill($("#mean-table tbody"), above.rows.map((r) =>
    el("tr", {}, el("td", { class: "num" }, r.id), el("td", {}, r.department), el("td", { class: "num" }, num(r.hired)))));
}

// --- health ---------------------------------------------------------------------------------

async function showHealth() {
  const badge = $("#health");
  try {
    const response = await fetch("/readyz", { headers: { Accept: "application/json" } });
    const body = await response.json();
    const ready = response.ok;
    badge.textContent = ready ? "ready" : "not ready";
    badge.className = `health ${ready ? "ok" : "bad"}`;
    badge.title = Object.entries(body.checks || {}).map(([k, v]) => `${k}: ${v}`).join("\n") || "GET /readyz";
  } catch {
    badge.textContent = "unreachable";
    badge.className = "health bad";
  }
}

// --- routing and the refresh loop -----------------------------------------------------------

const VIEWS = {
  jobs: () => showJobs(),
  job: (id) => showJob(id),
  "dead-letters": () => showDeadLetters(),
  backups: () => showBackups(),
  reports: () => showReports(),
};
// Views that change on their own, redrawn this often (ms); the others are drawn when opened or
// after an action. Listing dead letters can be costly on Service Bus, so they are polled slower.
const LIVE = { jobs: REFRESH_MS, job: REFRESH_MS, "dead-letters": 5 * REFRESH_MS };
const DEAD_LETTER_COUNT_MS = 15 * REFRESH_MS;

function route() {
  const [name, arg] = (location.hash.slice(1) || "jobs").split("/");
  const shown = name in VIEWS && (name !== "reports" || catalog.reports);
  return shown ? { name, arg } : { name: "jobs" };
}

// One drawing at a time; a call made meanwhile (a click, the timer) draws again afterwards, so
// the view on screen always ends up being the one the address names.
let refreshing = null;
let again = false;
let lastDrawn = 0;
function refresh() {
  if (refreshing) {
    again = true;
    return refreshing;
  }
  refreshing = (async () => {
    do {
      again = false;
      const { name, arg } = route();
      for (const view of document.querySelectorAll("[data-view]")) view.hidden = view.dataset.view !== name;
      for (const link of document.querySelectorAll("[data-nav]")) {
        link.classList.toggle("active", link.dataset.nav === name || (name === "job" && link.dataset.nav === "jobs"));
      }
      try {
        await VIEWS[name](arg);
        document.body.dataset.loaded = name;
        lastDrawn = Date.now();
      } catch (err) {
        failed(err);
      }
    } while (again);
    refreshing = null;
  })();
  return refreshing;
}

function start() {
  const keyForm = $("#key-form");
  $("#api-key").value = apiKey();
  hideKeyForm();
  $("#key-button").addEventListener("click", showKeyForm);
  keyForm.addEventListener("submit", (event) => {
    event.preventDefault();
    setApiKey($("#api-key").value.trim());
    hideKeyForm();
    notify("API key saved in this browser.", "ok");
    loadTables().catch(failed).then(refresh);
    countDeadLetters();
  });
  $("#rejected-csv").addEventListener("click", () =>
    download(`/jobs/${encodeURIComponent(jobState.id)}/rejected-rows`, `rejected-${jobState.id}.csv`, "text/csv")
      .catch(failed));
  $("#report-form").addEventListener("submit", (event) => { event.preventDefault(); refresh(); });
  setUpUpload();
  setUpBackupButtons();
  window.addEventListener("hashchange", refresh);
  // Without the tables (no key yet, say) the view still draws and asks for what is missing.
  loadTables().catch(() => {}).then(refresh);
  showHealth();
  countDeadLetters();
  setInterval(() => {
    const every = LIVE[route().name];
    if (!document.hidden && every && Date.now() - lastDrawn >= every - REFRESH_MS / 2) refresh();
  }, REFRESH_MS);
  setInterval(() => { if (!document.hidden) countDeadLetters(); }, DEAD_LETTER_COUNT_MS);
  setInterval(showHealth, 10 * REFRESH_MS);
}

start();
