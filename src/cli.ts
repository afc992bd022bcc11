/**
 * crowd's command line: `crowd start`, `crowd log verify`, `crowd log dump`.
 * Exit codes: 0 ok, 1 verify found corruption, 2 bad config or usage, 70 internal failure.
 */
import { Command, InvalidArgumentError } from 'commander';
import { ConfigError, loadConfig } from './config/load.js';
import { createLogger } from './logger.js';
import { StartRefusal } from './start-refusal.js';
import { Crowd } from './supervisor.js';
import { ReaderGone, writeDump } from './tools/log-dump.js';
import { verifyLog } from './tools/log-verify.js';

function nonNegativeInt(v: string): number {
  if (!/^[0-9]+$/.test(v)) throw new InvalidArgumentError('expected a non-negative integer');
  return Number(v);
}

async function start(opts: { config?: string }): Promise<void> {
  let config;
  try {
    config = loadConfig({ file: opts.config });
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`crowd: ${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
  const log = createLogger(config.logLevel, 'main');
  let crowd: Crowd;
  try {
    crowd = await Crowd.start(config, log);
  } catch (e) {
    // Another crowd has the data dir or a port: one line for the operator, no stack trace.
    if (e instanceof StartRefusal) process.stderr.write(`crowd: ${e.message}\n`);
    else log.fatal({ event: 'start_failed', err: e }, (e as Error).message);
    process.exit(70);
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ event: 'signal', signal }, 'shutting down');
    crowd.stop().then(
      () => process.exit(0),
      (e) => {
        log.error({ event: 'stop_failed', err: e }, 'shutdown failed');
        process.exit(70);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

const program = new Command('crowd').description('HTTP ingestion gateway: acknowledge once stored, deliver at least once');
// Usage errors exit 2, not commander's 1, which `log verify` uses for "corruption found".
// Set before the subcommands are made: they inherit it. Help and --version still exit 0.
program.exitOverride((e) => process.exit(e.exitCode === 0 ? 0 : 2));
program.command('start').description('run crowd').option('-c, --config <file>', 'config file (YAML or JSON); also CROWD_CONFIG').action(start);

const logCmd = program.command('log').description('inspect and repair the local log');
logCmd
  .command('verify')
  .description("check every record's checksum, repair a torn tail, print counts")
  .requiredOption('-d, --data-dir <dir>', 'crowd data directory')
  .option('--no-repair', 'only report, never truncate a torn tail')
  .action((o: { dataDir: string; repair: boolean }) => {
    const r = verifyLog(o.dataDir, { repair: o.repair });
    process.stdout.write(`${JSON.stringify(r)}\n`);
    process.exitCode = r.ok ? 0 : 1;
  });
logCmd
  .command('dump')
  .description('print stored messages as NDJSON')
  .requiredOption('-d, --data-dir <dir>', 'crowd data directory')
  .option('-t, --topic <topic>', 'only this topic')
  .option('-f, --from <offset>', 'only records at or after this log offset (per lane)', nonNegativeInt)
  .action(async (o: { dataDir: string; topic?: string; from?: number }) => {
    let s;
    try {
      s = await writeDump(o.dataDir, { topic: o.topic, from: o.from }, process.stdout);
    } catch (e) {
      if (e instanceof ReaderGone) return; // e.g. `crowd log dump | head`
      throw e;
    }
    if (s.corruptRegions > 0 || s.tailBytes > 0) {
      process.stderr.write(`crowd: skipped ${s.corruptRegions} corrupt region(s) (${s.corruptBytes} bytes), ${s.tailBytes} tail bytes\n`);
    }
  });

program.parseAsync(process.argv).catch((e: Error) => {
  process.stderr.write(`crowd: ${e.message}\n`);
  process.exit(70);
});
