// Baseline: the fastify hello-world a user would write first. Usage: node fastify-hello.js <port>
import Fastify from 'fastify';

const app = Fastify({ logger: false });
app.post('/*', async () => ({ status: 'OK', id: '01m81bckre23thw2000001' }));
await app.listen({ host: '127.0.0.1', port: Number(process.argv[2] ?? 13001) });
process.stdout.write('listening\n');
