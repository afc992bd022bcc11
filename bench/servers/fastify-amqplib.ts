// Baseline: the endpoint a user writes without crowd: fastify, and per request a persistent
// publish on an amqplib confirm channel, awaited until the broker confirms it.
// Usage: node fastify-amqplib.js <port> <amqp url> <queue>
import amqp from 'amqplib';
import Fastify from 'fastify';

const [port, url, queue] = [Number(process.argv[2] ?? 13004), process.argv[3] ?? 'amqp://guest:guest@127.0.0.1:19772/', process.argv[4] ?? 'bench-baseline'];
const conn = await amqp.connect(url);
const ch = await conn.createConfirmChannel();
await ch.assertQueue(queue, { durable: true });
const app = Fastify({ logger: false });
app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
app.post('/*', async (req) => {
  await new Promise<void>((resolve, reject) =>
    ch.publish('', queue, req.body as Buffer, { persistent: true, mandatory: true, contentType: 'application/json' }, (err: unknown) => (err ? reject(err as Error) : resolve())),
  );
  return { status: 'OK' };
});
await app.listen({ host: '127.0.0.1', port });
process.stdout.write('listening\n');
