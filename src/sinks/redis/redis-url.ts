/** Parses a sink's `url` (redis://[user[:password]@]host[:port][/db]) into what a connection needs. */
export interface RedisTarget {
  host: string;
  port: number;
  /** ACL user; absent: AUTH with the password alone (the `default` user), if there is one. */
  username?: string;
  password?: string;
  db: number;
}

export function parseRedisUrl(url: string): RedisTarget {
  const u = new URL(url);
  const db = u.pathname.replace(/\//g, '');
  return {
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port: u.port === '' ? 6379 : Number(u.port),
    username: u.username === '' ? undefined : decodeURIComponent(u.username),
    password: u.password === '' ? undefined : decodeURIComponent(u.password),
    db: db === '' ? 0 : Number(db),
  };
}

/** The URL with its password masked, for logs and /stats. */
export function redactedUrl(url: string): string {
  const u = new URL(url);
  if (u.password !== '') u.password = '***';
  return u.toString();
}
