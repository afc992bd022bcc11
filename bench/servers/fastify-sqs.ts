// Baseline: the endpoint a user writes without crowd: fastify, and per request an awaited
// SendMessage (AWS SDK v3). Usage: node fastify-sqs.js <port> <endpoint> <queue url>
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import Fastify from 'fastify';

const [port, endpoint, queueUrl] = [Number(process.argv[2] ?? 13005), process.argv[3] ?? 'http://127.0.0.1:19424', process.argv[4] ?? ''];
const sqs = new SQSClient({ region: 'us-east-1', endpoint, credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' } });
const app = Fastify({ logger: false });
app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
app.post('/*', async (req) => {
  await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: (req.body as Buffer).toString('utf8') }));
  return { status: 'OK' };
});
await app.listen({ host: '127.0.0.1', port });
process.stdout.write('listening\n');
