// App probe forwarding on the status port (Istio's pilot-agent /app-health/): the kubelet's
// probes were rewritten by the injector to /app-health/<container>/<kind>; this probes the app
// the way the original probe asked (port, path, headers, scheme; or a TCP connect) and
// answers with the app's status, so probes keep working under STRICT mTLS.
// Like Istio's agent since 1.10 (and like the kubelet itself), the probe goes to the pod IP,
// so an app listening only on its pod IP passes; it leaves from 127.0.0.6, the source the
// interception rules never capture, so it reaches the app directly rather than looping
// through the inbound listener. REWRITE_PROBE_LEGACY_LOCALHOST_DESTINATION=true restores
// probing 127.0.0.1.
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { APP_PROBERS_ENV, type AppProber } from '../../api/security/app-probers.js';

export const APP_HEALTH_PREFIX = '/app-health/';

export type AppProbers = Map<string, AppProber>;

function checkPort(where: string, v: unknown): number {
  if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > 65535) throw new Error(`${APP_PROBERS_ENV}: ${where}.port: must be a port number, got ${JSON.stringify(v)}`);
  return v as number;
}

/** Parses ISTIO_KUBE_APP_PROBERS; errors name the entry and the field. */
export function parseAppProbers(text: string | undefined): AppProbers {
  const out: AppProbers = new Map();
  if (!text) return out;
  let doc: unknown;
  try { doc = JSON.parse(text); } catch (e) { throw new Error(`${APP_PROBERS_ENV}: not JSON: ${(e as Error).message}`); }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new Error(`${APP_PROBERS_ENV}: must be a JSON object of path -> probe`);
  for (const [path, p] of Object.entries(doc as Record<string, AppProber>)) {
    if (!path.startsWith(APP_HEALTH_PREFIX)) throw new Error(`${APP_PROBERS_ENV}: key ${JSON.stringify(path)} does not start with ${APP_HEALTH_PREFIX}`);
    if (typeof p !== 'object' || p === null) throw new Error(`${APP_PROBERS_ENV}: ${path}: must be an object`);
    if (p.httpGet) {
      checkPort(`${path}.httpGet`, p.httpGet.port);
      if (p.httpGet.scheme !== undefined && p.httpGet.scheme !== 'HTTP' && p.httpGet.scheme !== 'HTTPS') throw new Error(`${APP_PROBERS_ENV}: ${path}.httpGet.scheme: must be HTTP or HTTPS, got ${JSON.stringify(p.httpGet.scheme)}`);
    } else if (p.tcpSocket) {
      checkPort(`${path}.tcpSocket`, p.tcpSocket.port);
    } else {
      throw new Error(`${APP_PROBERS_ENV}: ${path}: needs httpGet or tcpSocket`);
    }
    out.set(path, p);
  }
  return out;
}

interface ProbeResult { status: number; body: string }

/** Where forwarded probes go, and the local address they leave from. */
export interface ProbeTarget {
  host: string;
  localAddress?: string;
}

/** Istio's inbound passthrough source: ISTIO_OUTPUT returns it on lo before any redirect. */
export const PROBE_SOURCE_ADDRESS = '127.0.0.6';
export const LEGACY_LOCALHOST_ENV = 'REWRITE_PROBE_LEGACY_LOCALHOST_DESTINATION';

/** The pod IP (from 127.0.0.6), or 127.0.0.1 with the legacy switch or without a pod IP. */
export function probeTarget(instanceIp: string | undefined, legacyLocalhost: boolean): ProbeTarget {
  if (legacyLocalhost || !instanceIp) return { host: '127.0.0.1' };
  return { host: instanceIp, localAddress: PROBE_SOURCE_ADDRESS };
}

/** Parses REWRITE_PROBE_LEGACY_LOCALHOST_DESTINATION (Istio: a bool, default false). */
export function legacyLocalhostFromEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = env[LEGACY_LOCALHOST_ENV];
  if (v === undefined || v === '') return false;
  if (/^(true|1)$/i.test(v)) return true;
  if (/^(false|0)$/i.test(v)) return false;
  throw new Error(`${LEGACY_LOCALHOST_ENV}: "${v}" is not a boolean (true or false)`);
}

/** A probe naming its own host goes there as it is (no source binding: it may not be local). */
function destination(target: ProbeTarget, host: string | undefined): ProbeTarget {
  return host ? { host } : target;
}

function probeHttp(p: AppProber, target: ProbeTarget, timeoutMs: number): Promise<ProbeResult> {
  const get = p.httpGet!;
  const headers: Record<string, string> = { 'user-agent': 'kube-probe/1.32' };
  for (const h of get.httpHeaders ?? []) headers[h.name.toLowerCase()] = h.value;
  const lib = get.scheme === 'HTTPS' ? https : http;
  return new Promise((resolve) => {
    // The kubelet does not verify an HTTPS probe's certificate; neither does this.
    const to = destination(target, get.host);
    const req = lib.request({ host: to.host, ...(to.localAddress ? { localAddress: to.localAddress } : {}), port: get.port, path: get.path ?? '/', method: 'GET', headers, rejectUnauthorized: false, timeout: timeoutMs, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 500, body: '' }));
      res.on('error', () => resolve({ status: 500, body: 'app probe: response error\n' }));
    });
    req.on('timeout', () => { req.destroy(); resolve({ status: 500, body: `app probe: no answer from port ${get.port} within ${timeoutMs} ms\n` }); });
    req.on('error', (e) => resolve({ status: 500, body: `app probe: ${e.message}\n` }));
    req.end();
  });
}

function probeTcp(p: AppProber, target: ProbeTarget, timeoutMs: number): Promise<ProbeResult> {
  const t = p.tcpSocket!;
  const to = destination(target, t.host);
  return new Promise((resolve) => {
    const s = net.connect({ host: to.host, port: t.port, ...(to.localAddress ? { localAddress: to.localAddress } : {}) });
    const done = (r: ProbeResult): void => { s.destroy(); resolve(r); };
    s.setTimeout(timeoutMs, () => done({ status: 500, body: `app probe: connect to port ${t.port} timed out\n` }));
    s.once('connect', () => done({ status: 200, body: 'OK\n' }));
    s.once('error', (e) => done({ status: 500, body: `app probe: ${e.message}\n` }));
  });
}

/**
 * Handles /app-health/... on the status port, or returns false for other paths. `target` is
 * where the app is probed (see probeTarget).
 */
export function appProbeHandler(probers: AppProbers, target: ProbeTarget = { host: '127.0.0.1' }): (req: http.IncomingMessage, res: http.ServerResponse) => boolean {
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (!path.startsWith(APP_HEALTH_PREFIX)) return false;
    const p = probers.get(path);
    if (!p) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`no app probe registered for ${path}\n`);
      return true;
    }
    const timeoutMs = Math.max(1, p.timeoutSeconds ?? 1) * 1000;
    void (p.httpGet ? probeHttp(p, target, timeoutMs) : probeTcp(p, target, timeoutMs)).then((r) => {
      res.writeHead(r.status, { 'content-type': 'text/plain' }).end(r.body);
    });
    return true;
  };
}
