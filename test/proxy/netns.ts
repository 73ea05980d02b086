// Test scaffolding for network namespaces: a bridge with veths in 10.252.0.0/24, all names
// prefixed "tpx", guarded by an unreachable route for 10.252.0.0/16 so nothing leaves.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';

export const PREFIX = 'tpx';
export const GUARD_CIDR = '10.252.0.0/16';
export const BRIDGE = `${PREFIX}-br0`;
export const BRIDGE_IP = '10.252.0.1';

export function sh(cmd: string, args: string[], allowFail = false): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (!allowFail && (r.status !== 0 || r.error)) {
    throw new Error(`${cmd} ${args.join(' ')} failed: ${r.error?.message ?? ''}${r.stderr}${r.stdout}`);
  }
  return r.stdout ?? '';
}

export function missingPrerequisite(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, iptables)';
  for (const bin of ['ip', 'iptables', 'iptables-restore', 'setpriv']) {
    if (spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0) return `needs ${bin}`;
  }
  return undefined;
}

export interface Pod {
  ns: string;
  ip: string;
}

export class TestNetwork {
  private readonly namespaces: string[] = [];
  private bridgeUp = false;
  private guardUp = false;

  setUp(): void {
    this.tearDown(); // leftovers of a crashed run
    sh('ip', ['route', 'add', 'unreachable', GUARD_CIDR]);
    this.guardUp = true;
    sh('ip', ['link', 'add', BRIDGE, 'type', 'bridge']);
    this.bridgeUp = true;
    sh('ip', ['addr', 'add', `${BRIDGE_IP}/24`, 'dev', BRIDGE]);
    sh('ip', ['link', 'set', BRIDGE, 'up']);
  }

  addPod(name: string, ip: string): Pod {
    const ns = `${PREFIX}-${name}`;
    const host = `${PREFIX}-${name}-h`;
    sh('ip', ['netns', 'add', ns]);
    this.namespaces.push(ns);
    sh('ip', ['link', 'add', host, 'type', 'veth', 'peer', 'name', `${PREFIX}-${name}-c`]);
    sh('ip', ['link', 'set', `${PREFIX}-${name}-c`, 'netns', ns]);
    sh('ip', ['link', 'set', host, 'master', BRIDGE]);
    sh('ip', ['link', 'set', host, 'up']);
    const inNs = (...args: string[]): string => sh('ip', ['netns', 'exec', ns, 'ip', ...args]);
    inNs('link', 'set', `${PREFIX}-${name}-c`, 'name', 'eth0');
    inNs('addr', 'add', `${ip}/24`, 'dev', 'eth0');
    inNs('link', 'set', 'eth0', 'up');
    inNs('link', 'set', 'lo', 'up');
    return { ns, ip };
  }

  /** Removes everything named with the prefix; safe to call when nothing exists. */
  tearDown(): void {
    for (const ns of sh('ip', ['netns', 'list'], true).split('\n').map((l) => l.split(' ')[0])) {
      if (ns.startsWith(`${PREFIX}-`)) sh('ip', ['netns', 'del', ns], true);
    }
    for (const line of sh('ip', ['-o', 'link', 'show'], true).split('\n')) {
      const name = /^\d+: ([^:@]+)/.exec(line)?.[1];
      if (name?.startsWith(`${PREFIX}-`)) sh('ip', ['link', 'del', name], true);
    }
    if (sh('ip', ['route', 'show', 'type', 'unreachable'], true).includes(GUARD_CIDR)) {
      sh('ip', ['route', 'del', 'unreachable', GUARD_CIDR], true);
    }
    this.namespaces.length = 0;
    this.bridgeUp = false;
    this.guardUp = false;
  }
}

export interface Started {
  child: ChildProcess;
  output: () => string;
}

/** Runs a command inside a namespace (`ip netns exec` execs in place, so the PID is the command's). */
export function startIn(ns: string, argv: string[], env: NodeJS.ProcessEnv = {}): Started {
  const child = spawn('ip', ['netns', 'exec', ns, ...argv], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (c: Buffer) => { out += c.toString(); });
  child.stderr?.on('data', (c: Buffer) => { out += c.toString(); });
  return { child, output: () => out };
}

export function runIn(ns: string, argv: string[], timeoutMs = 15_000): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('ip', ['netns', 'exec', ns, ...argv], { encoding: 'utf8', timeout: timeoutMs });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** Stops a process this test started, by PID only. */
export async function stop(s: Started | undefined): Promise<void> {
  const child = s?.child;
  if (!child || child.exitCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(child.pid, 'SIGTERM');
  const timer = setTimeout(() => { if (child.exitCode === null && child.pid) process.kill(child.pid, 'SIGKILL'); }, 3000);
  await exited;
  clearTimeout(timer);
}
