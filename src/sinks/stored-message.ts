/**
 * A record read from the log on its way to a sink: the stored envelope bytes, where they are,
 * and the envelope decoded only when a sink first asks for it (envelope-peek.ts says why).
 */
import { decodeEnvelope, type Envelope } from '../envelope/envelope-codec.js';
import type { OutboundMessage } from './sink-types.js';

export class StoredMessage implements OutboundMessage {
  private decoded: Envelope | null = null;

  constructor(
    readonly payload: Buffer,
    readonly lane: number,
    readonly offset: number,
  ) {}

  get envelope(): Envelope {
    return (this.decoded ??= decodeEnvelope(this.payload));
  }
}
