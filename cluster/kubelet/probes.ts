// Container probes: httpGet and tcpSocket from the host to podIP:port (the pod is reachable
// through the node bridge), exec inside the container's namespaces. A Prober runs one probe
// on its period and reports result transitions after success/failure thresholds.
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { execFile } from 'node:child_process';
import type { Container, Probe } from '../../api/kube/index.js';
import { execArgv } from './launcher.js';

export type ProbeKind = 'startup' | 'readiness' | 'liveness';

export interface ProbeTarget {
  podIP: string;
  pid: () => number;
  uid: number;
  gid: number;
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

function httpProbe(p: NonNullable<Probe['httpGet']>, host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const mod = (p.scheme ?? 'HTTP').toUpperCase() === 'HTTPS' ? https : http;
    const headers: Record<string, string> = { 'user-agent': 'kube-probe/1.30', accept: '*/*' };
    for (const h of p.httpHeaders ?? []) headers[h.name] = h.value;
    const req = mod.request({
      host: p.host || host, port, path: p.path || '/', method: 'GET', headers, agent: false, timeout: timeoutMs,
      rejectUnauthorized: false, // kubelet does not verify probe certificates either
    }, (res) => {
      res.resume();
      const code = res.statusCode ?? 0;
      resolve(code >= 200 && code < 400);
    });
    req.on('timeout', () => { req.destroy(); resolve(false); });
    req.on('error', () => resolve(false));
    req.end();
  });
}

function tcpProbe(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (ok: boolean): void => { s.destroy(); resolve(ok); };
    s.setTimeout(timeoutMs, () => done(false));
    s.on('connect', () => done(true));
    s.on('error', () => done(false));
  });
}

function execProbe(target: ProbeTarget, command: string[], timeoutMs: number): Promise<boolean> {
  const pid = target.pid();
  if (pid <= 0) return Promise.resolve(false);
  const { file, args } = execArgv(pid, target.uid, target.gid, command);
  return new Promise((resolve) => {
    execFile(file, args, { env: target.env, timeout: timeoutMs, killSignal: 'SIGKILL' }, (err) => resolve(!err));
  });
}

export async function runProbeOnce(c: Container, probe: Probe, target: ProbeTarget, where: string): Promise<boolean> {
  const timeoutMs = (probe.timeoutSeconds ?? 1) * 1000;
  try {
    if (probe.httpGet) return await httpProbe(probe.httpGet, target.podIP, resolvePort(c, probe.httpGet.port, `${where}.httpGet.port`), timeoutMs);
    if (probe.tcpSocket) return await tcpProbe(probe.tcpSocket.host || target.podIP, resolvePort(c, probe.tcpSocket.port, `${where}.tcpSocket.port`), timeoutMs);
    if (probe.exec) return await execProbe(target, probe.exec.command, timeoutMs);
  } catch (e) {
    console.error(`kubelet: ${(e as Error).message}`);
    return false;
  }
  return true; // a probe with no handler cannot fail
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
    const ok = await runProbeOnce(this.container, this.probe, this.target, this.where);
    if (this.stopped) return;
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
