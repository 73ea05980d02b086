// The sample programs as real processes on 127.0.0.1: the client fans requests out to
// the http-server and tallies them by version.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';

const APPS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../samples/apps');
const children: ChildProcess[] = [];

/** Starts an app on an ephemeral loopback port and returns that port (read from its log line). */
function startApp(file: string, env: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(APPS, file)], { env: { ...process.env, PORT: '0', HOST: '127.0.0.1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${file} did not start: ${out}`)), 10_000);
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /listening on [\d.]+:(\d+)/.exec(out);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    child.stderr?.on('data', (c: Buffer) => { out += c.toString(); });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`${file} exited with ${code}: ${out}`)); });
  });
}

async function getJson(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('sample apps', () => {
  let server: number;
  let client: number;

  before(async () => {
    [server, client] = await Promise.all([
      startApp('http-server.js', { SERVICE_NAME: 'web', VERSION: 'v2', POD_NAME: 'web-v2-abc', POD_NAMESPACE: 'demo' }),
      startApp('client.js', {}),
    ]);
  });

  after(() => {
    for (const c of children) if (c.exitCode === null && c.pid) process.kill(c.pid, 'SIGKILL');
  });

  it('http-server answers who it is', async () => {
    const { status, body } = await getJson(`http://127.0.0.1:${server}/some/path?q=1`);
    assert.equal(status, 200);
    assert.deepEqual({ ...body, headers: undefined }, { service: 'web', version: 'v2', pod: 'web-v2-abc', namespace: 'demo', path: '/some/path?q=1', headers: undefined });
    assert.equal((body.headers as Record<string, string>).host, `127.0.0.1:${server}`);
    assert.equal((await fetch(`http://127.0.0.1:${server}/healthz`)).status, 200);
    assert.equal((await fetch(`http://127.0.0.1:${client}/healthz`)).status, 200);
  });

  it('client fans out to the server and counts by version', async () => {
    const { status, body } = await getJson(`http://127.0.0.1:${client}/fanout?url=${encodeURIComponent(`http://127.0.0.1:${server}/`)}&n=250&concurrency=8`);
    assert.equal(status, 200);
    assert.equal(body.total, 250);
    assert.equal(body.ok, 250);
    assert.equal(body.errors, 0);
    assert.deepEqual(body.byVersion, { v2: 250 });
    assert.deepEqual(body.byStatus, { 200: 250 });
    assert.deepEqual(body.errorSamples, []);
  });

  it('reuses connections (keep-alive, at most `concurrency` of them)', async () => {
    let connections = 0;
    const target = http.createServer((req, res) => { req.resume(); res.end(JSON.stringify({ version: 'v9' })); });
    target.on('connection', () => connections++);
    await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
    try {
      const port = (target.address() as AddressInfo).port;
      const { body } = await getJson(`http://127.0.0.1:${client}/fanout?url=http://127.0.0.1:${port}/&n=200&concurrency=4`);
      assert.deepEqual(body.byVersion, { v9: 200 });
      assert.ok(connections <= 4, `${connections} connections for 200 requests at concurrency 4`);
    } finally {
      target.closeAllConnections();
      await new Promise<void>((r) => target.close(() => r()));
    }
  });

  it('counts failures by status and keeps error samples', async () => {
    const target = http.createServer((req, res) => { req.resume(); res.writeHead(503); res.end('no'); });
    await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
    const port = (target.address() as AddressInfo).port;
    try {
      const { body } = await getJson(`http://127.0.0.1:${client}/fanout?url=http://127.0.0.1:${port}/&n=20`);
      assert.deepEqual([body.total, body.ok, body.errors], [20, 0, 20]);
      assert.deepEqual(body.byStatus, { 503: 20 });
      assert.deepEqual(body.errorSamples, ['HTTP 503']);
    } finally {
      target.closeAllConnections();
      await new Promise<void>((r) => target.close(() => r()));
    }
    // Nothing listens there any more: connection errors.
    const { body } = await getJson(`http://127.0.0.1:${client}/fanout?url=http://127.0.0.1:${port}/&n=5`);
    assert.deepEqual([body.total, body.errors], [5, 5]);
    assert.deepEqual(body.byStatus, { error: 5 });
    assert.match((body.errorSamples as string[])[0], /ECONNREFUSED/);
  });

  it('rejects bad queries with 400 naming the parameter', async () => {
    const tooMany = await getJson(`http://127.0.0.1:${client}/fanout?url=http://127.0.0.1:${server}/&n=10001`);
    assert.equal(tooMany.status, 400);
    assert.match(String(tooMany.body.error), /\bn\b/);
    const noUrl = await getJson(`http://127.0.0.1:${client}/fanout?n=1`);
    assert.equal(noUrl.status, 400);
    assert.match(String(noUrl.body.error), /url/);
  });
});
