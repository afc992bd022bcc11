/**
 * Loads uWebSockets.js and refuses to run on its pure-JS fallback: the build used here
 * (platform.md) silently falls back to a slow `ws` implementation when its binary does not
 * load, which would make every figure crowd publishes a lie.
 */
import { createRequire } from 'node:module';
import type * as Uws from '@trufflesuite/uws-js-unofficial';

export type UwsModule = typeof Uws;

export function isNativeUws(m: UwsModule): boolean {
  return typeof m.App === 'function' && /\[native code\]/.test(Function.prototype.toString.call(m.App));
}

let cached: UwsModule | null = null;

export function loadUws(): UwsModule {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  const m = require('@trufflesuite/uws-js-unofficial') as UwsModule;
  if (!isNativeUws(m) || process.env.UWS_USE_FALLBACK) {
    throw new Error('uWebSockets.js native binary did not load (fallback in use); crowd will not run on the fallback');
  }
  cached = m;
  return m;
}
