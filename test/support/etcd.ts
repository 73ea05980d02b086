// A real etcd (Debian's etcd-server) for tests and benchmarks: loopback only, ephemeral
// ports, a temporary data dir; members are stopped by PID and the dir is removed.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as http from 'node:http';

export const ETCD_BIN = '/usr/bin/etcd';

/** Why etcd tests cannot run here, or undefined when they can. */
export function etcdSkipReason(): string | undefined {
  return fs.existsSync(ETCD_BIN) ? undefined : `needs ${ETCD_BIN} (Debian package etcd-server; npm test installs it as root)`;
}

/** A free loopback TCP port (bound then released; the caller binds it right away). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export interface EtcdMember {
  name: string;
  clientUrl: string;
  dataDir: string;
  readonly pid: number | undefined;
  /** Sends the signal (default SIGKILL) and waits for the process to exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the member again on the same data dir and ports, and waits for health. */
  restart(): Promise<void>;
}

export interface EtcdCluster {
  endpoints: string[];
  members: EtcdMember[];
  stop(): Promise<void>;
}

function healthy(clientUrl: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(`${clientUrl}/health`, { timeout: 1000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => resolve(res.statusCode === 200 && body.includes('"true"')));
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => { req.destroy(); resolve(false); });
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Starts `members` etcd members (default 1) as one cluster on 127.0.0.1 and waits until all are healthy. */
export async function startEtcd(opts: { members?: number; timeoutMs?: number } = {}): Promise<EtcdCluster> {
  const n = opts.members ?? 1;
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-etcd-'));
  const specs: { name: string; client: number; peer: number; dataDir: string }[] = [];
  for (let i = 0; i < n; i++) specs.push({ name: `m${i}`, client: await freePort(), peer: await freePort(), dataDir: path.join(root, `m${i}`) });
  const initialCluster = specs.map((s) => `${s.name}=http://127.0.0.1:${s.peer}`).join(',');

  const members = specs.map((s) => new EtcdProcess(s, initialCluster, path.basename(root), timeoutMs));
  const stop = async (): Promise<void> => {
    await Promise.all(members.map((m) => m.stop()));
    fs.rmSync(root, { recursive: true, force: true });
  };
  try {
    for (const m of members) m.launch();
    await waitHealthy(members, timeoutMs);
  } catch (e) {
    await stop();
    throw e;
  }
  return { endpoints: members.map((m) => m.clientUrl), members, stop };
}

interface MemberSpec { name: string; client: number; peer: number; dataDir: string }

class EtcdProcess implements EtcdMember {
  readonly name: string;
  readonly clientUrl: string;
  readonly dataDir: string;
  private child: ChildProcess | undefined;
  /** The tail of etcd's log, for error messages only. */
  log = '';

  constructor(private readonly spec: MemberSpec, private readonly initialCluster: string, private readonly token: string, private readonly timeoutMs: number) {
    this.name = spec.name;
    this.clientUrl = `http://127.0.0.1:${spec.client}`;
    this.dataDir = spec.dataDir;
  }

  get pid(): number | undefined { return this.child?.pid; }

  launch(): void {
    const peerUrl = `http://127.0.0.1:${this.spec.peer}`;
    this.child = spawn(ETCD_BIN, [
      '--name', this.name, '--data-dir', this.dataDir,
      '--listen-client-urls', this.clientUrl, '--advertise-client-urls', this.clientUrl,
      '--listen-peer-urls', peerUrl, '--initial-advertise-peer-urls', peerUrl,
      // Ignored by etcd once the data dir exists (a restart rejoins with its own state).
      '--initial-cluster', this.initialCluster, '--initial-cluster-state', 'new', '--initial-cluster-token', this.token,
      '--logger', 'zap', '--log-outputs', 'stderr', '--log-level', 'error',
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child.stderr?.on('data', (c: Buffer) => { this.log = (this.log + c.toString()).slice(-4000); });
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const c = this.child;
    if (!c || c.pid === undefined) return;
    if (c.exitCode === null && c.signalCode === null) process.kill(c.pid, signal);
    await exited(c);
  }

  async restart(): Promise<void> {
    await this.stop();
    this.launch();
    await waitHealthy([this], this.timeoutMs);
  }

  /** SIGTERM, then SIGKILL if it has not exited after 1 s (a member of a degraded cluster may linger). */
  async stop(): Promise<void> {
    const c = this.child;
    const t = setTimeout(() => { if (c?.pid !== undefined && c.exitCode === null) { try { process.kill(c.pid, 'SIGKILL'); } catch { /* gone */ } } }, 1000);
    try { await this.kill('SIGTERM'); } finally { clearTimeout(t); }
  }
}

async function waitHealthy(members: EtcdProcess[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const m of members) {
    while (!(await healthy(m.clientUrl))) {
      if (Date.now() > deadline) throw new Error(`etcd member ${m.name} at ${m.clientUrl} not healthy within ${timeoutMs}ms: ${m.log}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
