/**
 * The one table of crowd's error codes: every refusal crowd answers with, its HTTP status and
 * its message. Bodies are `{"status":"error","code":"CROWD_...","message":"..."}`.
 * docs/errors.md lists the same table; test/errors.test.ts keeps the two in step.
 */
export interface ErrorSpec {
  readonly status: number;
  readonly message: string;
  /** The connection is closed after the answer (framing could not be trusted). */
  readonly close?: boolean;
  /** Seconds put in Retry-After. */
  readonly retryAfter?: boolean;
}

export const ERRORS = {
  CROWD_BAD_FRAMING: { status: 400, message: 'conflicting or malformed message framing headers', close: true },
  CROWD_BAD_JSON: { status: 400, message: 'body is not valid JSON' },
  CROWD_BAD_UTF8: { status: 400, message: 'body is not valid UTF-8' },
  CROWD_BAD_KEY: { status: 400, message: 'partition key missing or not a string' },
  CROWD_UNAUTHORIZED: { status: 401, message: 'missing or invalid credentials' },
  CROWD_BAD_SIGNATURE: { status: 401, message: 'missing or invalid request signature' },
  CROWD_STALE_SIGNATURE: { status: 401, message: 'request signature timestamp outside the allowed window' },
  CROWD_REPLAYED: { status: 401, message: 'request signature already used' },
  CROWD_NOT_FOUND: { status: 404, message: 'no such route' },
  CROWD_METHOD_NOT_ALLOWED: { status: 405, message: 'method not allowed on this route' },
  CROWD_BODY_TOO_LARGE: { status: 413, message: 'body exceeds the route limit', close: true },
  CROWD_UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'content type not accepted on this route' },
  CROWD_RATE_LIMITED: { status: 429, message: 'route rate limit reached; retry later', retryAfter: true },
  CROWD_OVERLOADED: { status: 503, message: 'too many requests waiting to be stored; retry later', retryAfter: true },
  CROWD_REPLAY_WINDOW_FULL: { status: 503, message: 'too many signed requests within the replay window; retry later', retryAfter: true },
  CROWD_RING_FULL: { status: 503, message: 'ingest rings are full; retry later', retryAfter: true },
  CROWD_LOG_FULL: { status: 503, message: 'local log quota reached; retry later', retryAfter: true },
  CROWD_LOG_UNAVAILABLE: { status: 503, message: 'local log is not writable; message not stored', retryAfter: true },
  CROWD_DRAINING: { status: 503, message: 'crowd is shutting down', retryAfter: true, close: true },
  CROWD_ACK_TIMEOUT: { status: 503, message: 'message not confirmed in time; it may or may not be stored', retryAfter: true },
  CROWD_NOT_READY: { status: 503, message: 'not ready', retryAfter: true },
  CROWD_INTERNAL: { status: 500, message: 'internal error' },
  CROWD_INVALID_REQUEST: { status: 400, message: 'request does not have the expected shape' },
  CROWD_TARGET_FORBIDDEN: { status: 403, message: 'address not allowed as a server (loopback, link-local, metadata or another non-routable class)' },
  CROWD_UNKNOWN_POOL: { status: 404, message: 'no such pool' },
  CROWD_UNKNOWN_SERVER: { status: 404, message: 'no such server' },
  CROWD_SERVER_CONFLICT: { status: 409, message: 'this server is draining; register it again once it has left' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

/** The JSON document of an error, with `more` fields after the table's (the admin API's `detail`, `reasons`). */
export function errorDocument(code: ErrorCode, more: Record<string, unknown> = {}): Record<string, unknown> {
  return { status: 'error', code, message: ERRORS[code].message, ...more };
}

/** Pre-rendered JSON body of each error (answers on the hot path are a table lookup). */
export const ERROR_BODIES: Readonly<Record<ErrorCode, string>> = Object.freeze(
  Object.fromEntries(Object.keys(ERRORS).map((code) => [code, JSON.stringify(errorDocument(code as ErrorCode))])) as Record<ErrorCode, string>,
);

const REASONS: Record<number, string> = {
  200: 'OK', 201: 'Created', 202: 'Accepted', 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found',
  405: 'Method Not Allowed', 409: 'Conflict',
  413: 'Payload Too Large', 415: 'Unsupported Media Type', 429: 'Too Many Requests', 500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** Status line text for uWS's writeStatus ("404 Not Found"). */
export function statusLine(status: number): string {
  return `${status} ${REASONS[status] ?? ''}`.trim();
}
