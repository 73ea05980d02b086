// trellis/sample-client: an HTTP service that, on GET /fanout?url=&n=&concurrency=,
// sends n requests to url and answers with the tally by version, e.g.
// { total: 1000, ok: 1000, errors: 0, byVersion: { v1: 812, v2: 188 }, byStatus: { "200": 1000 } }.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fanout } from './fanout.js';

export const MAX_REQUESTS = 10_000;
export const MAX_CONCURRENCY = 256;

class BadQuery extends Error {}

function intParam(q: URLSearchParams, name: string, fallback: number, min: number, max: number): number {
  const raw = q.get(name);
  if (raw === null || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new BadQuery(`query parameter ${name}: "${raw}" must be an integer in [${min}, ${max}]`);
  return n;
}

function sendJson(res: http.ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export function createClientServer(): http.Server {
  return http.createServer((req, res) => {
    req.resume();
    const url = new URL(req.url ?? '/', 'http://client');
    if (url.pathname === '/healthz') { res.writeHead(200, { 'content-type': 'text/plain' }); res.end('ok\n'); return; }
    if (url.pathname !== '/fanout') { sendJson(res, 404, { error: `no handler for ${url.pathname}; try /fanout?url=http://web/&n=100` }); return; }
    let target: string;
    let n: number;
    let concurrency: number;
    try {
      target = url.searchParams.get('url') ?? '';
      if (!/^http:\/\//.test(target)) throw new BadQuery(`query parameter url: "${target}" must be an http:// URL`);
      try { new URL(target); } catch { throw new BadQuery(`query parameter url: "${target}" is not a URL`); }
      n = intParam(url.searchParams, 'n', 100, 1, MAX_REQUESTS);
      concurrency = intParam(url.searchParams, 'concurrency', 10, 1, MAX_CONCURRENCY);
    } catch (e) {
      if (e instanceof BadQuery) { sendJson(res, 400, { error: e.message }); return; }
      throw e;
    }
    fanout({ url: target, n, concurrency }).then(
      (result) => sendJson(res, 200, result),
      (e: unknown) => sendJson(res, 500, { error: e instanceof Error ? e.message : String(e) }),
    );
  });
}

async function main(): Promise<void> {
  const port = Number(process.env.PORT ?? 8080);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`PORT: "${process.env.PORT}" is not a port`);
  const server = createClientServer();
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(port, process.env.HOST ?? '0.0.0.0', resolve); });
  const addr = server.address() as AddressInfo;
  console.log(`sample-client listening on ${addr.address}:${addr.port}`);
  const stop = (): void => { server.close(() => process.exit(0)); server.closeIdleConnections(); setTimeout(() => process.exit(0), 2000).unref(); };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e: unknown) => { console.error(`sample-client: ${e instanceof Error ? e.message : String(e)}`); process.exit(1); });
}
