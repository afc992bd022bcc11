/**
 * The admin API's server registration endpoints, as plain functions of the request body and
 * the pool registry (admin-server.ts does the HTTP):
 *   POST /servers          {"pool","ip","port","scheme"?,"check"?}  201 {"id",...} (200 when already there)
 *   DELETE /servers/:id    202 {"id","state":"draining",...}: the server drains, then leaves
 *   GET /servers           [{id, pool, ip, port, url, state, source, inFlight, success, failed, latencyMs, lastError}]
 *   GET /stats/detail      [{id, pool, ip, port, state, success, failed, inFlight, latencyMs}]
 * Bodies are validated with ajv against serverRegistrationSchema (src/config/schema.ts).
 */
import { Ajv } from 'ajv';
import { durationKeyword, serverRegistrationSchema } from '../config/schema.js';
import { ERRORS, errorDocument, type ErrorCode } from '../errors.js';
import type { PoolRegistry, Registration } from '../upstream/pool-registry.js';

export interface AdminAnswer {
  status: number;
  type: string;
  body: string;
}

const ajv = new Ajv({ useDefaults: true, allErrors: false, strict: true });
ajv.addKeyword(durationKeyword);
const validateRegistration = ajv.compile(serverRegistrationSchema);

export function json(status: number, doc: unknown): AdminAnswer {
  return { status, type: 'application/json', body: JSON.stringify(doc) };
}

/** An error of the table, with its status, and fields that say more (`detail`: what was wrong). */
export function errorAnswer(code: ErrorCode, more: { detail?: string; [field: string]: unknown } = {}): AdminAnswer {
  return json(ERRORS[code].status, errorDocument(code, more));
}

export async function registerServer(registry: PoolRegistry, body: Buffer): Promise<AdminAnswer> {
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch (e) {
    return errorAnswer('CROWD_BAD_JSON', { detail: (e as Error).message });
  }
  if (!validateRegistration(doc)) {
    const e = validateRegistration.errors![0];
    const extra = e.params && 'additionalProperty' in e.params ? ` ("${e.params.additionalProperty}")` : '';
    return errorAnswer('CROWD_INVALID_REQUEST', { detail: `${e.instancePath || '(body)'} ${e.message}${extra}` });
  }
  const r = await registry.register(doc as Registration);
  if (!r.ok) return errorAnswer(r.code, { detail: r.detail });
  return json(r.created ? 201 : 200, { ...r.server, created: r.created });
}

export async function removeServer(registry: PoolRegistry, id: string): Promise<AdminAnswer> {
  const s = await registry.remove(id);
  if (!s) return errorAnswer('CROWD_UNKNOWN_SERVER', { detail: `no server "${id}"` });
  return json(202, s);
}

export function listServers(registry: PoolRegistry): AdminAnswer {
  return json(200, registry.list());
}

export function serverDetail(registry: PoolRegistry): AdminAnswer {
  return json(200, registry.list().map(({ id, pool, ip, port, state, success, failed, inFlight, latencyMs }) => ({ id, pool, ip, port, state, success, failed, inFlight, latencyMs })));
}
