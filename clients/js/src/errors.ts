import type { ErrorBody, FieldError } from "./api-types.js";

/** The server answered with an error: `code` is stable, `details` names each field. */
export class FastInsightError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: FieldError[];
  readonly requestId: string | null;
  /** Seconds the server asks to wait (429 and 503 carry `Retry-After`). */
  readonly retryAfter: number | null;

  constructor(status: number, body: Partial<ErrorBody> | null, fallback: string, retryAfter: number | null) {
    super(`${status} ${body?.error ?? "http_" + status}: ${body?.message ?? fallback}`);
    this.name = "FastInsightError";
    this.status = status;
    this.code = body?.error ?? `http_${status}`;
    this.details = body?.details ?? [];
    this.requestId = body?.request_id ?? null;
    this.retryAfter = retryAfter;
  }
}

/** No answer at all: offline, the server unreachable, or the request timed out. */
export class NetworkError extends Error {
  constructor(message: string, readonly cause?: unknown) {
    super(message);
    this.name = "NetworkError";
  }
}

/** Worth sending again later: no answer, too many requests, or the server unavailable. */
export function isTransient(error: unknown): boolean {
  if (error instanceof NetworkError) return true;
  return error instanceof FastInsightError && (error.status === 429 || error.status >= 500);
}
