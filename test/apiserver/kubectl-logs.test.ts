// `kubectl logs` and `kubectl logs -f` through the API server: pods/log is authorized like any
// subresource and streamed from the kubelet's handler as it writes, not buffered; the query
// (follow, container, tailLines) reaches the handler. A stand-in handler plays the kubelet.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import type { PodLogHandler } from '../../cluster/apiserver/context.js';
import { call, pod, startTestServer, type TestServer } from './helpers.js';

const run = promisify(execFile);
const kubectlPath = (process.env.PATH ?? '').split(':').filter(Boolean).map((d) => path.join(d, 'kubectl')).find((p) => fs.existsSync(p));
const skip = kubectlPath ? false : 'kubectl is not on PATH';

let t: TestServer;
const queries: string[] = [];
let release: (() => void) | undefined;

// Two lines at once; with follow, a third only when the test releases it, then the stream ends.
const logs: PodLogHandler = (req, res, p) => {
  queries.push(`${p.namespace}/${p.name}?${p.query.toString()}`);
  res.writeHead(200, { 'Content-Type': 'text/plain' });
  res.write(`${p.query.get('container') ?? 'app'} line 1\n${p.query.get('container') ?? 'app'} line 2\n`);
  if (p.query.get('follow') !== 'true') { res.end(); return; }
  release = () => res.end('line 3 after follow\n');
};

before(async () => {
  if (skip) return;
  t = await startTestServer({ memory: true, podLogs: logs });
  assert.equal((await call(t.server, 'POST', '/api/v1/namespaces/default/pods', pod('talker'))).status, 201);
});
after(async () => { await t?.stop(); });

const args = (...a: string[]): string[] => ['--kubeconfig', t.server.kubeconfigPath, '--cache-dir', path.join(t.dir, 'kube-cache'), ...a];

test('kubectl logs passes container and tail to the kubelet handler', { skip }, async () => {
  const out = (await run(kubectlPath!, args('logs', 'talker', '-c', 'app', '--tail=5'))).stdout;
  assert.equal(out, 'app line 1\napp line 2\n');
  assert.match(queries.at(-1)!, /^default\/talker\?/);
  assert.match(queries.at(-1)!, /container=app/);
  assert.match(queries.at(-1)!, /tailLines=5/);
  const missing = await run(kubectlPath!, args('logs', 'nobody')).catch((e: { stderr: string }) => e.stderr);
  assert.match(String(missing), /pods "nobody" not found/);
});

test('kubectl logs -f streams lines as they are written and ends with the stream', { skip }, async () => {
  const child = spawn(kubectlPath!, args('logs', '-f', 'talker'), { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => { out += c.toString(); });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    const deadline = Date.now() + 20_000;
    while (!out.includes('line 2')) {
      assert.ok(Date.now() < deadline, `no streamed output from kubectl logs -f (got ${JSON.stringify(out)})`);
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(child.exitCode, null, 'kubectl is still following');
    assert.match(queries.at(-1)!, /follow=true/);
    release?.();
    assert.equal(await exited, 0);
    assert.equal(out, 'app line 1\napp line 2\nline 3 after follow\n');
  } finally {
    if (child.exitCode === null && child.pid) process.kill(child.pid, 'SIGTERM');
  }
});
