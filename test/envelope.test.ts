// The hot-path envelope writer against protobufjs, the schema authority (proto/crowd.proto).
import test from 'ava';
import fc from 'fast-check';
import { envelopeSize, writeEnvelope, type EnvelopeFields } from '../src/envelope/envelope-writer.js';
import { decodeEnvelope, encodeEnvelopeReference } from '../src/envelope/envelope-codec.js';

const fieldsArb = fc.record({
  id: fc.string({ maxLength: 30 }),
  topic: fc.string({ maxLength: 40 }),
  receivedAtMs: fc.integer({ min: 0, max: 2 ** 50 }),
  key: fc.string({ unit: 'grapheme', maxLength: 20 }),
  headers: fc.array(fc.tuple(fc.string({ maxLength: 20 }), fc.string({ unit: 'grapheme', maxLength: 40 })), { maxLength: 5 }).map((a) => a.flat()),
  contentType: fc.string({ maxLength: 30 }),
  body: fc.uint8Array({ maxLength: 3000 }),
  method: fc.constantFrom('POST', 'PUT', 'PATCH'),
  path: fc.string({ maxLength: 50 }),
  query: fc.string({ maxLength: 50 }),
});

function encode(f: EnvelopeFields): Buffer {
  const size = envelopeSize(f);
  const b = Buffer.alloc(size + 8, 0xee);
  const end = writeEnvelope(b, 4, f);
  if (end !== 4 + size) throw new Error(`size ${size} but wrote ${end - 4}`);
  if (b[3] !== 0xee || b[end] !== 0xee) throw new Error('wrote outside its space');
  return b.subarray(4, end);
}

test('hand-written bytes decode with protobufjs to the same message, and equal protobufjs encoding', (t) => {
  fc.assert(
    fc.property(fieldsArb, (f) => {
      const bytes = encode(f);
      const d = decodeEnvelope(bytes);
      const headers = d.headers.flatMap((h) => [h.name, h.value]);
      const same = d.id === f.id && d.topic === f.topic && d.receivedAtMs === f.receivedAtMs && d.key === f.key &&
        JSON.stringify(headers) === JSON.stringify(f.headers) && d.contentType === f.contentType &&
        Buffer.from(d.body).equals(Buffer.from(f.body)) && d.method === f.method && d.path === f.path && d.query === f.query;
      const ref = Buffer.from(encodeEnvelopeReference(d));
      return same && ref.equals(bytes);
    }),
    { numRuns: 500 },
  );
  t.pass();
});

test('a typical tracking message', (t) => {
  const f: EnvelopeFields = {
    id: '01m81bckre23thw2000001', topic: 'leads', receivedAtMs: 1_795_341_830_903, key: 'shop-7',
    headers: ['user-agent', 'curl/8'], contentType: 'application/json', body: Buffer.from('{"message":"hi"}'),
    method: 'POST', path: '/leads', query: 'a=1',
  };
  const d = decodeEnvelope(encode(f));
  t.like(d, { id: f.id, topic: 'leads', key: 'shop-7', contentType: 'application/json', method: 'POST', path: '/leads', query: 'a=1' });
  t.deepEqual(d.headers, [{ name: 'user-agent', value: 'curl/8' }]);
  t.is(Buffer.from(d.body).toString(), '{"message":"hi"}');
});

test('the hot-path writer writes exactly what the generic writer writes', async (t) => {
  const { routeFields, stringFieldBytes, envelopeSizeFast, writeEnvelopeFast } = await import('../src/envelope/envelope-writer.js');
  fc.assert(
    fc.property(fieldsArb, fc.stringMatching(/^[0-9a-z]{1,40}$/), fc.integer({ min: 1, max: 2 ** 50 }), (f, id, ts) => {
      const g = { ...f, id, receivedAtMs: ts };
      const rf = routeFields(g.topic, g.method, g.path);
      const ct = stringFieldBytes(6, g.contentType);
      const size = envelopeSizeFast(id, rf, ts, g.key, g.headers, ct, g.body, g.query);
      const fast = Buffer.alloc(size);
      const end = writeEnvelopeFast(fast, 0, id, rf, ts, g.key, g.headers, ct, g.body, g.query);
      return end === size && fast.equals(encode(g));
    }),
    { numRuns: 500 },
  );
  t.pass();
});

test('peekEnvelope reads the topic and receive time protobufjs decodes, topic after topic', async (t) => {
  const { peekEnvelope } = await import('../src/envelope/envelope-peek.js');
  fc.assert(
    fc.property(fc.array(fieldsArb, { minLength: 1, maxLength: 4 }), (all) => {
      // Several in a row: the peek reuses the previous topic string while the bytes repeat.
      for (const f of all) {
        const p = peekEnvelope(encode(f));
        if (p.topic !== f.topic || p.receivedAtMs !== f.receivedAtMs) return false;
      }
      return true;
    }),
    { numRuns: 300 },
  );
  t.pass();
});

test('an envelope peekEnvelope accepts always decodes: cut or damaged bytes are refused, not passed on', async (t) => {
  const { peekEnvelope } = await import('../src/envelope/envelope-peek.js');
  let refused = 0;
  fc.assert(
    fc.property(fieldsArb, fc.nat(), fc.nat(255), fc.boolean(), (f, at, byte, cut) => {
      const good = encode(f);
      const bad = Buffer.from(good);
      const i = at % bad.length;
      const damaged = cut ? bad.subarray(0, i) : ((bad[i] = byte), bad);
      let peeked = true;
      try {
        peekEnvelope(damaged);
      } catch {
        peeked = false;
        refused++;
      }
      if (!peeked) return true;
      try {
        decodeEnvelope(damaged);
      } catch (e) {
        throw new Error(`peek accepted what does not decode (${(e as Error).message}): ${damaged.toString("hex")}`);
      }
      return true;
    }),
    { numRuns: 2000 },
  );
  // The damage must actually reach the peek's checks, or this test proves nothing.
  t.true(refused > 100, `only ${refused} of 2000 damaged envelopes were refused`);
  t.throws(() => peekEnvelope(Buffer.from([0x12, 0x05, 0x61])), { message: /index out of range/ });
  // Field 12 is unknown (11 is content_encoding): its wire type 4 is refused.
  t.throws(() => peekEnvelope(Buffer.from([0x64])), { message: /invalid wire type 4/ });
});
