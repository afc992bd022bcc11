/**
 * The real RabbitMQ node the amqp sink tests talk to (started by scripts/run-tests.sh with
 * scripts/rabbitmq.sh), and an independent reader: an amqplib consumer, never crowd's sink.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import amqp from 'amqplib';
import { repoRoot } from './crowd-process.js';

const run = promisify(execFile);
export const rabbitPort = Number(process.env.CROWD_TEST_RABBITMQ_PORT ?? 19672);
export const rabbitDir = process.env.CROWD_TEST_RABBITMQ_DIR ?? path.join(repoRoot, `.cache/rabbitmq/${rabbitPort}`);
export const rabbitUrl = `amqp://guest:guest@127.0.0.1:${rabbitPort}/`;
const script = path.join(repoRoot, 'scripts/rabbitmq.sh');

export interface AmqpRecord {
  messageId: string;
  body: string;
  contentType: string | undefined;
  deliveryMode: number | undefined;
  headers: Record<string, unknown>;
  routingKey: string;
}

/** A durable queue, bound to the default exchange under its own name (deleted when the test ends). */
export async function declareQueue(name: string): Promise<void> {
  const c = await amqp.connect(rabbitUrl);
  try {
    const ch = await c.createChannel();
    await ch.assertQueue(name, { durable: true });
  } finally {
    await c.close();
  }
}

export async function deleteQueue(name: string): Promise<void> {
  const c = await amqp.connect(rabbitUrl).catch(() => null);
  if (!c) return;
  try {
    const ch = await c.createChannel();
    await ch.deleteQueue(name);
  } finally {
    await c.close().catch(() => {});
  }
}

/**
 * Reads a queue: every message taken (basic.get, acked) is added to `into`, which keeps what
 * earlier calls read, so a test can call it until the queue holds what it waits for. A fresh
 * connection each call: it works across broker restarts.
 */
export async function drainQueue(name: string, into: AmqpRecord[] = []): Promise<AmqpRecord[]> {
  const c = await amqp.connect(rabbitUrl);
  try {
    const ch = await c.createChannel();
    for (;;) {
      const m = await ch.get(name, { noAck: true });
      if (m === false) break;
      into.push({
        messageId: String(m.properties.messageId), body: m.content.toString('utf8'), contentType: m.properties.contentType,
        deliveryMode: m.properties.deliveryMode, headers: m.properties.headers ?? {}, routingKey: m.fields.routingKey,
      });
    }
  } finally {
    await c.close().catch(() => {});
  }
  return into;
}

export async function stopRabbit(): Promise<void> {
  await run(script, ['stop-broker', '--port', String(rabbitPort), '--dir', rabbitDir], { timeout: 90_000 });
}

export async function startRabbit(): Promise<void> {
  await run(script, ['start-broker', '--port', String(rabbitPort), '--dir', rabbitDir], { timeout: 180_000 });
}

/** The node's pid, from the pid file scripts/rabbitmq.sh keeps, checked to be that node (its environment names it). */
function rabbitPid(): number {
  const pid = Number(readFileSync(path.join(rabbitDir, 'rabbitmq.pid'), 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no pid in ${rabbitDir}/rabbitmq.pid`);
  if (!readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(`RABBITMQ_NODENAME=crowd${rabbitPort}@localhost`)) throw new Error(`pid ${pid} is not the test node`);
  return pid;
}

/** Freezes the node (SIGSTOP): connections stay open, nothing answers, no confirm comes. */
export function pauseRabbit(): void {
  process.kill(rabbitPid(), 'SIGSTOP');
}

export function resumeRabbit(): void {
  process.kill(rabbitPid(), 'SIGCONT');
}

/** Declares a direct exchange and binds the queue to it under `routingKey`. */
export async function declareExchange(exchange: string, queue: string, routingKey: string): Promise<void> {
  const c = await amqp.connect(rabbitUrl);
  try {
    const ch = await c.createChannel();
    await ch.assertExchange(exchange, 'direct', { durable: false, autoDelete: false });
    await ch.bindQueue(queue, exchange, routingKey);
  } finally {
    await c.close();
  }
}

export async function deleteExchange(exchange: string): Promise<void> {
  const c = await amqp.connect(rabbitUrl).catch(() => null);
  if (!c) return;
  try {
    await (await c.createChannel()).deleteExchange(exchange);
  } finally {
    await c.close().catch(() => {});
  }
}

export function amqpSink(extra: Record<string, unknown> = {}) {
  return { type: 'amqp', url: rabbitUrl, ...extra };
}
