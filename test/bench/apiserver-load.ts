// Load-generation pieces of the API server benchmark: a keep-alive HTTPS client, an
// open-loop create stream at a fixed rate, watch fan-out, and percentiles.
import * as https from 'node:https';
import type { ServerReady } from './apiserver-server.js';

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

export function median(xs: number[]): number {
  return percentile([...xs].sort((a, b) => a - b), 50);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class Client {
  private readonly agent: https.Agent;
  constructor(private readonly s: ServerReady) {
    this.agent = new https.Agent({ keepAlive: true, maxSockets: 64, ca: s.caCertPem });
  }

  request(method: string, urlPath: string, body?: unknown): Promise<{ status: number; body: unknown }> {
    const data = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = https.request(`${this.s.url}${urlPath}`, {
        method, agent: this.agent,
        headers: { Authorization: `Bearer ${this.s.adminToken}`, ...(data ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) } : {}) },
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try { parsed = JSON.parse(text); } catch { /* not JSON */ }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      });
      req.on('error', reject);
      req.end(data);
    });
  }

  close(): void { this.agent.destroy(); }
}

export const configMap = (name: string, payloadBytes = 512): Record<string, unknown> => ({
  apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, labels: { bench: 'true' } }, data: { payload: 'x'.repeat(payloadBytes) },
});

export interface RateResult { latenciesMs: number[]; errors: number; achievedPerS: number }

/**
 * Open loop: request i is due at start + i/rate whatever the earlier ones are doing, and its
 * latency counts from when it was due (no coordinated omission).
 */
export async function createsAtRate(c: Client, namespace: string, rate: number, seconds: number, prefix: string): Promise<RateResult> {
  const total = rate * seconds;
  const latenciesMs: number[] = [];
  let errors = 0;
  const inflight: Promise<void>[] = [];
  const start = performance.now();
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    inflight.push(c.request('POST', `/api/v1/namespaces/${namespace}/configmaps`, configMap(`${prefix}-${i}`)).then(
      (r) => { if (r.status === 201) latenciesMs.push(performance.now() - due); else errors++; },
      () => { errors++; },
    ));
  }
  await Promise.all(inflight);
  const elapsedS = (performance.now() - start) / 1000;
  return { latenciesMs, errors, achievedPerS: latenciesMs.length / elapsedS };
}

export interface FanoutResult { latenciesMs: number[]; expected: number; received: number }

/**
 * `watchers` watches on one namespace, then `writes` creates at `rate`/s; the latency of an
 * event is from its create request being sent to the event being parsed at a watcher.
 */
export async function watchFanout(s: ServerReady, c: Client, namespace: string, watchers: number, writes: number, rate: number): Promise<FanoutResult> {
  const list = await c.request('GET', `/api/v1/namespaces/${namespace}/configmaps`);
  const rv = (list.body as { metadata: { resourceVersion: string } }).metadata.resourceVersion;
  const sentAt = new Map<string, number>();
  const latenciesMs: number[] = [];
  let received = 0;
  const agent = new https.Agent({ keepAlive: false, maxSockets: Infinity, ca: s.caCertPem });
  const reqs: ReturnType<typeof https.request>[] = [];
  const opened: Promise<void>[] = [];
  for (let w = 0; w < watchers; w++) {
    opened.push(new Promise<void>((resolve, reject) => {
      const req = https.request(`${s.url}/api/v1/namespaces/${namespace}/configmaps?watch=1&resourceVersion=${rv}`, { agent, headers: { Authorization: `Bearer ${s.adminToken}` } }, (res) => {
        if (res.statusCode !== 200) { reject(new Error(`watch ${w}: HTTP ${String(res.statusCode)}`)); return; }
        resolve();
        let buf = '';
        res.on('data', (chunk: Buffer) => {
          const now = performance.now();
          buf += chunk.toString('utf8');
          let nl: number;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            if (!line.trim()) continue;
            const ev = JSON.parse(line) as { type: string; object: { metadata?: { name?: string } } };
            const t = sentAt.get(ev.object.metadata?.name ?? '');
            if (ev.type === 'ADDED' && t !== undefined) { latenciesMs.push(now - t); received++; }
          }
        });
        res.on('error', () => undefined);
      });
      req.on('error', () => undefined);
      req.end();
      reqs.push(req);
    }));
  }
  await Promise.all(opened);
  const start = performance.now();
  const done: Promise<unknown>[] = [];
  for (let i = 0; i < writes; i++) {
    const due = start + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    const name = `fan-${i}`;
    sentAt.set(name, performance.now());
    done.push(c.request('POST', `/api/v1/namespaces/${namespace}/configmaps`, configMap(name)));
  }
  await Promise.all(done);
  const expected = watchers * writes;
  const deadline = performance.now() + 10_000;
  while (received < expected && performance.now() < deadline) await sleep(20);
  for (const r of reqs) r.destroy();
  agent.destroy();
  return { latenciesMs, expected, received };
}
