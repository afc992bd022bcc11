// CRC32C: the native addon and its JS twin against the RFC 3720 vectors and each other.
import test from 'ava';
import fc from 'fast-check';
import { jsImpl, nativeImpl, type Crc32cImpl } from '../src/native/crc32c.js';
import { FRAME_HEADER, FRAME_MAGIC, frameSize } from '../src/log/frame-layout.js';

const impls: Crc32cImpl[] = [jsImpl, ...(nativeImpl ? [nativeImpl] : [])];

test('the native addon is built and loaded (a broken build must not go unnoticed)', (t) => {
  t.truthy(nativeImpl, 'build/Release/crowd_core.node did not load: npm install did not build it');
  t.is(nativeImpl?.kind, 'native');
});

for (const impl of impls) {
  test(`${impl.kind}: RFC 3720 test vectors`, (t) => {
    t.is(impl.crc32c(new Uint8Array(32)), 0x8a9136aa);
    t.is(impl.crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
    t.is(impl.crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e);
    t.is(impl.crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i)), 0x113fdb5c);
    t.is(impl.crc32c(Buffer.from('123456789')), 0xe3069283);
  });

  test(`${impl.kind}: sealFrames fills the checksum of each frame and stops at a non-frame`, (t) => {
    const payloads = [Buffer.from('a'), Buffer.from('hello world'), Buffer.alloc(0), Buffer.from('x'.repeat(1000))];
    const buf = Buffer.alloc(2048);
    let len = 0;
    for (const p of payloads) {
      buf.writeUInt32LE(FRAME_MAGIC, len);
      buf.writeUInt32LE(p.length, len + 8);
      p.copy(buf, len + FRAME_HEADER);
      len += frameSize(p.length);
    }
    t.is(impl.sealFrames(buf, 0, len), payloads.length);
    let pos = 0;
    for (const p of payloads) {
      t.is(buf.readUInt32LE(pos + 4), jsImpl.crc32c(buf.subarray(pos + 8, pos + FRAME_HEADER + p.length)));
      pos += frameSize(p.length);
    }
  });
}

test('native and JS agree on random data, seeds and offsets', (t) => {
  if (!nativeImpl) return t.fail('no native addon');
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 3000 }), fc.nat(), fc.nat(16), (data, seed, skip) => {
      const view = data.subarray(Math.min(skip, data.length));
      return nativeImpl!.crc32c(view, seed >>> 0) === jsImpl.crc32c(view, seed >>> 0);
    }),
  );
  t.pass();
});

test('sealFrames with a segment\'s secrets: native and JS twin seal identically, and a sealed batch can be sealed again', (t) => {
  if (!nativeImpl) return t.fail('no native addon');
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { minLength: 1, maxLength: 20 }), fc.nat(), fc.integer({ min: 1, max: 0xffffffff }), (payloads, seed, magic) => {
      if (magic === FRAME_MAGIC) return true;
      const size = payloads.reduce((n, p) => n + frameSize(p.length), 0);
      const make = () => {
        const b = Buffer.alloc(size);
        let pos = 0;
        for (const p of payloads) {
          b.writeUInt32LE(FRAME_MAGIC, pos);
          b.writeUInt32LE(p.length, pos + 8);
          b.set(p, pos + FRAME_HEADER);
          pos += frameSize(p.length);
        }
        return b;
      };
      const a = make();
      const b = make();
      if (nativeImpl!.sealFrames(a, 0, size, seed >>> 0, magic) !== payloads.length) return false;
      if (jsImpl.sealFrames(b, 0, size, seed >>> 0, magic) !== payloads.length) return false;
      if (!a.equals(b)) return false;
      let pos = 0;
      for (const p of payloads) {
        if (a.readUInt32LE(pos) !== magic) return false;
        if (a.readUInt32LE(pos + 4) !== jsImpl.crc32c(a.subarray(pos + 8, pos + FRAME_HEADER + p.length), seed >>> 0)) return false;
        pos += frameSize(p.length);
      }
      // Sealing again (a write retried from the same buffer) recognises the secret magic.
      const c = Buffer.from(a);
      return nativeImpl!.sealFrames(c, 0, size, seed >>> 0, magic) === payloads.length && c.equals(a) &&
        jsImpl.sealFrames(c, 0, size, seed >>> 0, magic) === payloads.length && c.equals(a);
    }),
    { numRuns: 200 },
  );
  t.pass();
});
