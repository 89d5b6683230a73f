// Load options: read from the upload form as the query parameters of the upload, and shown on
// a job as the API reports them (only those that differ from the default).

// The form's fields are named after the query parameters; a field left at its default is not
// sent, so the upload is exactly what the same command line without options would send.
const DEFAULTS = { write: "append", skip_leading_rows: "0" };

export function loadOptionsOf(form) {
  const query = {};
  for (const field of form.querySelectorAll("[data-load-option]")) {
    const name = field.name;
    if (field.type === "checkbox") {
      if (field.checked) query[name] = "true";
      continue;
    }
    const value = field.value.trim();
    if (value !== "" && value !== DEFAULTS[name]) query[name] = value;
  }
  return query;
}

// "atomic, write=replace, max_bad_records=10": the options other than a dry run, which the
// page marks with a badge of its own.
export function optionsText(job) {
  return Object.entries(job.options || {})
    .filter(([name]) => name !== "dry_run")
    .map(([name, value]) => (value === true ? name : `${name}=${value}`))
    .join(", ");
}
