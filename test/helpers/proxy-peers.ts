/**
 * Real HAProxy and nginx processes in front of a crowd, for the tests of docs/behind-a-proxy.md:
 * started as plain foreground processes (no daemon, no master) on ephemeral loopback ports,
 * with their config files in a temp dir, and stopped by their own pid. The configs are the
 * snippets of docs/behind-a-proxy.md with the ports and paths filled in.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { tempDir } from './crowd-process.js';

/** The binary's path (PATH, then the sbin directories a non-root PATH may lack), or null. */
export function findBinary(name: string): string | null {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/local/sbin', '/sbin'];
  for (const d of dirs) {
    if (d && existsSync(path.join(d, name))) return path.join(d, name);
  }
  return null;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export interface PeerProcess {
  port: number;
  dir: string;
  output: () => string;
  stop(): Promise<void>;
}

function run(bin: string, args: string[], dir: string, port: number): Promise<PeerProcess> {
  const child: ChildProcess = spawn(bin, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const peer: PeerProcess = {
    port, dir, output: () => out,
    async stop() {
      if (child.exitCode === null && child.signalCode === null && child.pid) process.kill(child.pid, 'SIGTERM');
      await exited;
    },
  };
  // Ready once its port takes connections (or it exited: a config error).
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + 15_000;
    const attempt = () => {
      if (child.exitCode !== null) return reject(new Error(`${path.basename(bin)} exited: ${out}`));
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(peer);
      });
      s.once('error', () => {
        s.destroy();
        if (Date.now() > deadline) {
          void peer.stop();
          reject(new Error(`${path.basename(bin)} did not listen on ${port}: ${out}`));
        } else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

/** HAProxy config of docs/behind-a-proxy.md: ingest through HAProxy, health check on /readyz. */
export function haproxyConfig(o: { listenPort: number; ingestPort: number; adminPort: number; statsSocket: string; token?: string; checkMethod?: 'GET' | 'HEAD' }): string {
  return `global
    stats socket ${o.statsSocket} mode 600 level admin

defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s

frontend crowd_ingest
    bind 127.0.0.1:${o.listenPort}
    # crowd's ingest port speaks HTTP/1.1 only, and HAProxy forwards a request in the
    # version the client used: answer HTTP/1.0 clients here instead of sending them on.
    http-request return status 505 content-type application/json string '{"status":"error","code":"HTTP_VERSION_NOT_SUPPORTED","message":"crowd ingest needs HTTP/1.1"}' if HTTP_1.0
    default_backend crowd

backend crowd
    # The admin API (node:http) answers HAProxy's HTTP/1.0 check.
    option httpchk ${o.checkMethod ?? 'GET'} /readyz
${o.token ? `    http-check send hdr Authorization "Bearer ${o.token}"\n` : ''}    http-check expect status 200
    server crowd1 127.0.0.1:${o.ingestPort} check port ${o.adminPort} inter 500ms fall 2 rise 1
`;
}

export async function startHaproxy(o: { ingestPort: number; adminPort: number; token?: string; checkMethod?: 'GET' | 'HEAD' }): Promise<PeerProcess & { statsSocket: string }> {
  const bin = findBinary('haproxy');
  if (!bin) throw new Error('haproxy is not installed');
  const dir = tempDir('crowd-haproxy-');
  const listenPort = await freePort();
  const statsSocket = path.join(dir, 'stats.sock');
  const cfg = path.join(dir, 'haproxy.cfg');
  writeFileSync(cfg, haproxyConfig({ ...o, listenPort, statsSocket }));
  // -db: foreground, no daemon; -W is not used, so there is no master process either.
  const p = await run(bin, ['-db', '-f', cfg], dir, listenPort);
  return { ...p, statsSocket };
}

/** One line of `show stat` on HAProxy's stats socket, by proxy and server name. */
export function haproxyServerStatus(statsSocket: string, backend: string, server: string): Promise<{ status: string; check: string } | null> {
  return new Promise((resolve) => {
    const s = net.connect(statsSocket);
    let out = '';
    s.on('connect', () => s.write('show stat\n'));
    s.on('data', (d) => (out += d));
    s.on('error', () => resolve(null));
    s.on('close', () => {
      const lines = out.split('\n');
      const cols = (lines[0] ?? '').replace(/^# /, '').split(',');
      const row = lines.map((l) => l.split(',')).find((r) => r[0] === backend && r[1] === server);
      if (!row) return resolve(null);
      resolve({ status: row[cols.indexOf('status')], check: row[cols.indexOf('check_status')] });
    });
  });
}

/** nginx config of docs/behind-a-proxy.md (`proxy_http_version 1.1`), or nginx's default (HTTP/1.0 upstream). */
export function nginxConfig(o: { dir: string; listenPort: number; ingestPort: number; http11: boolean; readTimeout: string }): string {
  const location = o.http11
    ? `      proxy_pass http://crowd_ingest;
      # crowd's ingest port speaks HTTP/1.1 only; nginx's default upstream protocol is 1.0.
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      # Keep nginx's default Host ($proxy_host): "$host" is empty for an HTTP/1.0 client
      # without Host, and this uWS build drops an HTTP/1.1 request without Host unanswered.
      # A POST is not idempotent: never resend it to another server on its own.
      proxy_next_upstream off;`
    : '      proxy_pass http://crowd_ingest;';
  return `daemon off;
master_process off;
worker_processes 1;
pid ${o.dir}/nginx.pid;
error_log ${o.dir}/error.log warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${o.dir}/body;
  proxy_temp_path ${o.dir}/proxy;
  fastcgi_temp_path ${o.dir}/fastcgi;
  uwsgi_temp_path ${o.dir}/uwsgi;
  scgi_temp_path ${o.dir}/scgi;
  upstream crowd_ingest {
    server 127.0.0.1:${o.ingestPort};
    keepalive 32;
  }
  server {
    listen 127.0.0.1:${o.listenPort};
    proxy_read_timeout ${o.readTimeout};
    location / {
${location}
    }
  }
}
`;
}

export async function startNginx(o: { ingestPort: number; http11: boolean; readTimeout?: string }): Promise<PeerProcess> {
  const bin = findBinary('nginx');
  if (!bin) throw new Error('nginx is not installed');
  const dir = tempDir('crowd-nginx-');
  mkdirSync(path.join(dir, 'logs'));
  const listenPort = await freePort();
  const cfg = path.join(dir, 'nginx.conf');
  writeFileSync(cfg, nginxConfig({ dir, listenPort, ingestPort: o.ingestPort, http11: o.http11, readTimeout: o.readTimeout ?? '30s' }));
  // daemon off + master_process off: one foreground process, its pid is the one spawned.
  return run(bin, ['-c', cfg, '-p', dir], dir, listenPort);
}
