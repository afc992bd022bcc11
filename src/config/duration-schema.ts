/** The JSON Schema of a duration ("250ms", "5s", "2m", "1h"); config/load.ts parseDuration reads it. */
export const duration = { type: 'string', pattern: '^[0-9]+(ms|s|m|h)$' } as const;
