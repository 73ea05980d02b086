// Container probes: httpGet and tcpSocket from the host to podIP:port (the pod is reachable
// through the node bridge), exec inside the container's namespaces. A Prober runs one probe
// on its period and reports result transitions after success/failure thresholds.
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { execFile } from 'node:child_process';
import type { Container, Probe } from '../../api/kube/index.js';
import { execArgv } from './launcher.js';
import type { Privileges } from './capabilities.js';

export type ProbeKind = 'startup' | 'readiness' | 'liveness';

export interface ProbeTarget {
  podIP: string;
  pid: () => number;
  privileges: Privileges;
  /** The container's cgroup.procs, when it has a cgroup. */
  cgroupProcs?: string;
  env: Record<string, string>;
}

/** Resolves a port that may be a name from the container's ports. */
export function resolvePort(c: Container, port: number | string, where: string): number {
  if (typeof port === 'number') return port;
  if (/^\d+$/.test(port)) return Number(port);
  const p = c.ports?.find((x) => x.name === port);
  if (!p) throw new Error(`${where}: port "${port}" is not a named port of container ${c.name}`);
  return p.containerPort;
}

/** A probe's outcome; `message` says why it failed, in the kubelet's words (for Unhealthy events). */
export interface ProbeResult { ok: boolean; message?: string }

function httpProbe(p: NonNullable<Probe['httpGet']>, host: string, port: number, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const scheme = (p.scheme ?? 'HTTP').toUpperCase() === 'HTTPS' ? 'https' : 'http';
    const mod = scheme === 'https' ? https : http;
    const target = p.host || host;
    const url = `${scheme}://${target}:${port}${p.path || '/'}`;
    const headers: Record<string, string> = { 'user-agent': 'kube-probe/1.30', accept: '*/*' };
    for (const h of p.httpHeaders ?? []) headers[h.name] = h.value;
    const req = mod.request({
      host: target, port, path: p.path || '/', method: 'GET', headers, agent: false, timeout: timeoutMs,
      rejectUnauthorized: false, // kubelet does not verify probe certificates either
    }, (res) => {
      res.resume();
      const code = res.statusCode ?? 0;
      resolve(code >= 200 && code < 400 ? { ok: true } : { ok: false, message: `HTTP probe failed with statuscode: ${code}` });
    });
    req.on('timeout', () => {
      req.destroy();
      resolve({ ok: false, message: `Get "${url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)` });
    });
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ ok: false, message: `Get "${url}": ${describeError(e)}` }));
    req.end();
  });
}

function describeError(e: NodeJS.ErrnoException): string {
  if (e.code === 'ECONNREFUSED') return `dial tcp ${String((e as { address?: string }).address ?? '')}:${String((e as { port?: number }).port ?? '')}: connect: connection refused`;
  return e.message;
}

function tcpProbe(host: string, port: number, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (r: ProbeResult): void => { s.destroy(); resolve(r); };
    s.setTimeout(timeoutMs, () => done({ ok: false, message: `dial tcp ${host}:${port}: i/o timeout` }));
    s.on('connect', () => done({ ok: true }));
    s.on('error', (e: NodeJS.ErrnoException) => done({ ok: false, message: e.code === 'ECONNREFUSED' ? `dial tcp ${host}:${port}: connect: connection refused` : `dial tcp ${host}:${port}: ${e.message}` }));
  });
}

function execProbe(target: ProbeTarget, command: string[], timeoutMs: number): Promise<ProbeResult> {
  const pid = target.pid();
  if (pid <= 0) return Promise.resolve({ ok: false, message: 'container is not running' });
  const { file, args } = execArgv({ pid, privileges: target.privileges, cgroupProcs: target.cgroupProcs }, command);
  return new Promise((resolve) => {
    execFile(file, args, { env: target.env, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 1024 * 1024 }, (err, stdout, stderr) => {
      if (!err) return resolve({ ok: true });
      // Like the kubelet: the command's output is the message; else how it ended.
      const out = `${String(stdout)}${String(stderr)}`.trim();
      const how = err.killed ? `command timed out after ${timeoutMs / 1000}s` : `command ${JSON.stringify(command.join(' '))} exited with ${String(err.code)}`;
      resolve({ ok: false, message: out ? out.slice(0, 512) : how });
    });
  });
}

/** Runs a probe (or a lifecycle hook shaped like one) once. */
export async function probeOnce(c: Container, probe: Probe, target: ProbeTarget, where: string): Promise<ProbeResult> {
  const timeoutMs = (probe.timeoutSeconds ?? 1) * 1000;
  try {
    if (probe.httpGet) return await httpProbe(probe.httpGet, target.podIP, resolvePort(c, probe.httpGet.port, `${where}.httpGet.port`), timeoutMs);
    if (probe.tcpSocket) return await tcpProbe(probe.tcpSocket.host || target.podIP, resolvePort(c, probe.tcpSocket.port, `${where}.tcpSocket.port`), timeoutMs);
    if (probe.exec) return await execProbe(target, probe.exec.command, timeoutMs);
  } catch (e) {
    console.error(`kubelet: ${(e as Error).message}`);
    return { ok: false, message: (e as Error).message };
  }
  return { ok: true }; // a probe with no handler cannot fail
}

export async function runProbeOnce(c: Container, probe: Probe, target: ProbeTarget, where: string): Promise<boolean> {
  return (await probeOnce(c, probe, target, where)).ok;
}

/**
 * Runs one probe periodically. `result` starts undefined (not yet known) and flips after
 * successThreshold consecutive successes or failureThreshold consecutive failures.
 */
export class Prober {
  result?: boolean;
  everSucceeded = false;
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private successes = 0;
  private failures = 0;

  constructor(
    private readonly kind: ProbeKind,
    private readonly container: Container,
    private readonly probe: Probe,
    private readonly target: ProbeTarget,
    private readonly where: string,
    private readonly onChange: (kind: ProbeKind, result: boolean) => void,
    /** Every failed attempt, with its message (the kubelet's Unhealthy events). */
    private readonly onFailure?: (kind: ProbeKind, message: string) => void,
  ) {}

  start(): void {
    this.schedule((this.probe.initialDelaySeconds ?? 0) * 1000);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick(), ms);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    const { ok, message } = await probeOnce(this.container, this.probe, this.target, this.where);
    if (this.stopped) return;
    if (!ok) this.onFailure?.(this.kind, message ?? 'probe failed');
    const successThreshold = this.kind === 'readiness' ? (this.probe.successThreshold ?? 1) : 1;
    const failureThreshold = this.probe.failureThreshold ?? 3;
    if (ok) { this.successes++; this.failures = 0; } else { this.failures++; this.successes = 0; }
    let next = this.result;
    if (ok && this.successes >= successThreshold) next = true;
    if (!ok && this.failures >= failureThreshold) next = false;
    if (next !== this.result) {
      this.result = next;
      if (next) this.everSucceeded = true;
      this.onChange(this.kind, next as boolean);
    }
    // A startup probe stops once it has succeeded; liveness and readiness run for the container's life.
    if (this.kind === 'startup' && this.result === true) return;
    this.schedule((this.probe.periodSeconds ?? 10) * 1000);
  }
}
