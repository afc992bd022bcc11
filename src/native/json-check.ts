/**
 * Is a body valid UTF-8 JSON? crowd's N-API addon (native/json_check.c: one pass, builds no
 * value) when it built, else the JS twin: TextDecoder (fatal) then JSON.parse, whose verdict
 * the native check reproduces (test/json-check.test.ts). `CROWD_NATIVE=0` forces the twin.
 */
import { createRequire } from 'node:module';

export const JSON_OK = 0;
export const JSON_BAD_UTF8 = 1;
export const JSON_BAD_JSON = 2;
export type JsonVerdict = typeof JSON_OK | typeof JSON_BAD_UTF8 | typeof JSON_BAD_JSON;

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function jsonCheckJs(body: Uint8Array): JsonVerdict {
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    return JSON_BAD_UTF8;
  }
  try {
    JSON.parse(text);
    return JSON_OK;
  } catch {
    return JSON_BAD_JSON;
  }
}

function loadNative(): ((body: Uint8Array) => JsonVerdict) | null {
  try {
    const require = createRequire(import.meta.url);
    const addon = require('../../../build/Release/crowd_core.node') as { jsonCheck?: (b: Uint8Array) => JsonVerdict };
    return addon.jsonCheck ?? null;
  } catch {
    return null;
  }
}

export const jsonCheckNative = loadNative();
export const jsonCheck: (body: Uint8Array) => JsonVerdict = process.env.CROWD_NATIVE === '0' || !jsonCheckNative ? jsonCheckJs : jsonCheckNative;
export const jsonCheckKind: 'native' | 'js' = jsonCheck === jsonCheckJs ? 'js' : 'native';
