// Talking to the service's own JSON API: the API key, problem documents, downloads.

const KEY_STORE = "ingest.api-key";

export class ApiError extends Error {
  constructor(status, title, detail) {
    super(detail ? `${title}: ${detail}` : title);
    this.status = status;
  }
}

export function apiKey() {
  return localStorage.getItem(KEY_STORE) || "";
}

export function setApiKey(key) {
  if (key) localStorage.setItem(KEY_STORE, key);
  else localStorage.removeItem(KEY_STORE);
}

export function authHeaders() {
  const key = apiKey();
  return key ? { "X-API-Key": key } : {};
}

async function problemOf(response) {
  const type = response.headers.get("content-type") || "";
  if (type.includes("json")) {
    const body = await response.json().catch(() => ({}));
    return new ApiError(response.status, body.title || response.statusText, body.detail || "");
  }
  return new ApiError(response.status, `HTTP ${response.status}`, response.statusText);
}

// One call to the API; resolves with the parsed JSON body (null for 204), rejects with ApiError.
export async function api(path, { method = "GET", json, headers = {} } = {}) {
  const init = { method, headers: { Accept: "application/json", ...authHeaders(), ...headers } };
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, "The service cannot be reached", String(err.message || err));
  }
  if (!response.ok) throw await problemOf(response);
  return response.status === 204 ? null : response.json();
}

// Fetch a file with the API key and hand it to the browser as a download.
export async function download(path, filename, accept) {
  const response = await fetch(path, { headers: { Accept: accept, ...authHeaders() } });
  if (!response.ok) throw await problemOf(response);
  const url = URL.createObjectURL(await response.blob());
  const link = Object.assign(document.createElement("a"), { href: url, download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

// Stream a file as the body of POST /uploads/{table}, with `options` as query parameters;
// onProgress(sent, total) while it goes.
export function uploadFile(table, file, onProgress, options = {}) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    const query = new URLSearchParams({ filename: file.name, ...options });
    request.open("POST", `/uploads/${encodeURIComponent(table)}?${query}`);
    request.setRequestHeader("Content-Type", "text/csv");
    request.setRequestHeader("Accept", "application/json");
    for (const [name, value] of Object.entries(authHeaders())) request.setRequestHeader(name, value);
    request.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size);
    request.onerror = () => reject(new ApiError(0, "The upload was cut off", "try again"));
    request.onload = () => {
      let body = {};
      try {
        body = JSON.parse(request.responseText);
      } catch {
        // not JSON: report the status line below
      }
      if (request.status >= 200 && request.status < 300) resolve(body);
      else reject(new ApiError(request.status, body.title || `HTTP ${request.status}`, body.detail || ""));
    };
    request.send(file);
  });
}
