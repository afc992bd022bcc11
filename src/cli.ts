/**
 * crowd's command line: `crowd start`, `crowd config check`, `crowd log verify`, `crowd log dump`.
 * Exit codes: 0 ok, 1 verify found corruption, 2 bad config or usage (also: a log command's data
 * dir missing or holding no log), 70 internal failure.
 */
import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { ConfigError, loadConfig } from './config/load.js';
import { createLogger } from './logger.js';
import { StartRefusal } from './start-refusal.js';
import { Crowd } from './supervisor.js';
import { ReaderGone, writeDump } from './tools/log-dump.js';
import { DataDirError, logDataDir } from './tools/log-data-dir.js';
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

const ENV_HELP = `
Environment:
  CROWD_CONFIG      config file, when --config is not given
  CROWD_PORT        ingest port (over the config's listen.port; 0: any free port)
  CROWD_ADMIN_PORT  admin API port (over admin.port; 0: any free port)
  CROWD_DATA_DIR    data directory (over dataDir; default ./data)
  CROWD_LOG_LEVEL   log level (over logLevel)

Exit codes: 0 ok, 1 log verify found corruption, 2 bad config or usage, 70 internal failure.`;

/** The data dir of a log command, or exit 2 with one line saying why there is none. */
function dataDirOrExit(o: { dataDir?: string; config?: string }): string {
  try {
    return logDataDir(o);
  } catch (e) {
    if (!(e instanceof DataDirError)) throw e;
    process.stderr.write(`crowd: ${e.message}\n`);
    process.exit(2);
  }
}

/** The package's own version: dist/src/cli.js -> ../../package.json, in the repo and installed. */
function packageVersion(): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

const program = new Command('crowd')
  .description('HTTP ingestion gateway: acknowledge once stored, deliver at least once')
  .version(packageVersion(), '-V, --version', 'print the version');
// Usage errors exit 2, not commander's 1, which `log verify` uses for "corruption found".
// Set before the subcommands are made: they inherit it. Help and --version still exit 0.
program.exitOverride((e) => process.exit(e.exitCode === 0 ? 0 : 2));
program.addHelpText('after', ENV_HELP);
program.command('start').description('run crowd').option('-c, --config <file>', 'config file (YAML or JSON); also CROWD_CONFIG').addHelpText('after', ENV_HELP).action(start);

const configCmd = program.command('config').description('work with config files');
configCmd
  .command('check')
  .description('validate a config file and print the effective config (defaults filled in, environment applied) as JSON')
  .argument('<file>', 'config file (YAML or JSON)')
  .addHelpText('after', ENV_HELP)
  .action((file: string) => {
    let config;
    try {
      config = loadConfig({ file });
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      process.stderr.write(`crowd: ${e.message}\n`);
      process.exit(2);
    }
    process.stdout.write(`${JSON.stringify(config, null, 2)}\n`);
  });

const logCmd = program.command('log').description('inspect and repair the local log');
logCmd
  .command('verify')
  .description("check every record's checksum, repair a torn tail, print counts")
  .option('-d, --data-dir <dir>', 'crowd data directory (default: the config\'s dataDir, CROWD_DATA_DIR, ./data)')
  .option('-c, --config <file>', 'take the data dir from this config file; also CROWD_CONFIG')
  .option('--no-repair', 'only report, never truncate a torn tail')
  .addHelpText('after', ENV_HELP)
  .action((o: { dataDir?: string; config?: string; repair: boolean }) => {
    const r = verifyLog(dataDirOrExit(o), { repair: o.repair });
    process.stdout.write(`${JSON.stringify(r)}\n`);
    process.exitCode = r.ok ? 0 : 1;
  });
logCmd
  .command('dump')
  .description('print stored messages as NDJSON')
  .option('-d, --data-dir <dir>', 'crowd data directory (default: the config\'s dataDir, CROWD_DATA_DIR, ./data)')
  .option('-c, --config <file>', 'take the data dir from this config file; also CROWD_CONFIG')
  .option('-t, --topic <topic>', 'only this topic')
  .option('-f, --from <offset>', 'only records at or after this log offset (per lane)', nonNegativeInt)
  .addHelpText('after', ENV_HELP)
  .action(async (o: { dataDir?: string; config?: string; topic?: string; from?: number }) => {
    const dataDir = dataDirOrExit(o);
    let s;
    try {
      s = await writeDump(dataDir, { topic: o.topic, from: o.from }, process.stdout);
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
