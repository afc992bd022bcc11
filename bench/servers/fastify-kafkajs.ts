// Baseline: the endpoint a user writes without crowd: fastify, and per request an awaited
// kafkajs producer.send with acks=all. Usage: node fastify-kafkajs.js <port> <broker> <topic>
import Fastify from 'fastify';
import { Kafka, logLevel } from 'kafkajs';

const [port, broker, topic] = [Number(process.argv[2] ?? 13002), process.argv[3] ?? '127.0.0.1:19092', process.argv[4] ?? 'bench-baseline'];
const kafka = new Kafka({ clientId: 'bench-baseline', brokers: [broker], logLevel: logLevel.NOTHING });
const producer = kafka.producer({ allowAutoTopicCreation: true });
await producer.connect();
const app = Fastify({ logger: false });
app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
app.post('/*', async (req) => {
  await producer.send({ topic, acks: -1, messages: [{ key: null, value: req.body as Buffer }] });
  return { status: 'OK' };
});
await app.listen({ host: '127.0.0.1', port });
process.stdout.write('listening\n');
