/**
 * What an upstream server's answer means for the message it was sent: the one classification
 * of answers shared by every user of the pools (the HTTP sink today, the live proxy next).
 *
 *   no-answer  connection error or timeout: retry, on another server when there is one
 *   delivered  2xx
 *   retry      5xx and 408: the server failed; retry (503 may carry Retry-After)
 *   throttled  429: the server is well but asks for less; retry, honouring Retry-After
 *   dead       anything else (3xx, other 4xx): retrying cannot help
 */
export type AnswerClass = 'no-answer' | 'delivered' | 'retry' | 'throttled' | 'dead';

/** Longest Retry-After honoured; beyond it the message is tried again after this. */
export const MAX_RETRY_AFTER_MS = 3_600_000;

/** `status` 0 stands for no answer at all. */
export function classifyAnswer(status: number): AnswerClass {
  if (status === 0) return 'no-answer';
  if (status >= 200 && status < 300) return 'delivered';
  if (status >= 500 || status === 408) return 'retry';
  if (status === 429) return 'throttled';
  return 'dead';
}

/** Retry-After as seconds or an HTTP date, in ms from now (bounded); undefined when absent or unreadable. */
export function retryAfterMs(v: string | string[] | undefined): number | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  if (!s) return undefined;
  const ms = /^\s*[0-9]+\s*$/.test(s) ? Number(s) * 1000 : Date.parse(s) - Date.now();
  if (!Number.isFinite(ms)) return undefined;
  return Math.min(MAX_RETRY_AFTER_MS, Math.max(0, ms));
}
