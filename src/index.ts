/**
 * crowd's library entry (package.json "exports"): the configuration loader and its types, and
 * the log tools behind `crowd log verify|dump`. The command line is bin/crowd.js.
 */
export { ConfigError, loadConfig, type LoadOptions } from './config/load.js';
export type { CrowdConfig, RouteConfig, AckMode } from './config/types.js';
export { verifyLog, type VerifyReport } from './tools/log-verify.js';
export { dumpLog, writeDump, type DumpLine, type DumpOptions } from './tools/log-dump.js';
