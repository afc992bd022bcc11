/**
 * Hot-path protobuf encoding of crowd.v1.Envelope (proto/crowd.proto) straight into ring
 * memory: the acceptor measures the record, reserves ring space, and writes the wire format
 * in place, with no intermediate object or buffer. protobufjs remains the schema authority:
 * test/envelope.test.ts checks that protobufjs decodes these bytes to the same message and
 * that protobufjs's own encoding is byte-identical; bench/micro/envelope.ts measures both.
 *
 * Wire format used (proto3, fields in number order, empty strings omitted):
 *   1 id, 2 topic, 3 received_at_ms (varint), 4 key, 5 headers {1 name, 2 value}*,
 *   6 content_type, 7 body, 8 method, 9 path, 10 query, 11 content_encoding
 */
export interface EnvelopeFields {
  id: string;
  topic: string;
  receivedAtMs: number;
  key: string;
  /** Flat [name, value, name, value, ...] */
  headers: string[];
  contentType: string;
  body: Uint8Array;
  method: string;
  path: string;
  query: string;
  /** The Content-Encoding header as received; absent or "" when the request had none. */
  contentEncoding?: string;
}

function varintSize(n: number): number {
  let s = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    s++;
  }
  return s;
}

function strField(s: string): number {
  if (s.length === 0) return 0;
  const n = Buffer.byteLength(s, 'utf8');
  return 1 + varintSize(n) + n;
}

/** Size of one Header submessage's contents. */
function headerSize(name: string, value: string): number {
  return strField(name) + strField(value);
}

export function envelopeSize(f: EnvelopeFields): number {
  let n = strField(f.id) + strField(f.topic) + (f.receivedAtMs > 0 ? 1 + varintSize(f.receivedAtMs) : 0) + strField(f.key);
  for (let i = 0; i < f.headers.length; i += 2) {
    const h = headerSize(f.headers[i], f.headers[i + 1]);
    n += 1 + varintSize(h) + h;
  }
  n += strField(f.contentType);
  if (f.body.length > 0) n += 1 + varintSize(f.body.length) + f.body.length;
  return n + strField(f.method) + strField(f.path) + strField(f.query) + strField(f.contentEncoding ?? '');
}

function writeVarint(b: Buffer, at: number, n: number): number {
  while (n >= 128) {
    b[at++] = (n % 128) | 128;
    n = Math.floor(n / 128);
  }
  b[at++] = n;
  return at;
}

function writeStr(b: Buffer, at: number, tag: number, s: string): number {
  if (s.length === 0) return at;
  b[at++] = tag;
  const n = Buffer.byteLength(s, 'utf8');
  at = writeVarint(b, at, n);
  return at + b.write(s, at, n, 'utf8');
}

/** Writes the envelope at b[at...]; returns the position after it. */
export function writeEnvelope(b: Buffer, at: number, f: EnvelopeFields): number {
  at = writeStr(b, at, 0x0a, f.id);
  at = writeStr(b, at, 0x12, f.topic);
  if (f.receivedAtMs > 0) {
    b[at++] = 0x18;
    at = writeVarint(b, at, f.receivedAtMs);
  }
  at = writeStr(b, at, 0x22, f.key);
  for (let i = 0; i < f.headers.length; i += 2) {
    b[at++] = 0x2a;
    at = writeVarint(b, at, headerSize(f.headers[i], f.headers[i + 1]));
    at = writeStr(b, at, 0x0a, f.headers[i]);
    at = writeStr(b, at, 0x12, f.headers[i + 1]);
  }
  at = writeStr(b, at, 0x32, f.contentType);
  if (f.body.length > 0) {
    b[at++] = 0x3a;
    at = writeVarint(b, at, f.body.length);
    b.set(f.body, at);
    at += f.body.length;
  }
  at = writeStr(b, at, 0x42, f.method);
  at = writeStr(b, at, 0x4a, f.path);
  at = writeStr(b, at, 0x52, f.query);
  return writeStr(b, at, 0x5a, f.contentEncoding ?? '');
}

/**
 * Bytes of one string field (tag, length, UTF-8), computed once and copied on each request:
 * a route's topic, its method and path, a content type seen before.
 */
export function stringFieldBytes(fieldNumber: number, s: string): Buffer {
  const b = Buffer.alloc(strField(s));
  writeStr(b, 0, (fieldNumber << 3) | 2, s);
  return b;
}

/** Per-route constant parts of the envelope: field 2 (topic), fields 8 and 9 (method, path). */
export interface RouteFields {
  topic: Buffer;
  methodPath: Buffer;
}

export function routeFields(topic: string, method: string, path: string): RouteFields {
  return { topic: stringFieldBytes(2, topic), methodPath: Buffer.concat([stringFieldBytes(8, method), stringFieldBytes(9, path)]) };
}

/** Size of what writeEnvelopeFast writes (same bytes as envelopeSize/writeEnvelope). */
export function envelopeSizeFast(id: string, rf: RouteFields, receivedAtMs: number, key: string, headers: string[], ct: Buffer, body: Uint8Array, query: string, contentEncoding = ''): number {
  let n = 2 + id.length + rf.topic.length + 1 + varintSize(receivedAtMs) + strField(key);
  for (let i = 0; i < headers.length; i += 2) {
    const h = headerSize(headers[i], headers[i + 1]);
    n += 1 + varintSize(h) + h;
  }
  n += ct.length + rf.methodPath.length + strField(query) + strField(contentEncoding);
  if (body.length > 0) n += 1 + varintSize(body.length) + body.length;
  return n;
}

/**
 * The hot-path writer: like writeEnvelope, with the constant fields pre-encoded and the id
 * (ASCII, < 128 chars, non-empty) copied byte by byte instead of through the UTF-8 encoder.
 * test/envelope.test.ts checks it writes exactly what writeEnvelope writes.
 */
export function writeEnvelopeFast(b: Buffer, at: number, id: string, rf: RouteFields, receivedAtMs: number, key: string, headers: string[], ct: Buffer, body: Uint8Array, query: string, contentEncoding = ''): number {
  b[at++] = 0x0a;
  b[at++] = id.length;
  for (let i = 0; i < id.length; i++) b[at++] = id.charCodeAt(i);
  b.set(rf.topic, at);
  at += rf.topic.length;
  b[at++] = 0x18;
  at = writeVarint(b, at, receivedAtMs);
  at = writeStr(b, at, 0x22, key);
  for (let i = 0; i < headers.length; i += 2) {
    b[at++] = 0x2a;
    at = writeVarint(b, at, headerSize(headers[i], headers[i + 1]));
    at = writeStr(b, at, 0x0a, headers[i]);
    at = writeStr(b, at, 0x12, headers[i + 1]);
  }
  b.set(ct, at);
  at += ct.length;
  if (body.length > 0) {
    b[at++] = 0x3a;
    at = writeVarint(b, at, body.length);
    b.set(body, at);
    at += body.length;
  }
  b.set(rf.methodPath, at);
  at += rf.methodPath.length;
  at = writeStr(b, at, 0x52, query);
  return contentEncoding.length === 0 ? at : writeStr(b, at, 0x5a, contentEncoding);
}
