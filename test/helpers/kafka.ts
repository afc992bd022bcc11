/**
 * The real Kafka broker the sink tests talk to (started by scripts/run-tests.sh with
 * scripts/kafka.sh), and an independent reader: kcat (Debian package), never crowd's own code.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from './crowd-process.js';

const run = promisify(execFile);
export const kafkaPort = Number(process.env.CROWD_TEST_KAFKA_PORT ?? 19092);
export const kafkaDir = process.env.CROWD_TEST_KAFKA_DIR ?? path.join(repoRoot, '.cache/kafka/run-test');
export const broker = `127.0.0.1:${kafkaPort}`;
const script = path.join(repoRoot, 'scripts/kafka.sh');

export interface KafkaRecord {
  key: string | null;
  value: string;
  headers: Record<string, string>;
  offset: number;
  partition: number;
}

/**
 * Every record of a topic from the beginning (empty when the topic does not exist). kcat is
 * asked again (3 tries, 1 s apart) when it fails otherwise: a broker that has just started
 * can still be loading its partitions, which is not what the tests are about.
 */
export async function readTopic(topic: string): Promise<KafkaRecord[]> {
  for (let attempt = 1; ; attempt++) {
    try {
      const { stdout } = await run('kcat', ['-C', '-b', broker, '-t', topic, '-e', '-J', '-q', '-o', 'beginning'], { maxBuffer: 256 * 1024 * 1024, timeout: 60_000 });
      return stdout.split('\n').filter(Boolean).map((l) => {
        const j = JSON.parse(l) as { key: string | null; payload: string; headers?: string[]; offset: number; partition: number };
        const headers: Record<string, string> = {};
        for (let i = 0; i + 1 < (j.headers ?? []).length; i += 2) headers[j.headers![i]] = j.headers![i + 1];
        return { key: j.key, value: j.payload, headers, offset: j.offset, partition: j.partition };
      });
    } catch (e) {
      const stderr = String((e as { stderr?: string }).stderr ?? e);
      if (/Unknown topic/i.test(stderr)) return [];
      if (attempt >= 3) throw new Error(`kcat failed ${attempt} times reading ${topic}: ${stderr}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

export async function stopBroker(): Promise<void> {
  await run(script, ['stop-broker', '--port', String(kafkaPort), '--dir', kafkaDir], { timeout: 60_000 });
}

export async function startBroker(): Promise<void> {
  await run(script, ['start-broker', '--port', String(kafkaPort), '--dir', kafkaDir], { timeout: 120_000 });
}

/**
 * The broker's pid, from the pid file scripts/kafka.sh writes (the broker the tests started),
 * checked as the script checks it: a live process running kafka.Kafka, not a recycled pid.
 */
function brokerPid(): number {
  const pid = Number(readFileSync(path.join(kafkaDir, 'kafka.pid'), 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no broker pid in ${kafkaDir}/kafka.pid`);
  const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  if (!cmdline.includes('kafka.Kafka')) throw new Error(`pid ${pid} in ${kafkaDir}/kafka.pid is not the Kafka broker`);
  return pid;
}

/**
 * Freezes the broker (SIGSTOP): its sockets stay open and the kernel still accepts
 * connections, but nothing answers. A hung broker, unlike a stopped one, gives a client
 * no connection error to react to.
 */
export function pauseBroker(): void {
  process.kill(brokerPid(), 'SIGSTOP');
}

export function resumeBroker(): void {
  process.kill(brokerPid(), 'SIGCONT');
}

export function uniqueTopic(prefix: string): string {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}`;
}

export function kafkaSink(topic: string, extra: Record<string, unknown> = {}) {
  return { type: 'kafka', brokers: [broker], topic, ...extra };
}
