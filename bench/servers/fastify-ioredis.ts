// Baseline: the endpoint a user writes without crowd: fastify, and per request an awaited
// ioredis XADD to a stream. Usage: node fastify-ioredis.js <port> <redis port> <stream>
import Fastify from 'fastify';
import { Redis } from 'ioredis';

const [port, redisPort, stream] = [Number(process.argv[2] ?? 13003), Number(process.argv[3] ?? 6379), process.argv[4] ?? 'bench-baseline'];
const redis = new Redis({ host: '127.0.0.1', port: redisPort });
await redis.ping();
const app = Fastify({ logger: false });
app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
app.post('/*', async (req) => {
  await redis.xadd(stream, '*', 'body', req.body as Buffer);
  return { status: 'OK' };
});
await app.listen({ host: '127.0.0.1', port });
process.stdout.write('listening\n');
