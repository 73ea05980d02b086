// App probe forwarding on the status port (Istio's pilot-agent /app-health/): the kubelet's
// probes were rewritten by the injector to /app-health/<container>/<kind>; this probes the app
// on localhost the way the original probe asked (port, path, headers, scheme; or a TCP
// connect) and answers with the app's status, so probes keep working under STRICT mTLS.
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

function probeHttp(p: AppProber, host: string, timeoutMs: number): Promise<ProbeResult> {
  const get = p.httpGet!;
  const headers: Record<string, string> = { 'user-agent': 'kube-probe/1.32' };
  for (const h of get.httpHeaders ?? []) headers[h.name.toLowerCase()] = h.value;
  const lib = get.scheme === 'HTTPS' ? https : http;
  return new Promise((resolve) => {
    // The kubelet does not verify an HTTPS probe's certificate; neither does this.
    const req = lib.request({ host: get.host ?? host, port: get.port, path: get.path ?? '/', method: 'GET', headers, rejectUnauthorized: false, timeout: timeoutMs, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 500, body: '' }));
      res.on('error', () => resolve({ status: 500, body: 'app probe: response error\n' }));
    });
    req.on('timeout', () => { req.destroy(); resolve({ status: 500, body: `app probe: no answer from port ${get.port} within ${timeoutMs} ms\n` }); });
    req.on('error', (e) => resolve({ status: 500, body: `app probe: ${e.message}\n` }));
    req.end();
  });
}

function probeTcp(p: AppProber, host: string, timeoutMs: number): Promise<ProbeResult> {
  const t = p.tcpSocket!;
  return new Promise((resolve) => {
    const s = net.connect({ host: t.host ?? host, port: t.port });
    const done = (r: ProbeResult): void => { s.destroy(); resolve(r); };
    s.setTimeout(timeoutMs, () => done({ status: 500, body: `app probe: connect to port ${t.port} timed out\n` }));
    s.once('connect', () => done({ status: 200, body: 'OK\n' }));
    s.once('error', (e) => done({ status: 500, body: `app probe: ${e.message}\n` }));
  });
}

/**
 * Handles /app-health/... on the status port, or returns false for other paths. `appHost` is
 * where the app listens (localhost in the pod's network namespace).
 */
export function appProbeHandler(probers: AppProbers, appHost = '127.0.0.1'): (req: http.IncomingMessage, res: http.ServerResponse) => boolean {
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (!path.startsWith(APP_HEALTH_PREFIX)) return false;
    const p = probers.get(path);
    if (!p) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`no app probe registered for ${path}\n`);
      return true;
    }
    const timeoutMs = Math.max(1, p.timeoutSeconds ?? 1) * 1000;
    void (p.httpGet ? probeHttp(p, appHost, timeoutMs) : probeTcp(p, appHost, timeoutMs)).then((r) => {
      res.writeHead(r.status, { 'content-type': 'text/plain' }).end(r.body);
    });
    return true;
  };
}
