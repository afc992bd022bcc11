/**
 * The native JSON check (native/json_check.c) must give the verdict of the JS path it
 * replaces on the hot path (TextDecoder fatal + JSON.parse): valid, invalid UTF-8, invalid
 * JSON. Generated documents, mutated bytes, random bytes, and the edge cases by name.
 */
import test from 'ava';
import fc from 'fast-check';
import { JSON_BAD_JSON, JSON_BAD_UTF8, JSON_OK, jsonCheckJs, jsonCheckNative } from '../src/native/json-check.js';

const native = jsonCheckNative;
const maybe = native ? test : test.skip;
const bytes = (s: string | number[]) => new Uint8Array(typeof s === 'string' ? Buffer.from(s, 'utf8') : s);

test('the native check is built (CI must not silently fall back to the JS twin)', (t) => {
  t.truthy(native, 'build/Release/crowd_core.node has no jsonCheck');
});

maybe('generated JSON documents are valid for both, whitespace and unicode included', (t) => {
  fc.assert(
    fc.property(fc.jsonValue(), fc.constantFrom(0, 2, '\t'), (v, indent) => {
      const b = bytes(JSON.stringify(v, null, indent));
      return native!(b) === JSON_OK && jsonCheckJs(b) === JSON_OK;
    }),
    { numRuns: 3000 },
  );
  t.pass();
});

maybe('mutated documents: the same verdict as TextDecoder + JSON.parse', (t) => {
  const mutation = fc.record({ at: fc.nat(), op: fc.constantFrom('insert', 'delete', 'replace'), byte: fc.integer({ min: 0, max: 255 }) });
  fc.assert(
    fc.property(fc.jsonValue(), fc.array(mutation, { minLength: 1, maxLength: 4 }), (v, muts) => {
      const arr = [...Buffer.from(JSON.stringify(v) ?? 'null')];
      for (const m of muts) {
        const at = arr.length === 0 ? 0 : m.at % (arr.length + (m.op === 'insert' ? 1 : 0));
        if (m.op === 'insert') arr.splice(at, 0, m.byte);
        else if (m.op === 'delete') arr.splice(at, 1);
        else arr[at] = m.byte;
      }
      const b = new Uint8Array(arr);
      return native!(b) === jsonCheckJs(b);
    }),
    { numRuns: 20000 },
  );
  t.pass();
});

maybe('random bytes and JSON-alphabet strings: the same verdict', (t) => {
  const alphabet = fc.constantFrom(...'{}[]",:0123456789-+.eEtrufalsn \t\n\r\\/bu'.split(''), 'é', '\u0000', '\u001f', '\u2028', '\ud83d\ude00');
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.array(alphabet, { maxLength: 40 }).map((a) => bytes(a.join('')))), (b) => native!(b) === jsonCheckJs(b)),
    { numRuns: 30000 },
  );
  t.pass();
});

maybe('edge cases by name', (t) => {
  const cases: Array<[string, Uint8Array]> = [
    ['empty', bytes('')],
    ['only whitespace', bytes(' \n\t\r')],
    ['BOM then object', bytes([0xef, 0xbb, 0xbf, ...Buffer.from('{"a":1}')])],
    ['two BOMs', bytes([0xef, 0xbb, 0xbf, 0xef, 0xbb, 0xbf, ...Buffer.from('1')])],
    ['overlong slash', bytes([0x22, 0xc0, 0xaf, 0x22])],
    ['UTF-16 surrogate in UTF-8', bytes([0x22, 0xed, 0xa0, 0x80, 0x22])],
    ['past U+10FFFF', bytes([0x22, 0xf4, 0x90, 0x80, 0x80, 0x22])],
    ['truncated sequence at the end', bytes([0x22, 0xe2, 0x82])],
    ['lone surrogate escape', bytes('"\\ud800"')],
    ['bad escape', bytes('"\\x41"')],
    ['short unicode escape', bytes('"\\u12"')],
    ['raw tab in a string', bytes('"a\tb"')],
    ['raw DEL in a string', bytes('"a\u007fb"')],
    ['leading zero', bytes('01')],
    ['minus zero, exponent', bytes('-0.0e+00')],
    ['dot without digits', bytes('1.')],
    ['exponent without digits', bytes('1e')],
    ['plus sign', bytes('+1')],
    ['trailing comma', bytes('[1,]')],
    ['object trailing comma', bytes('{"a":1,}')],
    ['non-string key', bytes('{1:2}')],
    ['two values', bytes('1 2')],
    ['vertical tab as whitespace', bytes('\u000b1')],
    ['NBSP as whitespace', bytes('\u00a01')],
    ['NaN', bytes('NaN')],
    ['unclosed', bytes('{"a":[1,2')],
    ['mismatched', bytes('[1}')],
    ['__proto__ key', bytes('{"__proto__":{"x":1}}')],
  ];
  for (const [name, b] of cases) t.is(native!(b), jsonCheckJs(b), name);
  t.is(native!(bytes('[{"a":"é😀"}]')), JSON_OK);
  t.is(native!(bytes([0xff])), JSON_BAD_UTF8);
  t.is(native!(bytes('{')), JSON_BAD_JSON);
});

maybe('deep nesting has no limit of its own', (t) => {
  const depth = 100_000;
  const deep = bytes('['.repeat(depth) + ']'.repeat(depth));
  t.is(native!(deep), JSON_OK);
  t.is(native!(bytes('['.repeat(depth) + ']'.repeat(depth - 1))), JSON_BAD_JSON);
  const objs = bytes('{"a":'.repeat(5000) + '1' + '}'.repeat(5000));
  t.is(native!(objs), jsonCheckJs(objs));
});
