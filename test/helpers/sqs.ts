/**
 * The ElasticMQ server (SQS API) the sqs sink tests talk to (started by scripts/run-tests.sh
 * with scripts/elasticmq.sh), and an independent reader: the AWS SDK's own ReceiveMessage and
 * DeleteMessageBatch, never crowd's sink.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { CreateQueueCommand, DeleteMessageBatchCommand, DeleteQueueCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { repoRoot } from './crowd-process.js';

const run = promisify(execFile);
export const sqsPort = Number(process.env.CROWD_TEST_ELASTICMQ_PORT ?? 19324);
export const sqsDir = process.env.CROWD_TEST_ELASTICMQ_DIR ?? path.join(repoRoot, `.cache/elasticmq/${sqsPort}`);
export const sqsEndpoint = `http://127.0.0.1:${sqsPort}`;
const script = path.join(repoRoot, 'scripts/elasticmq.sh');
const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
// the SDK writes into the credentials object it is given: its own copy
const client = new SQSClient({ region: 'us-east-1', endpoint: sqsEndpoint, credentials: { ...credentials }, maxAttempts: 3 });

export interface SqsRecord {
  body: string;
  attributes: Record<string, string>;
  groupId?: string;
  dedupId?: string;
  sequence?: string;
}

export async function createQueue(name: string): Promise<string> {
  const fifo = name.endsWith('.fifo');
  const r = await client.send(new CreateQueueCommand({ QueueName: name, Attributes: fifo ? { FifoQueue: 'true' } : {} }));
  return r.QueueUrl!;
}

export async function deleteQueue(url: string): Promise<void> {
  await client.send(new DeleteQueueCommand({ QueueUrl: url })).catch(() => {});
}

/**
 * Takes every message the queue gives now (receive, then delete) into `into`, which keeps what
 * earlier calls read, so a test can call it until the queue holds what it waits for. Stops
 * after `emptyAnswers` empty receives in a row. A FIFO queue hands out one batch of a group at
 * a time: it is read by one reader, in order.
 */
export async function drainQueue(url: string, into: SqsRecord[] = [], readers = url.endsWith('.fifo') ? 1 : 8): Promise<SqsRecord[]> {
  const one = async () => {
    for (let empty = 0; empty < 2;) {
      const r = await client.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, MessageAttributeNames: ['All'], MessageSystemAttributeNames: ['All'], WaitTimeSeconds: 0 }));
      const msgs = r.Messages ?? [];
      if (msgs.length === 0) {
        empty++;
        continue;
      }
      empty = 0;
      for (const m of msgs) {
        const attributes: Record<string, string> = {};
        for (const [k, v] of Object.entries(m.MessageAttributes ?? {})) attributes[k] = v.StringValue ?? '';
        into.push({ body: m.Body ?? '', attributes, groupId: m.Attributes?.MessageGroupId, dedupId: m.Attributes?.MessageDeduplicationId, sequence: m.Attributes?.SequenceNumber });
      }
      await client.send(new DeleteMessageBatchCommand({ QueueUrl: url, Entries: msgs.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }));
    }
  };
  await Promise.all(Array.from({ length: readers }, one));
  return into;
}

export async function stopSqs(): Promise<void> {
  await run(script, ['stop-broker', '--port', String(sqsPort), '--dir', sqsDir], { timeout: 60_000 });
}

export async function startSqs(): Promise<void> {
  await run(script, ['start-broker', '--port', String(sqsPort), '--dir', sqsDir], { timeout: 180_000 });
}

export function sqsSink(queueUrl: string, extra: Record<string, unknown> = {}) {
  return { type: 'sqs', queueUrl, endpoint: sqsEndpoint, region: 'us-east-1', credentials: { ...credentials }, ...extra };
}
