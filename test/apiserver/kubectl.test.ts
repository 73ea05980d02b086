import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { call, startTestServer, type TestServer } from './helpers.js';

const run = promisify(execFile);

function findKubectl(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const p = path.join(dir, 'kubectl');
    if (dir && fs.existsSync(p)) return p;
  }
  return undefined;
}

const kubectlPath = findKubectl();
const skip = kubectlPath ? false : 'kubectl is not on PATH';

let t: TestServer;
before(async () => { if (!skip) t = await startTestServer(); });
after(async () => { await t?.stop(); });

async function kubectl(...args: string[]): Promise<string> {
  const { stdout } = await run(kubectlPath!, ['--kubeconfig', t.server.kubeconfigPath, '--cache-dir', path.join(t.dir, 'kube-cache'), ...args], { timeout: 60_000 });
  return stdout;
}

const deployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: trellis/sample-http:0.1.0
        env:
        - {name: A, value: "1"}
`;

test('kubectl get ns, apply a Deployment (twice), get deploy -o json', { skip }, async () => {
  const nsOut = await kubectl('get', 'ns');
  assert.match(nsOut, /^NAME\s+STATUS\s+AGE/m);
  assert.match(nsOut, /^kube-system\s+Active/m);

  const file = path.join(t.dir, 'web.yaml');
  fs.writeFileSync(file, deployment);
  assert.match(await kubectl('apply', '-f', file), /deployment.apps\/web created/);
  fs.writeFileSync(file, deployment.replace('replicas: 2', 'replicas: 3').replace('value: "1"', 'value: "2"'));
  assert.match(await kubectl('apply', '-f', file), /deployment.apps\/web configured/);
  const d = JSON.parse(await kubectl('get', 'deploy', 'web', '-o', 'json'));
  assert.equal(d.kind, 'Deployment');
  assert.equal(d.spec.replicas, 3);
  assert.equal(d.metadata.generation, 2);
  assert.deepEqual(d.spec.template.spec.containers[0].env, [{ name: 'A', value: '2' }]);

  assert.match(await kubectl('create', 'namespace', 'made-by-kubectl'), /namespace\/made-by-kubectl created/);
  assert.equal((await call(t.server, 'GET', '/api/v1/namespaces/made-by-kubectl')).status, 200);
  assert.match(await kubectl('scale', 'deploy', 'web', '--replicas=1'), /scaled/);
  assert.match(await kubectl('get', 'deploy'), /^web\s+0\/1/m);
});

test('state, CA and admin token survive an apiserver restart', { skip }, async () => {
  const before = fs.readFileSync(path.join(t.dir, 'pki', 'ca.crt'), 'utf8');
  const token = t.server.adminToken;
  await t.server.close();
  const again = await startTestServer({ dir: t.dir });
  t = { ...again, stop: async () => { await again.server.close(); fs.rmSync(t.dir, { recursive: true, force: true }); } };
  assert.equal(again.server.caCertPem, before);
  assert.equal(again.server.adminToken, token);
  const d = JSON.parse(await kubectl('get', 'deploy', 'web', '-o', 'json'));
  assert.equal(d.spec.replicas, 1);
});
