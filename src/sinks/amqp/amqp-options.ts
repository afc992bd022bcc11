/**
 * The amqp sink's config: its schema fragment, the runtime options made from it, and the
 * routing-key template ("{topic}" and "{key}" replaced per message).
 */
import { duration, H } from '../../config/duration-schema.js';
import type { SinkOptionsContext } from '../sink-module.js';

export const amqpSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['type', 'url'],
  properties: {
    type: { const: 'amqp' },
    /** amqp://user:pass@host:5672/vhost or amqps://...; user, password and vhost URL-encoded. */
    url: { type: 'string', pattern: '^amqps?://[^\\s]+$' },
    /** Exchange to publish to; "" is the default exchange (routing key = queue name). */
    exchange: { type: 'string', maxLength: 255, pattern: '^[A-Za-z0-9._:-]*$', default: '' },
    /** Routing key; "{topic}" and "{key}" are replaced by the route's topic and partition key. */
    routingKey: { type: 'string', maxLength: 255, default: '{topic}' },
    /** delivery-mode 2: the broker writes the message to disk before it confirms it. */
    persistent: { type: 'boolean', default: true },
    /** A message no queue takes comes back (basic.return) and is dead-lettered as "unroutable". */
    mandatory: { type: 'boolean', default: true },
    /** Messages published and not yet confirmed; beyond it the sink takes no more. */
    maxInFlight: { type: 'integer', minimum: 1, maximum: 65535, default: 1000 },
    format: { enum: ['raw', 'envelope'], default: 'raw' },
    /** No confirm for the oldest message by then: the connection is dropped and its messages sent again. */
    confirmTimeout: { ...duration(100, 1 * H), default: '30s' },
  },
} as const;

export interface AmqpSinkOptions {
  type: 'amqp';
  url: string;
  exchange: string;
  routingKey: string;
  persistent: boolean;
  mandatory: boolean;
  maxInFlight: number;
  format: 'raw' | 'envelope';
  confirmTimeoutMs: number;
}

export function amqpOptions(name: string, s: Record<string, any>, ctx: SinkOptionsContext): AmqpSinkOptions {
  let u: URL;
  try {
    u = new URL(s.url);
  } catch (e) {
    throw new Error(`config: /sinks/${name}/url is not a URL: ${(e as Error).message}`);
  }
  if ((u.protocol !== 'amqp:' && u.protocol !== 'amqps:') || u.hostname === '') throw new Error(`config: /sinks/${name}/url is not an amqp:// or amqps:// URL with a host`);
  const confirmTimeoutMs = ctx.duration(s.confirmTimeout);
  if (confirmTimeoutMs < 100) throw new Error(`config: /sinks/${name}/confirmTimeout must be at least 100ms`);
  return {
    type: 'amqp', url: s.url, exchange: s.exchange, routingKey: s.routingKey, persistent: s.persistent, mandatory: s.mandatory,
    maxInFlight: s.maxInFlight, format: s.format, confirmTimeoutMs,
  };
}

/** The routing key of a message: every "{topic}" and "{key}" of the template replaced. */
export function routingKeyTemplate(template: string): (topic: string, key: string) => string {
  const parts = template.split(/(\{topic\}|\{key\})/);
  if (parts.length === 1) return () => template;
  return (topic, key) => {
    let s = '';
    for (const p of parts) s += p === '{topic}' ? topic : p === '{key}' ? key : p;
    return s;
  };
}

/** The URL without its password, for logs and health. */
export function redactedAmqpUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(bad url)';
  }
}
