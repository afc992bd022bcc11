/**
 * Routing fields of a stored envelope without decoding it: the topic (field 2) and the receive
 * time (field 3) of proto/crowd.proto.
 *
 * The sink host needs only these two to decide whether a sink gets a record and to track its
 * age; the native Redis writer sends the stored bytes as they are. A full protobufjs decode
 * (toObject copies the body, every string field becomes a JS string) was the sink thread's
 * largest cost per record (docs/benchmarks.md, "Sink host"), so it now happens only when a sink
 * reads `envelope` (sinks/stored-message.ts).
 *
 * The walk is protobufjs's own: its Reader reads every tag and length and skips every field the
 * way the generated decoder does (headers are decoded by it), so bytes this accepts are bytes
 * the full decode accepts, and it throws where the decode would (envelope.test.ts).
 */
import protobuf from 'protobufjs';
import { HeaderType } from './envelope-codec.js';

export interface EnvelopeRouting {
  topic: string;
  receivedAtMs: number;
}

/** The topic string of the previous call, reused while the bytes repeat (one topic per route). */
let lastTopicBytes = new Uint8Array(0);
let lastTopic = '';
const utf8 = new TextDecoder();

function topicOf(b: Uint8Array, start: number, end: number): string {
  const n = end - start;
  if (n === lastTopicBytes.length) {
    let i = 0;
    while (i < n && b[start + i] === lastTopicBytes[i]) i++;
    if (i === n) return lastTopic;
  }
  lastTopicBytes = b.slice(start, end);
  lastTopic = utf8.decode(lastTopicBytes);
  return lastTopic;
}

export function peekEnvelope(b: Uint8Array): EnvelopeRouting {
  const r = protobuf.Reader.create(b);
  const out: EnvelopeRouting = { topic: '', receivedAtMs: 0 };
  while (r.pos < r.len) {
    const tag = r.uint32();
    switch (tag >>> 3) {
      case 2: {
        const n = r.uint32();
        const start = r.pos;
        r.skip(n);
        out.topic = topicOf(b, start, start + n);
        break;
      }
      case 3: {
        // A Long when the long package is present (it is: protobufjs's dependency). Number(long)
        // would go through Long's toString and a parse (~5% of the sink host thread in perf);
        // the field is unsigned, so its value is high * 2^32 + low.
        const v = r.uint64() as number | protobuf.Long;
        out.receivedAtMs = typeof v === 'number' ? v : (v.high >>> 0) * 0x1_0000_0000 + (v.low >>> 0);
        break;
      }
      case 5:
        HeaderType.decode(r, r.uint32());
        break;
      case 1: case 4: case 6: case 7: case 8: case 9: case 10: case 11:
        r.skip(r.uint32());
        break;
      default:
        r.skipType(tag & 7);
    }
  }
  return out;
}
