import type { ErrorBody } from "./api-types.js";
import { FastInsightError, NetworkError } from "./errors.js";

export type Fetch = typeof fetch;
export type Query = Record<string, string | number | boolean | readonly string[] | undefined | null>;

/** Where the API is and how to reach it. */
export interface Connection {
  readonly url: string;
  readonly apiKey: string;
  readonly timeoutMs: number;
  readonly fetch: Fetch;
}

export function connection(url: string, apiKey: string, timeoutMs: number | undefined, fetchImpl?: Fetch): Connection {
  if (!/^https?:\/\//.test(url)) throw new TypeError(`url must start with http:// or https://, not ${JSON.stringify(url)}`);
  if (!apiKey) throw new TypeError("apiKey is required (the API key; never the admin key)");
  const impl = fetchImpl ?? globalThis.fetch?.bind(globalThis);
  if (!impl) throw new TypeError("no fetch() here: pass options.fetch");
  return { url: url.replace(/\/+$/, ""), apiKey, timeoutMs: timeoutMs ?? 10000, fetch: impl };
}

export function queryString(query: Query): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined || value === null) continue;
    if (Array.isArray(value)) value.forEach((v) => params.append(key, v));
    else params.append(key, String(value));
  }
  const text = params.toString();
  return text ? `?${text}` : "";
}

/** Seconds from a `Retry-After` header (delta-seconds or an HTTP date). */
export function retryAfterSeconds(header: string | null): number | null {
  if (!header) return null;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds);
  const when = Date.parse(header);
  return Number.isNaN(when) ? null : Math.max(0, (when - Date.now()) / 1000);
}

/** The API's error body, or null for an answer from something in front of it. */
function errorBody(text: string): Partial<ErrorBody> | null {
  try {
    const parsed: unknown = JSON.parse(text);
    const error = (parsed as Partial<ErrorBody> | null)?.error;
    return typeof error === "string" ? (parsed as Partial<ErrorBody>) : null;
  } catch {
    return null;
  }
}

/** One request; the answer's JSON, or a `FastInsightError` / `NetworkError`. */
export async function request<T>(
  conn: Connection, method: "GET" | "POST", path: string, body?: unknown, keepalive = false,
): Promise<T> {
  const controller = typeof AbortController === "function" ? new AbortController() : undefined;
  const timer = controller ? setTimeout(() => controller.abort(), conn.timeoutMs) : undefined;
  const headers: Record<string, string> = { "X-API-Key": conn.apiKey };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response: Response;
  try {
    response = await conn.fetch(conn.url + path, {
      method, headers, keepalive,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      ...(controller ? { signal: controller.signal } : {}),
    });
  } catch (error) {
    throw new NetworkError(`${method} ${path}: ${String(error)}`, error);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
  const text = await response.text();
  if (response.ok) return (text ? JSON.parse(text) : null) as T;
  throw new FastInsightError(response.status, errorBody(text), text.slice(0, 300) || response.statusText,
    retryAfterSeconds(response.headers.get("Retry-After")));
}
