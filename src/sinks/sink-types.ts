/**
 * What every sink implements, and the outcomes it reports per message. The sink host
 * (sink-host.ts) owns reading the log, cursors, dead letters, stats and the `delivered` ack;
 * a sink only moves messages to its destination.
 */
import type { Envelope } from '../envelope/envelope-codec.js';

export interface OutboundMessage {
  /** The decoded envelope (the host's messages decode it on first use: stored-message.ts). */
  readonly envelope: Envelope;
  /** The envelope's protobuf bytes, as stored (for `format: envelope`). */
  payload: Buffer;
  lane: number;
  offset: number;
}

export type DeliveryOutcome =
  /** The destination has it. `detail` is shown in stats (e.g. "partition 0 offset 42"). */
  | { kind: 'delivered'; detail?: string }
  /**
   * Not now (destination down, timed out): the host sends it again after a backoff, or after
   * `afterMs` when the sink says how long to wait (a Retry-After, its own per-message backoff).
   */
  | { kind: 'retry'; reason: string; afterMs?: number }
  /** Never (too large, refused for good): the host writes it to the dead letters with the reason. */
  | { kind: 'dead'; reason: string };

export interface SinkHealth {
  healthy: boolean;
  detail: string;
}

export interface Sink {
  readonly name: string;
  /** Connects in the background; never throws because the destination is down. */
  start(): Promise<void>;
  /**
   * Takes one message; `done` is called exactly once with its outcome. Returns false (and
   * does not take the message) when the sink's own queue is full: the host tries later.
   */
  send(m: OutboundMessage, done: (o: DeliveryOutcome) => void): boolean;
  health(): SinkHealth;
  close(): Promise<void>;
  /**
   * Optional: the host gives a sink that refuses messages (send() false: a concurrency limit)
   * a wake-up to call when it can take more, so they go at once instead of at the next poll.
   */
  setWakeUp?(wake: () => void): void;
}
