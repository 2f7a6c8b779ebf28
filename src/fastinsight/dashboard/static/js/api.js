// Every data call goes through here: it adds the X-API-Key header and turns the API's
// error body ({error, message, details}) into an ApiError with a readable message.
const KEY = "fastinsight.apiKey";
const ROLE = "fastinsight.role";  // "operator" when the key is FASTINSIGHT_OPERATOR_KEY

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.error;
  }
}

export function getKey() { return sessionStorage.getItem(KEY); }
export function setKey(key) { sessionStorage.setItem(KEY, key); }
export function clearKey() { sessionStorage.removeItem(KEY); sessionStorage.removeItem(ROLE); }
export function isOperator() { return sessionStorage.getItem(ROLE) === "operator"; }
export function setOperator(yes) {
  if (yes) sessionStorage.setItem(ROLE, "operator");
  else sessionStorage.removeItem(ROLE);
}

function url(path, query) {
  const u = new URL(path, window.location.origin);
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== "") u.searchParams.set(k, v);
  }
  return u;
}

export async function request(path, { method = "GET", query, body } = {}) {
  const headers = { "X-API-Key": getKey() || "" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(url(path, query), {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 401) {
    clearKey();
    window.dispatchEvent(new CustomEvent("fastinsight:signed-out"));
  }
  const type = res.headers.get("content-type") || "";
  const payload = type.includes("application/json") ? await res.json() : await res.text();
  if (!res.ok) throw new ApiError(res.status, typeof payload === "object" ? payload : null);
  return payload;
}

export const get = (path, query) => request(path, { query });
export const post = (path, body, query) => request(path, { method: "POST", body, query });

// CSV exports need the key header too, so fetch them and save the text as a file.
export async function download(path, query, filename) {
  const text = await request(path, { query: { ...query, format: "csv" } });
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([text], { type: "text/csv" }));
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}
