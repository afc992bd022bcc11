/**
 * Stage 4 of a request (acceptor.ts): the complete body against its route. The HMAC signature
 * (a route with `auth.hmac`), JSON validity on JSON media types, and, for a `json:/pointer`
 * key, the partition key out of the parsed body. Returns the refusal, or null to go on with
 * `out.key` set when the key came from the body.
 */
import type { ErrorCode } from '../errors.js';
import { JSON_BAD_UTF8, JSON_OK, jsonCheck } from '../native/json-check.js';
import { resolvePointer, type Route } from './route-table.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function isJsonType(media: string): boolean {
  return media === 'application/json' || media.endsWith('+json');
}

export function bodyRefusal(route: Route, media: string, signature: string, body: Uint8Array, out: { key: string }): ErrorCode | null {
  if (route.hmac) {
    const denied = route.hmac.check(signature, body, Date.now());
    if (denied) return denied;
  }
  if (route.key.kind !== 'json') {
    if (!isJsonType(media)) return null;
    // Validate only (the common case): the native check builds no value (json-check.ts).
    const verdict = jsonCheck(body);
    return verdict === JSON_OK ? null : verdict === JSON_BAD_UTF8 ? 'CROWD_BAD_UTF8' : 'CROWD_BAD_JSON';
  }
  // The partition key is inside the body: parse it.
  let doc: unknown;
  try {
    doc = JSON.parse(utf8.decode(body));
  } catch (e) {
    return e instanceof TypeError ? 'CROWD_BAD_UTF8' : 'CROWD_BAD_JSON';
  }
  const v = resolvePointer(doc, route.key.pointer);
  if (typeof v === 'string') out.key = v;
  else if (typeof v === 'number' || typeof v === 'boolean') out.key = String(v);
  else if (v !== undefined && v !== null) return 'CROWD_BAD_KEY';
  return null;
}
