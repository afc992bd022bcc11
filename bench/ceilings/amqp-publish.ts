// The broker's own ceiling for what the amqp sink does: persistent, mandatory publishes of a
// 150-byte body on one confirm channel, with `window` unconfirmed at most, counted when the
// broker confirms them. No HTTP, no log: whatever crowd -> RabbitMQ reaches, it cannot pass this.
// Usage: node dist/bench/ceilings/amqp-publish.js <amqp url> [messages=100000] [window=1000]
import amqp from 'amqplib';

const [url, total, window] = [process.argv[2] ?? 'amqp://guest:guest@127.0.0.1:19672/', Number(process.argv[3] ?? 100_000), Number(process.argv[4] ?? 1000)];
const queue = `bench-ceiling-${process.pid}`;
const body = Buffer.from(JSON.stringify({ message: 'x'.repeat(120), n: 0 }).slice(0, 150));
const conn = await amqp.connect(url);
const ch = await conn.createConfirmChannel();
await ch.assertQueue(queue, { durable: true });
let sent = 0;
let confirmed = 0;
const t0 = performance.now();
await new Promise<void>((resolve, reject) => {
  const pump = (): void => {
    while (sent < total && sent - confirmed < window) {
      sent++;
      ch.publish('', queue, body, { persistent: true, mandatory: true, contentType: 'application/json' }, (err: unknown) => {
        if (err) return reject(err as Error);
        confirmed++;
        if (confirmed === total) resolve();
        else pump();
      });
    }
  };
  pump();
});
const s = (performance.now() - t0) / 1000;
await ch.deleteQueue(queue);
await conn.close();
process.stdout.write(`${JSON.stringify({ messages: total, window, seconds: Number(s.toFixed(2)), confirmedPerSec: Math.round(total / s) })}\n`);
