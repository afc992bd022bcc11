/** Reads a sink's dead letters back with `crowd log dump --topic <topic>.dlq`. */
import { runCli } from './crowd-process.js';

export interface DeadLetter {
  id: string;
  topic: string;
  headers: Record<string, string>;
  body: string;
}

export async function readDeadLetters(dataDir: string, topic: string): Promise<DeadLetter[]> {
  const r = await runCli(['log', 'dump', '--data-dir', dataDir, '--topic', topic]);
  if (r.code !== 0) throw new Error(`dump failed: ${r.stderr}`);
  return r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as DeadLetter);
}
