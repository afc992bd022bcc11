/**
 * A start refused for a reason the operator must act on (the data dir or a port is taken by
 * another process): the CLI prints its message as one line and exits 70, with no stack trace.
 */
export class StartRefusal extends Error {
  override name = 'StartRefusal';
}
