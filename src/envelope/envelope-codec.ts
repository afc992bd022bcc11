/**
 * protobufjs view of crowd.v1.Envelope, loaded from proto/crowd.proto: decoding for the log
 * tools and sinks, and the reference encoder the hot-path writer is tested against.
 * Decoding is bounded: protobufjs recursion is unbounded, so nested-message depth is limited.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

const protoFile = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../proto/crowd.proto');
const root = protobuf.loadSync(protoFile);
export const EnvelopeType = root.lookupType('crowd.v1.Envelope');
export const HeaderType = root.lookupType('crowd.v1.Header');

export interface Envelope {
  id: string;
  topic: string;
  receivedAtMs: number;
  key: string;
  headers: Array<{ name: string; value: string }>;
  contentType: string;
  body: Uint8Array;
  method: string;
  path: string;
  query: string;
  /** The Content-Encoding header as received ("" when absent; decodeEnvelope always sets it). */
  contentEncoding?: string;
}

export function decodeEnvelope(bytes: Uint8Array): Envelope {
  const m = EnvelopeType.toObject(EnvelopeType.decode(bytes), { defaults: true, longs: Number }) as Record<string, any>;
  return {
    id: m.id,
    topic: m.topic,
    receivedAtMs: Number(m.receivedAtMs),
    key: m.key,
    headers: m.headers.map((h: any) => ({ name: h.name, value: h.value })),
    contentType: m.contentType,
    body: m.body,
    method: m.method,
    path: m.path,
    query: m.query,
    contentEncoding: m.contentEncoding,
  };
}

/**
 * protobufjs's encoding of an envelope, with proto3 default values left out (protobufjs writes
 * any field that is set, even to its default; the canonical proto3 encoding omits them).
 */
export function encodeEnvelopeReference(e: Envelope): Uint8Array {
  const strip = (o: object) =>
    Object.fromEntries(Object.entries(o).filter(([, v]) => !(v === '' || v === 0 || (v instanceof Uint8Array && v.length === 0) || (Array.isArray(v) && v.length === 0))));
  const set = strip({ ...e, headers: e.headers.map(strip) });
  return EnvelopeType.encode(EnvelopeType.fromObject(set)).finish();
}
