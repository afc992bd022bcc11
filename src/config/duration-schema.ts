/**
 * Durations in the config and the admin API: the JSON Schema of a duration string ("250ms",
 * "5s", "2m", "1h") with the range it must lie in, and the ajv keyword that checks the range.
 * Every duration has bounds: "0ms" as a health-check interval ran ~900 checks a second, and a
 * value above Node's timer range (2^31-1 ms, ~24.8 days) became 1 ms. config/load.ts
 * parseDuration reads the strings.
 */
import type { KeywordDefinition } from 'ajv';

const DURATION_UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

export const S = 1000;
export const M = 60 * S;
export const H = 60 * M;

/** "250ms", "5s", "2m", "1h" in ms; NaN when it is not a duration. */
export function durationToMs(s: string): number {
  const m = /^([0-9]+)(ms|s|m|h)$/.exec(s);
  return m ? Number(m[1]) * DURATION_UNIT_MS[m[2] as keyof typeof DURATION_UNIT_MS] : NaN;
}

function showMs(ms: number): string {
  for (const [unit, n] of [['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) if (ms % n === 0) return `${ms / n}${unit}`;
  return `${ms}ms`;
}

/**
 * `durationMs: [min, max]`: a duration string whose value lies in [min, max] ms. Register it on
 * every ajv that compiles these schemas (config/load.ts, admin/servers-api.ts).
 */
export const durationKeyword: KeywordDefinition = {
  keyword: 'durationMs',
  type: 'string',
  schemaType: 'array',
  errors: true,
  validate: function check(range: [number, number], data: string): boolean {
    const ms = durationToMs(data);
    if (ms >= range[0] && ms <= range[1]) return true;
    (check as { errors?: unknown[] }).errors = [
      { keyword: 'durationMs', message: `must be a duration from ${showMs(range[0])} to ${showMs(range[1])}`, params: { min: range[0], max: range[1] } },
    ];
    return false;
  },
};

/** A duration between min and max ms (both within Node's timer range unless said otherwise). */
export function duration(min: number, max: number) {
  return { type: 'string', pattern: '^[0-9]+(ms|s|m|h)$', durationMs: [min, max] } as const;
}
